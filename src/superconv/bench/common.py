"""What the benchmarks share: synthetic data and training runs built as the stages build theirs, the bare PyTorch loop
they are timed against, device clocks and names, argument checks and interleaved repeats. Every other bench module
imports this one; it imports none of them.

Of the stages it imports only ``stages.training`` at load (torch, core and Hydra; ``stage_data`` imports the rest when
called): the stages' config schema pulls in pydantic, which the GPU self-check (``superconv.bench.selfcheck``) runs
without."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from superconv.core.data.augment import Augment
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import Prepared, Split
from superconv.core.engine import AMP_DTYPES, place_model, seed_everything, sgd_step
from superconv.core.schedules import Schedule
from superconv.stages.training import build_model, composed, trainable

RESULTS_DIR = Path("outputs/bench")
T = TypeVar("T")


# ------------------------------------------------------------------------------------------------------ data
def synthetic_split(n: int, seed: int, image_size: int = 28, classes: int = 10, channels: int = 1) -> Split:
    """``n`` random uint8 images and labels (1x28x28 unless told; CIFAR: 32, 10, 3): a step's speed does not
    depend on the pixels, and nothing here is learnt."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, image_size, image_size), generator=g, dtype=torch.uint8)
    return Split(images, torch.randint(0, classes, (n,), generator=g))


def synthetic_prepared(cfg: DictConfig, train_images: int, test_images: int) -> Prepared:
    """Synthetic train and test splits of the config's dataset shape (seeds 0 and 1)."""
    ds = cfg.dataset
    return Prepared(synthetic_split(train_images, 0, ds.image_size, ds.num_classes, ds.channels),
                    synthetic_split(test_images, 1, ds.image_size, ds.num_classes, ds.channels), {})


def stage_data(cfg: DictConfig, prepared: Prepared, device: torch.device) -> tuple[DeviceData, DeviceData]:
    """Both splits on ``device`` exactly as the train and range-test stages build them (``cfg.augment`` included)."""
    from superconv.stages.common import device_data

    return device_data(cfg, prepared, device, Augment.from_config(cfg.augment))


def synthetic_data(cfg: DictConfig, train_images: int, test_images: int,
                   device: torch.device) -> tuple[DeviceData, DeviceData]:
    """DeviceData of random images of the config's dataset shape, built as the train stage builds them."""
    return stage_data(cfg, synthetic_prepared(cfg, train_images, test_images), device)


# -------------------------------------------------------------------------------------------------- training
def bare_optimizer(cfg: DictConfig, model: torch.nn.Module, lr: float, momentum: float) -> torch.optim.Optimizer:
    """Plain ``torch.optim.SGD`` at ``lr``/``momentum`` with the preset's weight decay and Nesterov flag."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=float(cfg.optimizer.weight_decay),
                           nesterov=bool(cfg.optimizer.nesterov))


def run_bare(cfg: DictConfig, data: Any, iterations: int, schedule: Schedule) -> dict[str, float]:
    """The plain PyTorch loop over the same DeviceData batches at ``schedule``'s first lr and momentum (autocast only
    when ``trainer.amp`` asks); seconds include building the model and optimizer, as ours do."""
    seed_everything(cfg.seed, cfg.trainer.threads)
    device = data.device
    synchronize(device)
    start = time.perf_counter()
    model = place_model(build_model(composed(cfg)[0]), device, cfg.trainer.channels_last)
    opt = bare_optimizer(cfg, model, schedule.lr_at(0), schedule.momentum_at(0))
    amp = cfg.trainer.amp
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    batch = int(cfg.trainer.total_batch)
    model.train()
    for it in range(iterations):
        x, y = data.batch(it, batch)
        with torch.autocast(device.type, dtype=AMP_DTYPES.get(amp, torch.bfloat16), enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    synchronize(device)
    return {"seconds": time.perf_counter() - start, "iterations": iterations}


def time_data_and_step(next_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]], cfg: DictConfig,
                       device: torch.device, iterations: int, warmup: int) -> dict[str, float]:
    """Mean seconds per iteration of ``next_batch(k)`` (data) and of ``engine.sgd_step`` on it (step).

    A fresh model and optimizer of ``cfg`` as the train stage builds them (``stages.training.trainable``); the two
    clocks are read alternately in the same iterations (after ``warmup`` untimed ones), with the device synchronised
    before each read.
    """
    seed_everything(int(cfg.seed))
    # lr 0.1, momentum 0.9: the triangular recipe's start; any finite LR times alike
    stepped = trainable(*composed(cfg), device, lr=0.1, momentum=0.9)
    stepped.step_model.train()
    data_s = step_s = 0.0
    for k in range(warmup + iterations):
        synchronize(device)
        start = time.perf_counter()
        x, y = next_batch(k)
        synchronize(device)
        ready = time.perf_counter()
        sgd_step(stepped.step_model, stepped.optimizer, x, y, stepped.precision)
        synchronize(device)
        done = time.perf_counter()
        if k >= warmup:
            data_s += ready - start
            step_s += done - ready
    data_s, step_s = data_s / iterations, step_s / iterations
    return {"data_ms": 1e3 * data_s, "step_ms": 1e3 * step_s, "data_over_step": data_s / step_s,
            "data_percent_of_step": 100.0 * data_s / step_s,
            "images_per_s": int(cfg.trainer.total_batch) / (data_s + step_s)}


# ---------------------------------------------------------------------------------------------------- device
def synchronize(device: torch.device) -> None:
    """Wait for queued device work (a no-op on the CPU), so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's marketing name (the key of the peak table), or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()}"
    return f"CPU {platform.processor() or platform.machine()}"


def commit_label() -> str:
    """HEAD's short hash, and whether the working tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return (head or "unknown") + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def written_by(command: str) -> str:
    """How a generated file opens: the command, commit, date and CPU its figures were measured with."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    isa = "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "below AVX2"
    cpu = device_name(torch.device("cpu")).removeprefix("CPU ")
    return (f"Written by `{command}` at commit {commit_label()}, {datetime.date.today().isoformat()}, on {cpu} "
            f"({isa}, {os.cpu_count()} CPUs)")


# --------------------------------------------------------------------------------------------------- repeats
def median(values: list[float]) -> float:
    return statistics.median(values)


def interleaved(runners: Mapping[str, Callable[[], T]], repeats: int, warmup: bool = True) -> dict[str, list[T]]:
    """Each runner's results over ``repeats`` rounds, the order rotated every round (no variant always first),
    so a background load hits every variant alike; with ``warmup`` one untimed round first (allocator,
    kernels, MLflow store)."""
    names = list(runners)
    if warmup:
        for run in runners.values():
            run()
    samples: dict[str, list[T]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(runners[name]())
    return samples


# ------------------------------------------------------------------------------------------------- arguments
def positive_int(text: str) -> int:
    """argparse type: an integer > 0, else an error that names the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def split_names(text: str, known: Mapping[str, Any], what: str) -> list[str]:
    """Comma-separated names, each checked against ``known`` (the error names the bad one)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    if not names:
        raise ValueError(f"no {what} given; known: {', '.join(known)}")
    return names


def check_amp(amp: str | None) -> str | None:
    """``--amp``: None (fp32) or a mixed precision the engine knows, else a ValueError naming it."""
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"--amp {amp!r} is not a precision; allowed: {', '.join(AMP_DTYPES)} (or leave it out: fp32)")
    return amp
