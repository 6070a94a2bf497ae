"""Every architecture: exact parameter counts against the published sizes, shapes, a training step, BN momentum."""

from __future__ import annotations

import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from pydantic import TypeAdapter, ValidationError
from torch import nn

from superconv.core.models import count_parameters
from superconv.core.models.caffe import bn_momentum_from_maf
from superconv.stages import schema
from superconv.stages.compose import compose_stage_config
from tests.synthetic import conf_model


def CifarResNet(**values) -> nn.Module:  # noqa: N802 - reads as the class it builds
    """conf/model/cifar_resnet.yaml (ResNet-56, the authors' avgpool shortcut) on CIFAR-10, ``values`` replaced."""
    return conf_model("cifar_resnet", "cifar10", **values)


def DenseNet(**values) -> nn.Module:  # noqa: N802
    return conf_model("densenet40", "cifar10", **values)


def LeNet(**values) -> nn.Module:  # noqa: N802
    return conf_model("lenet", "mnist", **values)


def ResNet50(**values) -> nn.Module:  # noqa: N802
    return conf_model("resnet50", "imagenet", **values)


@pytest.mark.parametrize(
    ("depth", "expected"),
    # He et al. 2016 Table 6 (option A, bias-free convs): ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M
    [(20, 269_722), (56, 853_018), (110, 1_727_962)],
)
def test_cifar_resnet_option_a_matches_he_et_al(depth: int, expected: int) -> None:
    assert count_parameters(CifarResNet(depth=depth, shortcut="A", conv_bias=False)) == expected


@pytest.mark.parametrize(
    ("depth", "expected"),
    # The authors' Caffe nets: downsampling convs keep the old width (fewer weights), every conv has a bias.
    [(20, 224_042), (56, 808_682), (110, 1_685_642)],
)
def test_cifar_resnet_authors_avgpool_variant(depth: int, expected: int) -> None:
    assert count_parameters(CifarResNet(depth=depth)) == expected


def test_cifar_resnet_option_b_and_paper2_projection() -> None:
    # option B adds a 1x1 conv + BN per downsampling block: 16*32 + 64 + 32*64 + 128 over option A
    assert count_parameters(CifarResNet(depth=20, shortcut="B", conv_bias=False)) == 269_722 + 2_752
    assert count_parameters(CifarResNet(depth=56, shortcut="B", projection_kernel=2, relu_after_add=False)) == 865_578


def test_wide_resnet32_widths() -> None:
    # wide32cifar.prototxt: 16/64/256 channels, 2x2 projections, conv biases (no published parameter count)
    model = CifarResNet(depth=32, widths=(16, 64, 256), shortcut="B", projection_kernel=2, relu_after_add=False)
    assert count_parameters(model) == 5_903_626
    assert model.head[-1].in_features == 256


def test_densenet40_matches_huang_et_al() -> None:
    # Huang et al. 2017 Table 2: DenseNet (L=40, k=12) 1.0M parameters
    assert count_parameters(DenseNet()) == 1_019_722


def test_resnet50_matches_torchvision() -> None:
    # torchvision's resnet50 documents 25,557,032 parameters for 1000 classes
    assert count_parameters(ResNet50(num_classes=1000)) == 25_557_032


def test_lenet_matches_caffe() -> None:
    # Caffe's lenet_train_test.prototxt: 500 + 25,050 + 400,500 + 5,010 = 431,080
    assert count_parameters(LeNet()) == 431_080


