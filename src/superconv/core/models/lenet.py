"""Caffe's LeNet (BVLC examples/mnist/lenet_train_test.prototxt), the paper's MNIST network."""

from __future__ import annotations

import torch
from torch import nn

from superconv.core.models.caffe import caffe_msra_, caffe_xavier_


class LeNet(nn.Module):
    """conv 20@5x5 - maxpool - conv 50@5x5 - maxpool - fc 500 - ReLU - fc classes (no conv ReLUs, as Caffe)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, init: str) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 20, 5), nn.MaxPool2d(2, 2),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 16 px; dataset.image_size={image_size}")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(50 * side * side, 500), nn.ReLU(inplace=True), nn.Linear(500, num_classes)
        )
        if init == "xavier":
            caffe_xavier_(self)
        elif init == "msra":  # the authors' 4-run scripts alternate xavier and msra fillers
            caffe_msra_(self, (nn.Conv2d, nn.Linear))
        elif init != "torch":
            raise ValueError(f"model.init={init!r}; use 'xavier' or 'msra' (Caffe fillers) or 'torch'")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
