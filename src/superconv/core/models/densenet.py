"""DenseNet (Huang et al.) as liuzhuang13/DenseNetCaffe's ``make_densenet.py`` builds it: the authors'
``genDensenet40`` net (lnsmith54/hyperParam1 Cifar/architectures/genDensenet40.prototxt; Smith 2018,
arXiv:1803.09820, Sec. 5.2).

3x3 stem conv (``first_output`` channels) - 3 dense blocks of (depth-4)/3 layers, each BN-ReLU-conv3x3
(``growth_rate`` channels)-dropout concatenated to its input - between blocks a transition BN-ReLU-conv1x1
(same width)-dropout-avgpool 2x2 - BN-ReLU - global average pool - FC. No bottlenecks, no compression.
"""

from __future__ import annotations

import torch
from torch import nn

from superconv.core.models.caffe import initialise, pooled_head


def _bn_relu_conv(in_channels: int, out_channels: int, kernel: int, dropout: float,
                  bn_momentum: float) -> nn.Sequential:
    """make_densenet.py ``bn_relu_conv``: BN-ReLU-conv (no bias), then dropout when > 0."""
    layers: list[nn.Module] = [
        nn.BatchNorm2d(in_channels, momentum=bn_momentum), nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel, 1, kernel // 2, bias=False),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DenseLayer(nn.Module):
    """``add_layer``: concatenate the input with ``growth_rate`` new feature maps."""

    def __init__(self, in_channels: int, growth_rate: int, dropout: float, bn_momentum: float) -> None:
        super().__init__()
        self.body = _bn_relu_conv(in_channels, growth_rate, 3, dropout, bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], dim=1)


class DenseNet(nn.Module):
    """DenseNet-(3n+4) for CIFAR; depth 40, growth 12, dropout 0.2 is the paper's net (~1.0M parameters)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, depth: int, growth_rate: int,
                 first_output: int, dropout: float, bn_momentum: float, init: str) -> None:
        super().__init__()
        if (depth - 4) % 3 != 0 or depth < 7:
            raise ValueError(f"model.depth={depth} must be 3n+4 (40, 100, ...)")
        if image_size < 4:
            raise ValueError(f"DenseNet pools twice by 2; dataset.image_size={image_size} is below 4 px")
        layers_per_block = (depth - 4) // 3
        channels = first_output
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                layers.append(DenseLayer(channels, growth_rate, dropout, bn_momentum))
                channels += growth_rate
            if block < 2:
                layers += [_bn_relu_conv(channels, channels, 1, dropout, bn_momentum), nn.AvgPool2d(2, 2)]
        layers += [nn.BatchNorm2d(channels, momentum=bn_momentum), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = pooled_head(channels, num_classes)
        initialise(self, self.head, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
