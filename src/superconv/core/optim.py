"""Optimizer parameter groups: whether weight decay reaches BN scale/shift and biases.

Caffe applies weight decay to every parameter whose layer sets no ``decay_mult``: the BN ``Scale`` layers'
gamma/beta in the authors' nets (no ``param`` block in lnsmith54/super-convergence
architectures/Resnet56Cifar.prototxt) and the conv biases of hyperParam1's gResnet56.prototxt and Caffe's
LeNet; PyTorch recipes usually exempt all 1-D parameters. This makes it a choice.
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


def build_optimizer(cfg: DictConfig, model: nn.Module, lr: float, momentum: float) -> torch.optim.Optimizer:
    """The configured optimizer (Hydra partial) over ``param_groups`` of ``model``, at ``lr``/``momentum``.

    lr and momentum belong to the schedule (the loop writes them every iteration), so they are not optimizer
    settings; ``decay_bn_and_bias`` is ours, not the optimizer's, so it is taken out before instantiation.
    """
    settings = OmegaConf.to_container(cfg, resolve=True)
    decay_all = bool(settings.pop("decay_bn_and_bias", True))
    groups = param_groups(model, float(settings["weight_decay"]), decay_all)
    return instantiate(settings, _convert_="all")(params=groups, lr=lr, momentum=momentum)
