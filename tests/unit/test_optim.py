"""Weight decay on BN scale/shift and biases as a choice (Caffe decayed them)."""

from __future__ import annotations

import torch

from superconv.core.models.cifar_resnet import CifarResNet
from superconv.core.optim import param_groups


def test_caffe_style_decays_everything() -> None:
    model = CifarResNet(depth=20)
    groups = param_groups(model, 1e-4, decay_bn_and_bias=True)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4
    assert sum(p.numel() for p in groups[0]["params"]) == sum(p.numel() for p in model.parameters())


def test_exempting_bn_and_bias_splits_by_dimension() -> None:
    model = CifarResNet(depth=20)
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
