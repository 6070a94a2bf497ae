"""Optimizer parameter groups: whether weight decay reaches BN scale/shift and biases.

Caffe applied weight decay to the BN ``Scale`` layers' gamma/beta (no ``param`` block, so decay_mult 1;
published-results.md §2.1) and to conv biases; PyTorch recipes usually exempt them. This makes it a choice.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def param_groups(model: nn.Module, weight_decay: float, decay_bn_and_bias: bool) -> list[dict[str, Any]]:
    """torch.optim param groups: all parameters decayed (Caffe), or 1-D ones (BN gamma/beta, biases) at 0."""
    params = [p for p in model.parameters() if p.requires_grad]
    if decay_bn_and_bias:
        return [{"params": params, "weight_decay": weight_decay}]
    return [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
