"""torchvision's ResNet-50 (the paper's ImageNet net: Smith 2018, arXiv:1803.09820, Sec. 5.5) behind this project's
model interface (``in_channels``, ``image_size``, ``num_classes``, ``bn_momentum``)."""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torchvision.models import resnet50


class ResNet50(nn.Module):
    """``torchvision.models.resnet50(weights=None)``; a non-RGB input gets its own 7x7 stem conv."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, bn_momentum: float) -> None:
        super().__init__()
        if image_size < 32:
            raise ValueError(f"ResNet-50 downsamples by 32; dataset.image_size={image_size} is below 32 px")
        self.net = resnet50(weights=None, num_classes=num_classes,
                            norm_layer=partial(nn.BatchNorm2d, momentum=bn_momentum))
        if in_channels != 3:
            self.net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
            nn.init.kaiming_normal_(self.net.conv1.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