@pytest.mark.parametrize("init", ["xavier", "msra"])
def test_lenet_caffe_fillers(init: str) -> None:
    """xavier: uniform +-sqrt(3/fan_in), std sqrt(1/fan_in); msra: normal, std sqrt(2/fan_in); zero biases, for
    every conv and fully connected layer (the authors alternate the two across the runs of a row)."""
    torch.manual_seed(0)
    layers = [m for m in LeNet(init=init).modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 4
    for layer in layers:
        fan_in = layer.weight[0].numel()
        expected = (2.0 if init == "msra" else 1.0) / fan_in
        assert layer.weight.var().item() == pytest.approx(expected, rel=0.15)
        assert not layer.bias.any()
    bound = max(layer.weight.abs().max().item() * (layer.weight[0].numel() / 3) ** 0.5 for layer in layers)
    assert (bound <= 1.0) == (init == "xavier")  # xavier is bounded by sqrt(3/fan_in); msra's normal is not


MODELS = {
    "resnet20_avgpool": lambda: CifarResNet(depth=20),
    "resnet20_A": lambda: CifarResNet(depth=20, shortcut="A", conv_bias=False),
    "resnet20_B": lambda: CifarResNet(depth=20, shortcut="B", init="torch"),
    "wide_resnet32": lambda: CifarResNet(depth=32, widths=(16, 64, 256), shortcut="B", projection_kernel=2,
                                         relu_after_add=False),
    "densenet40": lambda: DenseNet(num_classes=100),
    "resnet50": lambda: ResNet50(num_classes=10, image_size=32),
    "resnet20_gray": lambda: CifarResNet(in_channels=1, image_size=28, depth=20),
    "resnet50_gray": lambda: ResNet50(in_channels=1, image_size=32, num_classes=10),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_backward_on_two_images(name: str) -> None:
    torch.manual_seed(0)
    model = MODELS[name]()
    first = next(model.parameters())
    in_channels = 1 if name.endswith("gray") else 3
    size = 28 if name == "resnet20_gray" else 32
    x = torch.randn(2, in_channels, size, size)
    out = model(x)
    classes = 100 if name == "densenet40" else 10
    assert out.shape == (2, classes)
    nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    assert first.grad is not None and torch.isfinite(first.grad).all()


def test_avgpool_shortcut_divides_edge_windows_like_caffe() -> None:
    # Caffe's AVE pooling divides a window cut by the image edge by its in-image size: ones stay ones
    block = CifarResNet(depth=20).stages[3]
    assert block.pad_after and isinstance(block.shortcut, nn.AvgPool2d)
    pooled = block.shortcut(torch.ones(1, 16, 32, 32))
    assert pooled.shape == (1, 16, 16, 16)
    assert torch.equal(pooled, torch.ones_like(pooled))


def test_avgpool_block_pads_zero_channels_after_relu() -> None:
    block = CifarResNet(depth=20).stages[3].eval()
    out = block(torch.randn(2, 16, 32, 32))
    assert out.shape == (2, 32, 16, 16)
    assert torch.all(out[:, 16:] == 0) and torch.all(out[:, :16] >= 0)


def test_bn_momentum_from_caffe_maf() -> None:
    assert bn_momentum_from_maf(0.95) == pytest.approx(0.05)
    assert bn_momentum_from_maf(0.999) == pytest.approx(0.001)
    with pytest.raises(ValueError, match="moving_average_fraction"):
        bn_momentum_from_maf(1.0)
    model = DenseNet(bn_momentum=bn_momentum_from_maf(0.95))
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(momenta) == 39 and all(m == pytest.approx(0.05) for m in momenta)
    assert {m.momentum for m in ResNet50(bn_momentum=0.05).modules() if isinstance(m, nn.BatchNorm2d)} == {0.05}


@pytest.mark.parametrize(
    ("build", "message"),
    [(lambda: CifarResNet(depth=21), "6n\\+2"), (lambda: CifarResNet(shortcut="C"), "shortcut"),
     (lambda: CifarResNet(init="he"), "init"), (lambda: DenseNet(depth=41), "3n\\+4"),
     (lambda: ResNet50(image_size=16), "32 px")],
)
def test_bad_model_args_name_the_key(build, message: str) -> None:
    """The constructors' own checks (the schema says the same first, for a run): Hydra's instantiate raises them
    with the target named."""
    with pytest.raises(InstantiationException, match=f"ValueError.*{message}"):
        build()


@pytest.mark.parametrize(
    ("name", "dataset", "key", "ok", "bad"),
    [("lenet", "mnist", "image_size", 16, 15), ("cifar_resnet", "cifar10", "image_size", 8, 7),
     ("cifar_resnet", "cifar10", "depth", 8, 2), ("cifar_resnet", "cifar10", "depth", 20, 21),
     ("cifar_resnet", "cifar10", "widths", [4, 8, 16], [4, 8]), ("densenet40", "cifar10", "image_size", 4, 3),
     ("densenet40", "cifar10", "depth", 7, 4), ("densenet40", "cifar10", "depth", 40, 41),
     ("resnet50", "imagenet", "image_size", 32, 31)],
)
def test_the_schema_and_the_constructor_draw_each_shape_rule_at_the_same_value(name, dataset, key, ok, bad) -> None:
    """A shape rule lives twice: in the constructor (core must not build a broken net for any caller) and in the
    schema (a run is refused before compute, in config terms). Both accept ``ok`` and both refuse ``bad``."""
    cfg = compose_stage_config("train", [f"model={name}", f"dataset={dataset}"])
    values = OmegaConf.to_container(cfg.model, resolve=True)
    model = TypeAdapter(schema.Model)
    model.validate_python({**values, key: ok})
    conf_model(name, dataset, **{key: ok})
    with pytest.raises(ValidationError):
        model.validate_python({**values, key: bad})
    with pytest.raises(InstantiationException, match="ValueError"):
        conf_model(name, dataset, **{key: bad})
