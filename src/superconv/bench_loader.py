"""Loader throughput: our device-resident batching + batched crop/flip vs torchvision's DataLoader.

Both sides read the same synthetic CIFAR-shaped uint8 images and produce normalised float batches with
a random 32x32 crop (padding 4) and a horizontal flip. Run: ``python -m superconv.bench_loader``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from superconv.data.augment import Augment
from superconv.data.loader import DeviceData
from superconv.data.prepared import Split
from superconv.io import write_json

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


def synthetic_cifar(n: int, seed: int = 0) -> Split:
    """``n`` random 3x32x32 uint8 images with 10 labels (throughput only: nothing to learn)."""
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                 torch.randint(0, 10, (n,), generator=g))


class PilImages(Dataset):
    """What torchvision's ``CIFAR10`` does per item: HWC uint8 -> PIL image -> transform."""

    def __init__(self, split: Split, transform: T.Compose) -> None:
        self.images = split.images.permute(0, 2, 3, 1).numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(np.ascontiguousarray(self.images[i]))), self.labels[i]


def device_images_per_s(split: Split, batch: int, epochs: int, device: torch.device) -> float:
    """Seeded device batches (DeviceData's index stream), crop+flip on the batch, then normalise."""
    data = DeviceData(split, device, mean=MEAN, std=STD)
    images = split.images.to(device)
    augment = Augment(flip=True, crop_padding=4)
    generator = torch.Generator(device).manual_seed(0)
    iterations = math.ceil(len(data) * epochs / batch)
    start = time.perf_counter()
    for k in range(iterations):
        idx = data.batch_indices(k, batch)
        x = data.inputs(augment(images[idx], generator))
    x.sum().item()  # wait for queued device work
    return iterations * batch / (time.perf_counter() - start)


def dataloader_images_per_s(split: Split, batch: int, epochs: int, workers: int) -> float:
    """torchvision's standard CIFAR pipeline through a shuffled ``DataLoader``."""
    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(MEAN, STD)])
    loader = DataLoader(PilImages(split, transform), batch_size=batch, shuffle=True, num_workers=workers)
    seen = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, _labels in loader:
            seen += len(x)
    return seen / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, float | int | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process (DataLoader workers use one each)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_loader.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    split = synthetic_cifar(args.images)
    ours = device_images_per_s(split, args.batch, args.epochs, torch.device(args.device))
    theirs = dataloader_images_per_s(split, args.batch, args.epochs, args.workers)
    result = {"images": args.images, "batch": args.batch, "epochs": args.epochs, "workers": args.workers,
              "device": args.device, "torch_threads": torch.get_num_threads(),
              "device_resident_images_per_s": round(ours, 1), "dataloader_images_per_s": round(theirs, 1),
              "ratio": round(ours / theirs, 2)}
    print(f"device-resident + batched crop/flip: {ours:,.0f} images/s\n"
          f"torchvision DataLoader ({args.workers} workers): {theirs:,.0f} images/s\n"
          f"ratio: {ours / theirs:.1f}x  -> {args.out}")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
