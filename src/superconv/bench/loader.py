"""Loader throughput: our device-resident batching + batched crop/flip vs torchvision's DataLoader.

Both sides read the same synthetic CIFAR-shaped uint8 images and produce normalised float batches with
a random 32x32 crop (padding 4) and a horizontal flip. Run: ``python -m superconv.bench.loader``.

The same run then measures data time against step time while training the CIFAR ResNet-20 preset
(``experiment=paper_cifar10_resnet20``, built as the train stage builds it): per iteration, (a) producing
the augmented, normalised batch on the device and (b) ``engine.sgd_step`` on it, for our ``DeviceData.batch``
and for torchvision's DataLoader (0 and 2 workers), with flip and crop+flip augmentation. The target is
data time < 5 % of step time. Figures only: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from superconv.bench.common import stage_data, synthetic_split, time_data_and_step
from superconv.common.io import write_json
from superconv.core.data.augment import Augment
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import Prepared, Split
from superconv.stages.compose import compose_stage_config

MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


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


# ---------------------------------------------------------------- data time vs step time (ResNet-20 training)
PRESET = "paper_cifar10_resnet20"
STEP_AUGMENTS = ("flip", "crop_flip")
LOADERS = ("device_resident", "dataloader_0_workers", "dataloader_2_workers")


def preset_batch() -> int:
    """The ResNet-20 preset's total batch (1000, inherited from paper_cifar10_resnet56)."""
    return int(compose_stage_config("train", [f"experiment={PRESET}"]).trainer.total_batch)


def step_config(batch: int, augment: str, device: str) -> DictConfig:
    """The train stage's config for the ResNet-20 preset at ``batch`` with ``conf/augment/<augment>.yaml``."""
    return compose_stage_config("train", [f"experiment={PRESET}", f"augment={augment}",
                                          f"trainer.total_batch={batch}", f"trainer.device={device}",
                                          "tracking.enabled=false"])


def torchvision_transform(cfg: DictConfig) -> T.Compose:
    """torchvision's equivalent of ``cfg.augment`` (zero-padded crop, flip), then ToTensor + Normalize."""
    aug, steps = cfg.augment, []
    if aug.crop_padding:
        steps.append(T.RandomCrop(int(cfg.dataset.image_size), padding=int(aug.crop_padding),
                                  padding_mode="constant" if aug.pad_mode == "zero" else "reflect"))
    if aug.flip:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(list(cfg.dataset.mean), list(cfg.dataset.std))])


def _dataloader_batches(split: Split, cfg: DictConfig, device: torch.device,
                        workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled DataLoader batches moved to ``device`` (NHWC when the trainer asks for it)."""
    loader = DataLoader(PilImages(split, torchvision_transform(cfg)), batch_size=int(cfg.trainer.total_batch),
                        shuffle=True, drop_last=True, num_workers=workers, persistent_workers=workers > 0,
                        pin_memory=device.type == "cuda")
    memory_format = torch.channels_last if cfg.trainer.channels_last else torch.contiguous_format
    while True:
        for x, y in loader:
            yield (x.to(device, non_blocking=True, memory_format=memory_format),
                   y.to(device, non_blocking=True))


def _next(stream: Iterator[tuple[torch.Tensor, torch.Tensor]], _iteration: int) -> tuple[
        torch.Tensor, torch.Tensor]:
    return next(stream)


def data_vs_step(split: Split, batch: int, iterations: int, warmup: int, device: torch.device,
                 augments: tuple[str, ...] = STEP_AUGMENTS, workers: tuple[int, ...] = (0, 2)) -> dict[str, Any]:
    """{augment: {loader: timings}} for ours (``DeviceData.batch``) and the DataLoader at each worker count."""
    results: dict[str, Any] = {}
    for augment in augments:
        cfg = step_config(batch, augment, device.type)
        one = Split(split.images[:1], split.labels[:1])  # the test split is not used
        data, _ = stage_data(cfg, Prepared(split, one, {}), device)  # as the train stage builds its batches
        results[augment] = {}
        for name, w in [("device_resident", None), *((f"dataloader_{w}_workers", w) for w in workers)]:
            if w is None:
                stream = None
                next_batch = partial(data.batch, total_batch=batch)
            else:  # one DataLoader (and its workers) at a time
                stream = _dataloader_batches(split, cfg, device, w)
                next_batch = partial(_next, stream)
            timing = time_data_and_step(next_batch, cfg, device, iterations, warmup)
            if stream is not None:
                stream.close()  # ends the DataLoader iterator and its persistent workers
            results[augment][name] = {k: round(v, 6) if isinstance(v, float) else v for k, v in timing.items()}
    return results


def _print_data_vs_step(results: dict[str, Any], batch: int, iterations: int) -> None:
    print(f"ResNet-20 training, batch {batch}, mean of {iterations} iterations: data time vs sgd_step time "
          "(target: data < 5 % of step)")
    print(f"{'augment':<10} {'loader':<22} {'data ms':>10} {'step ms':>10} {'data/step':>10} {'% of step':>10}")
    for augment, by_loader in results.items():
        for name, r in by_loader.items():
            print(f"{augment:<10} {name:<22} {r['data_ms']:>10.2f} {r['step_ms']:>10.2f} "
                  f"{r['data_over_step']:>10.4f} {r['data_percent_of_step']:>9.2f}%")


def main(argv: list[str] | None = None) -> dict[str, float | int | str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=None,
                        help="batch of both parts (default: the ResNet-20 preset's total_batch, 1000)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of this process (DataLoader workers use one each)")
    parser.add_argument("--iterations", type=int, default=20, help="timed ResNet-20 iterations per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed ResNet-20 iterations first")
    parser.add_argument("--step-workers", default="0,2", help="DataLoader worker counts of the step comparison")
    parser.add_argument("--augments", default=",".join(STEP_AUGMENTS), help="conf/augment names to time")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_loader.json"))
    args = parser.parse_args(argv)
    batch = args.batch or preset_batch()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    split = synthetic_split(args.images, 0, image_size=32, classes=10, channels=3)
    ours = device_images_per_s(split, batch, args.epochs, device)
    theirs = dataloader_images_per_s(split, batch, args.epochs, args.workers)
    print(f"device-resident + batched crop/flip: {ours:,.0f} images/s\n"
          f"torchvision DataLoader ({args.workers} workers): {theirs:,.0f} images/s\n"
          f"ratio: {ours / theirs:.1f}x")
    workers = tuple(int(w) for w in args.step_workers.split(",") if w != "")
    augments = tuple(a for a in args.augments.split(",") if a)
    steps = data_vs_step(split, batch, args.iterations, args.warmup, device, augments, workers)
    _print_data_vs_step(steps, batch, args.iterations)
    result = {"images": args.images, "batch": batch, "epochs": args.epochs, "workers": args.workers,
              "device": args.device, "torch_threads": torch.get_num_threads(),
              "device_resident_images_per_s": round(ours, 1), "dataloader_images_per_s": round(theirs, 1),
              "ratio": round(ours / theirs, 2),
              "data_vs_step": {"model": f"experiment={PRESET} (CIFAR ResNet-20)", "batch": batch,
                               "iterations": args.iterations, "warmup": args.warmup,
                               "target_percent": 5.0, "results": steps}}
    print(f"-> {args.out}")
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
