"""Caffe conventions the authors' nets rely on, as PyTorch helpers."""

from __future__ import annotations

import math

from torch import nn


def bn_momentum_from_maf(moving_average_fraction: float) -> float:
    """PyTorch BatchNorm ``momentum`` for a Caffe ``moving_average_fraction`` (MAF).

    Caffe keeps MAF of the old running statistics each iteration; PyTorch's momentum is the share given
    to the new batch, so MAF 0.95 -> 0.05 and MAF 0.999 -> 0.001. (Caffe also divides its accumulators
    by a running normaliser, which only changes the first few iterations' statistics.)
    """
    if not 0.0 <= moving_average_fraction < 1.0:
        raise ValueError(f"moving_average_fraction={moving_average_fraction!r} must be in [0, 1)")
    return 1.0 - moving_average_fraction


def caffe_xavier_(module: nn.Module) -> None:
    """Caffe's ``xavier`` filler: uniform(+-sqrt(3/fan_in)) weights, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            fan_in = layer.weight[0].numel()
            bound = math.sqrt(3.0 / fan_in)
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)


def caffe_msra_(module: nn.Module, layers: tuple[type[nn.Module], ...] = (nn.Conv2d,)) -> None:
    """Caffe's ``msra`` filler on every layer of ``layers``: normal(0, sqrt(2/fan_in)), zero bias; BN at gamma 1,
    beta 0."""
    for layer in module.modules():
        if isinstance(layer, layers):
            nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def pooled_head(channels: int, num_classes: int) -> nn.Sequential:
    """Global average pool, then one fully connected layer: the classifier of the CIFAR ResNets and DenseNet."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def initialise(model: nn.Module, head: nn.Module, init: str) -> None:
    """``caffe``: msra convs and a xavier FC head, as in the authors' prototxt; ``torch``: PyTorch's defaults."""
    if init == "caffe":
        caffe_msra_(model)
        caffe_xavier_(head)
    elif init != "torch":
        raise ValueError(f"model.init={init!r}; use 'caffe' (msra convs, xavier FC) or 'torch'")
