"""Model architectures, built from ``conf/model/*.yaml`` with Hydra's instantiate."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig


def build_model(cfg: DictConfig) -> torch.nn.Module:
    """Instantiate the configured model (seed the RNG first for a reproducible init)."""
    return instantiate(cfg)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
