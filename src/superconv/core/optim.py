"""Optimizer parameter groups (whether weight decay reaches BN scale/shift and biases) and Caffe's SGD.

Caffe applies weight decay to every parameter whose layer sets no ``decay_mult``: the BN ``Scale`` layers'
gamma/beta in the authors' nets (no ``param`` block in lnsmith54/super-convergence
architectures/Resnet56Cifar.prototxt) and the conv biases of hyperParam1's gResnet56.prototxt and Caffe's
LeNet; PyTorch recipes usually exempt all 1-D parameters. This makes it a choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
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


@dataclass(frozen=True)
class OptimizerSpec:
    """The configured optimizer, as core takes it: ``make(params=, lr=, momentum=)`` builds it with its other
    options bound (``torch.optim.SGD`` or ``CaffeSGD``), and the weight decay goes to ``param_groups``.

    lr and momentum belong to the schedule (the loop writes them every iteration), so they are not optimizer
    settings; ``decay_bn_and_bias`` is ours, not the optimizer's.
    """

    make: Callable[..., torch.optim.Optimizer]
    weight_decay: float
    decay_bn_and_bias: bool


def build_optimizer(spec: OptimizerSpec, model: nn.Module, lr: float, momentum: float) -> torch.optim.Optimizer:
    """The optimizer of ``spec`` over ``param_groups`` of ``model``, at ``lr``/``momentum``."""
    groups = param_groups(model, spec.weight_decay, spec.decay_bn_and_bias)
    return spec.make(params=groups, lr=lr, momentum=momentum)


class CaffeSGD(torch.optim.Optimizer):
    """Caffe's SGD solver (BVLC caffe src/caffe/solvers/sgd_solver.cpp), the update the authors' results ran on.

    Caffe keeps the learning rate inside the velocity, ``v <- m v + lr lr_mult (g + wd w); w <- w - v``, while
    torch.optim.SGD keeps it outside, ``v <- m v + g + wd w; w <- w - lr v``. The two agree only at a constant
    lr; under 1cycle, whose lr moves every iteration, they differ. Caffe's LeNet also gives biases lr_mult 2
    (examples/mnist/lenet_train_test.prototxt): parameters with one dimension get ``bias_lr_mult``.
    """

    def __init__(self, params: Any, lr: float, momentum: float, weight_decay: float, bias_lr_mult: float) -> None:
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        split = []
        for group in groups:
            params_ = list(group["params"])
            rest = {k: v for k, v in group.items() if k != "params"}
            split.append({**rest, "params": [p for p in params_ if p.ndim > 1], "lr_mult": 1.0})
            split.append({**rest, "params": [p for p in params_ if p.ndim <= 1], "lr_mult": float(bias_lr_mult)})
        super().__init__([g for g in split if g["params"]],
                         {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "lr_mult": 1.0})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            rate, decay, momentum = group["lr"] * group["lr_mult"], group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad.add(p, alpha=decay) if decay else p.grad.clone()
                velocity = self.state[p].get("momentum_buffer")
                if velocity is None:
                    velocity = self.state[p]["momentum_buffer"] = update.mul_(rate)
                else:
                    velocity.mul_(momentum).add_(update, alpha=rate)
                p.sub_(velocity)
        return loss
