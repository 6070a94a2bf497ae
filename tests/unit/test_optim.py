"""Weight decay on BN scale/shift and biases as a choice (Caffe decayed them), and Caffe's SGD update."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from superconv.core.optim import CaffeSGD, param_groups
from tests.synthetic import conf_model


def test_caffe_style_decays_everything() -> None:
    model = conf_model("cifar_resnet", "cifar10", depth=20)
    groups = param_groups(model, 1e-4, decay_bn_and_bias=True)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4
    assert sum(p.numel() for p in groups[0]["params"]) == sum(p.numel() for p in model.parameters())


def test_exempting_bn_and_bias_splits_by_dimension() -> None:
    model = conf_model("cifar_resnet", "cifar10", depth=20)
    decayed, exempt = param_groups(model, 1e-4, decay_bn_and_bias=False)
    assert (decayed["weight_decay"], exempt["weight_decay"]) == (1e-4, 0.0)
    bn = model.stem[1]
    conv = model.stem[0]
    exempt_ids = {id(p) for p in exempt["params"]}
    assert {id(bn.weight), id(bn.bias), id(conv.bias)} <= exempt_ids
    assert id(conv.weight) in {id(p) for p in decayed["params"]}
    assert len(decayed["params"]) + len(exempt["params"]) == len(list(model.parameters()))


def test_groups_feed_sgd_and_leave_exempt_params_undecayed() -> None:
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(1.0)
    opt = torch.optim.SGD(param_groups(layer, 0.5, decay_bn_and_bias=False), lr=1.0)
    layer.weight.grad = torch.zeros_like(layer.weight)
    layer.bias.grad = torch.zeros_like(layer.bias)
    opt.step()
    assert torch.equal(layer.weight, torch.full_like(layer.weight, 0.5))
    assert torch.equal(layer.bias, torch.ones_like(layer.bias))


def _pair(bias_lr_mult: float) -> tuple[nn.Module, nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    b = copy.deepcopy(a)
    return a, b, torch.optim.SGD(a.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4), CaffeSGD(
        b.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, bias_lr_mult=bias_lr_mult)


def _steps(model: nn.Module, opt: torch.optim.Optimizer, lrs: list[float]) -> None:
    x, y = torch.randn(16, 5, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1] * 8)
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_caffe_sgd_equals_torch_sgd_at_a_constant_lr_and_differs_when_it_moves() -> None:
    """lr inside the velocity (Caffe) vs outside (torch): the same updates at a fixed lr, not under a moving one."""
    a, b, sgd, caffe = _pair(bias_lr_mult=1.0)
    _steps(a, sgd, [0.05] * 10)
    _steps(b, caffe, [0.05] * 10)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    a, b, sgd, caffe = _pair(bias_lr_mult=1.0)
    _steps(a, sgd, [0.01, 0.1, 0.01, 0.1])
    _steps(b, caffe, [0.01, 0.1, 0.01, 0.1])
    assert not all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_caffe_sgd_gives_biases_their_lr_mult() -> None:
    """One step from zero velocity: the update is lr x lr_mult x (grad + wd w), so biases move twice as far."""
    a, b, sgd, caffe = _pair(bias_lr_mult=2.0)
    before = [p.detach().clone() for p in b.parameters()]
    _steps(a, sgd, [0.05])
    _steps(b, caffe, [0.05])
    for p_torch, p_caffe, start in zip(a.parameters(), b.parameters(), before, strict=True):
        ratio = ((p_caffe - start).norm() / (p_torch - start).norm()).item()
        assert ratio == pytest.approx(2.0 if p_caffe.ndim == 1 else 1.0, rel=1e-4)
    assert sorted(g["lr_mult"] for g in caffe.param_groups) == [1.0, 2.0]
