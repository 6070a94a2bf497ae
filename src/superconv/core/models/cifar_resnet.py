"""CIFAR ResNets (6n+2 layers of BasicBlocks), as the authors ran them in Caffe and as He et al. define them.

``shortcut`` picks the downsampling block:

- ``avgpool``: the authors' paper-1 net (``super-convergence:architectures/Resnet56Cifar.prototxt``): both
  convs keep the *old* width (the first with stride 2), the shortcut is a 3x3 stride-2 average pool, and
  after add + ReLU the tensor is zero-padded in channels to the new width.
- ``A``: He et al. option A: the convs widen, the shortcut subsamples with stride 2 and zero-pads channels.
- ``B``: a strided ``projection_kernel`` conv + BN (He et al. option B with kernel 1; the authors' paper-2
  ``gResnet56`` and ``wide32cifar`` nets use kernel 2).

``relu_after_add=False`` and ``conv_bias=True`` give the paper-2 Caffe nets, whose residual sums have no
ReLU and whose convs keep Caffe's default bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from superconv.core.choices import SHORTCUTS
from superconv.core.models.caffe import initialise, pooled_head


def _pad_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Append zero channels up to ``channels`` (Caffe: Concat with a DummyData zeros blob)."""
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then (optionally) ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str, bn_momentum: float,
                 conv_bias: bool, relu_after_add: bool, projection_kernel: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.relu_after_add = relu_after_add
        downsample = stride != 1 or in_channels != out_channels
        self.pad_after = downsample and shortcut == "avgpool"
        width = in_channels if self.pad_after else out_channels
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=conv_bias)
        self.bn1 = nn.BatchNorm2d(width, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=conv_bias)
        self.bn2 = nn.BatchNorm2d(width, momentum=bn_momentum)
        self.shortcut: nn.Module
        if not downsample:
            self.shortcut = nn.Identity()
        elif shortcut == "avgpool":
            # Caffe pools with ceil rounding and divides edge windows by their in-image size.
            self.shortcut = nn.AvgPool2d(3, stride, ceil_mode=True)
        elif shortcut == "A":
            self.shortcut = _OptionA(stride, out_channels)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, projection_kernel, stride, (projection_kernel - 1) // 2,
                          bias=conv_bias),
                nn.BatchNorm2d(out_channels, momentum=bn_momentum),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        if self.relu_after_add:
            out = F.relu(out)
        return _pad_channels(out, self.out_channels) if self.pad_after else out


class _OptionA(nn.Module):
    """He et al. option A: identity subsampled by ``stride``, extra channels zero."""

    def __init__(self, stride: int, out_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pad_channels(x[:, :, :: self.stride, :: self.stride], self.out_channels)


class CifarResNet(nn.Module):
    """3x3 stem (stride 1) - 3 stages of n BasicBlocks (stride 1, 2, 2) - global average pool - FC."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, depth: int, widths: Sequence[int],
                 shortcut: str, bn_momentum: float, conv_bias: bool, relu_after_add: bool, projection_kernel: int,
                 init: str) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"model.depth={depth} must be 6n+2 (20, 32, 56, 110, ...)")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"model.shortcut={shortcut!r}; use one of {', '.join(SHORTCUTS)}")
        if len(widths) != 3:
            raise ValueError(f"model.widths={list(widths)} must list 3 stage widths")
        if image_size < 8:
            raise ValueError(f"CifarResNet downsamples twice; dataset.image_size={image_size} is below 8 px")
        blocks = (depth - 2) // 6
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=conv_bias),
            nn.BatchNorm2d(widths[0], momentum=bn_momentum), nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        channels = widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BasicBlock(channels, width, stride, shortcut, bn_momentum, conv_bias, relu_after_add,
                                         projection_kernel))
                channels = width
        self.stages = nn.Sequential(*layers)
        self.head = pooled_head(channels, num_classes)
        initialise(self, self.head, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))
