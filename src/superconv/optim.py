"""Optimizer parameter groups: whether weight decay reaches BN scale/shift and biases.

Caffe applied weight decay to the BN ``Scale`` layers' gamma/beta (no ``param`` block, so decay_mult 1;
published-results.md §2.1) and to conv biases; PyTorch recipes usually exempt them. This makes it a choice.
"""

from __future__ import annotations

from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
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


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The configured optimizer (Hydra partial) over ``param_groups`` of ``model``.

    ``decay_bn_and_bias`` is ours, not the optimizer's, so it is taken out before instantiation.
    """
    settings = OmegaConf.to_container(cfg, resolve=True)
    decay_all = bool(settings.pop("decay_bn_and_bias", True))
    groups = param_groups(model, float(settings["weight_decay"]), decay_all)
    return instantiate(settings, _convert_="all")(params=groups)
