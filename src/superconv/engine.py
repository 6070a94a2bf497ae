"""What training and the range test share: devices, seeding, precision, one SGD step, evaluation, divergence."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.nn.parallel import DistributedDataParallel

from superconv.data.loader import DeviceData
from superconv.distributed import global_sum, local_rank, rank, world_size, wrap_for_ddp
from superconv.models import build_model


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; under torchrun each rank takes GPU LOCAL_RANK."""
    device = torch.device("cuda" if name == "auto" and torch.cuda.is_available() else
                          "cpu" if name == "auto" else name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    return device


def place_model(model: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """Move the model to its device, in NHWC layout when asked (faster convolutions and pooling)."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def build_training_model(cfg: DictConfig, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(bare model, model to train): the second adds DDP under torchrun and torch.compile when asked.

    Checkpoints and evaluation use the bare model, so a checkpoint resumes under any world size.
    """
    trainer = cfg.trainer
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(trainer.cudnn_benchmark)
    model = wrap_for_ddp(place_model(build_model(cfg.model), device, trainer.channels_last), device,
                         bool(trainer.sync_bn))
    net = model.module if isinstance(model, DistributedDataParallel) else model
    return net, torch.compile(model) if trainer.compile else model


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed every RNG the run touches (same config + seed -> same curves on CPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(int(threads))


def set_hyperparameters(optimizer: torch.optim.Optimizer, lr: float, momentum: float) -> None:
    """Write the schedule's lr and momentum into every param group."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if "momentum" in group:
            group["momentum"] = momentum


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """Mixed precision for the forward pass: fp32 (``amp=None``), bf16, or fp16 with a gradient scaler.

    bf16 keeps fp32's exponent range, so it needs no scaler; fp16 does (its small gradients underflow).
    """

    device_type: str = "cpu"
    amp: str | None = None
    scaler: torch.amp.GradScaler | None = None

    @classmethod
    def for_device(cls, device: torch.device, amp: str | None) -> Precision:
        if amp is not None and amp not in AMP_DTYPES:
            raise ValueError(f"trainer.amp={amp!r}; allowed: null, {', '.join(AMP_DTYPES)}")
        scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
        return cls(device.type, amp, scaler)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=AMP_DTYPES.get(self.amp, torch.bfloat16),
                              enabled=self.amp is not None)


def sgd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
             y: torch.Tensor, precision: Precision | None = None) -> torch.Tensor:
    """Forward (under autocast when asked), cross-entropy, backward, update; returns the detached loss."""
    precision = precision or FP32
    with precision.autocast():
        loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is None:
        loss.backward()
        optimizer.step()
    else:
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    return loss.detach()


FP32 = Precision()


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float  # percent


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DeviceData, batch_size: int, limit: int | None = None,
             precision: Precision | None = None) -> Evaluation:
    """Mean cross-entropy and top-1 accuracy (%) over the first ``limit`` samples of ``data``.

    Under torchrun each rank scores its own contiguous share and the sums are added over ranks, so the
    result is the whole set's, computed once. Pass the bare module, not the DDP wrapper.
    """
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=data.device)  # loss, correct, count
    with (precision or FP32).autocast():
        for x, y in data.chunks(batch_size, limit, rank(), world_size()):
            logits = model(x)
            sums[0] += F.cross_entropy(logits.float(), y, reduction="sum").double()
            sums[1] += (logits.argmax(1) == y).sum()
            sums[2] += len(y)
    model.train(was_training)
    total_loss, correct, count = global_sum(sums).tolist()
    return Evaluation(total_loss / count, 100.0 * correct / count)


class DivergenceGuard:
    """Flags a run whose loss is not finite or has grown ``factor`` x above its first value."""

    def __init__(self, factor: float | None) -> None:
        self.factor = factor
        self.first: float | None = None
        self.reason: str | None = None

    def check(self, iteration: int, loss: float) -> bool:
        """True (and ``reason`` set) when the run has diverged."""
        if not math.isfinite(loss):
            self.reason = f"loss is {loss} at iteration {iteration}"
        elif self.first is None:
            self.first = loss
        elif self.factor and loss > self.factor * self.first:
            self.reason = (f"loss {loss:.4g} at iteration {iteration} exceeds {self.factor}x "
                           f"the first ({self.first:.4g})")
        return self.reason is not None
