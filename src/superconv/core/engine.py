"""The pieces the loop runs: devices, seeding, precision, the model and optimizer it steps, one SGD step, evaluation."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from superconv.core import choices
from superconv.core.data.loader import DeviceData
from superconv.core.distributed import global_sum, local_rank, rank, world_size, wrap_for_ddp
from superconv.core.optim import OptimizerSpec, build_optimizer


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


@dataclass(frozen=True)
class EngineSettings:
    """The trainer values that decide how a model is placed and stepped: core's own settings, which the stages fill
    from the validated config (core reads no config library)."""

    channels_last: bool
    sync_bn: bool
    compile: bool
    cudnn_benchmark: bool
    amp: str | None  # a key of AMP_DTYPES; None: fp32


def build_training_model(model: torch.nn.Module, engine: EngineSettings,
                         device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, step_model): the bare model on ``device``, and what steps it (DDP under torchrun, torch.compile when
    asked).

    Checkpoints and evaluation use the bare model, so a checkpoint resumes under any world size.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = engine.cudnn_benchmark
    wrapped = wrap_for_ddp(place_model(model, device, engine.channels_last), device, engine.sync_bn)
    model = wrapped.module if isinstance(wrapped, DistributedDataParallel) else wrapped
    return model, torch.compile(wrapped) if engine.compile else wrapped


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


AMP_DTYPES = {name: getattr(torch, dtype) for name, dtype in choices.AMP_DTYPES.items()}


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


@dataclass
class Trainable:
    """What the loop steps and a checkpoint holds: the bare model, its stepping wrapper, optimizer, precision."""

    model: torch.nn.Module
    step_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    precision: Precision

    def state_dict(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.precision.scaler is not None:
            state["scaler"] = self.precision.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.precision.scaler is not None and "scaler" in state:
            self.precision.scaler.load_state_dict(state["scaler"])


def build_trainable(model: torch.nn.Module, optimizer: OptimizerSpec, engine: EngineSettings, device: torch.device,
                    lr: float, momentum: float) -> Trainable:
    """``model`` placed and wrapped, its optimizer and precision; the optimizer starts at the schedule's first
    lr/momentum."""
    model, step_model = build_training_model(model, engine, device)
    return Trainable(model, step_model, build_optimizer(optimizer, model, lr, momentum),
                     Precision.for_device(device, engine.amp))


def classification_step(trainable: Trainable, data: DeviceData, total_batch: int) -> Callable[[int], torch.Tensor]:
    """One cross-entropy SGD step on this rank's share of global batch ``it`` (stateless data order)."""
    rank_, world = rank(), world_size()
    return lambda it: sgd_step(trainable.step_model, trainable.optimizer, *data.batch(it, total_batch, rank_, world),
                               trainable.precision)


def held_out(trainable: Trainable, data: DeviceData, batch_size: int,
             limit: int | None = None) -> Callable[[], Evaluation]:
    """Loss/accuracy of the bare model on the first ``limit`` samples of ``data`` (all when None)."""
    return lambda: evaluate(trainable.model, data, batch_size, limit=limit, precision=trainable.precision)
