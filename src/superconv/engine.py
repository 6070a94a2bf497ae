"""What training and the range test share: devices, seeding, one SGD step, evaluation, divergence."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from superconv.data.loader import DeviceData


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def place_model(model: torch.nn.Module, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """Move the model to its device, in NHWC layout when asked (faster convolutions and pooling)."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


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


def sgd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
             y: torch.Tensor) -> torch.Tensor:
    """Forward, cross-entropy, backward, update; returns the (detached) minibatch loss."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float  # percent


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DeviceData, batch_size: int, limit: int | None = None) -> Evaluation:
    """Mean cross-entropy and top-1 accuracy (%) over the first ``limit`` samples of ``data``."""
    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), dtype=torch.float64, device=data.device)
    correct = torch.zeros((), dtype=torch.int64, device=data.device)
    count = 0
    for x, y in data.chunks(batch_size, limit):
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").double()
        correct += (logits.argmax(1) == y).sum()
        count += len(y)
    model.train(was_training)
    return Evaluation(float(total_loss) / count, 100.0 * float(correct) / count)


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
