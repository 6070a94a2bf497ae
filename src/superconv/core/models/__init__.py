"""Model architectures, one module each; the stages build the configured one (``conf/model/*.yaml``) by its
``_target_``."""

from __future__ import annotations

import torch


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
