"""The LR range test loop: Smith's linear protocol and fastai's exponential one.

The test trains the given model with a rising LR, records the raw and debiased-EMA-smoothed training
loss at every iteration and, every ``eval_every`` iterations, the held-out loss/accuracy. It marks
divergence (loss not finite, or smoothed loss above ``diverge_factor`` x its best) and stops on a
non-finite loss or, when ``stop_factor`` is set, once the smoothed loss exceeds ``stop_factor`` x its
best. The model and optimizer states are restored afterwards, so nothing that runs later sees the
test's updates. The loop takes the training step as a closure, so any model, loss and data work.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from superconv.data.loader import DeviceData
from superconv.distributed import any_rank, global_mean, is_rank0, rank, world_size
from superconv.engine import Evaluation, Precision, evaluate, set_hyperparameters, sgd_step
from superconv.tracking import Tracker

CURVE_COLUMNS = ["iteration", "lr", "train_loss", "smoothed_loss", "test_loss", "test_acc"]
Step = Callable[[int], torch.Tensor]
Evaluate = Callable[[], Evaluation]


def range_lr(it: int, iterations: int, start: float, end: float, protocol: str) -> float:
    """LR of iteration ``it``: linear (Smith) or exponential (fastai) from start to end inclusive."""
    frac = it / max(iterations - 1, 1)
    if protocol == "linear":
        return start + (end - start) * frac
    return start * (end / start) ** frac


class DebiasedEMA:
    """fastai's AvgSmoothLoss: EMA of the loss divided by (1 - beta^n), so early values are not pulled to 0."""

    def __init__(self, beta: float) -> None:
        self.beta, self.avg, self.count = beta, 0.0, 0

    def update(self, value: float) -> float:
        self.count += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta**self.count)


@dataclass
class RangeTestResult:
    rows: list[dict[str, Any]]
    diverged_lr: float | None
    diverged_iteration: int | None  # index into rows of the first divergent point
    stopped_early: bool


def classification_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, data: DeviceData,
                        total_batch: int, precision: Precision | None = None) -> Step:
    """One cross-entropy SGD step on this rank's share of global batch ``it`` (as training takes it)."""
    return lambda it: sgd_step(model, optimizer, *data.batch(it, total_batch, rank(), world_size()), precision)


def held_out_evaluation(model: torch.nn.Module, data: DeviceData, batch_size: int, limit: int | None,
                        precision: Precision | None = None) -> Evaluate:
    """Loss/accuracy on the first ``limit`` held-out samples (a fixed subset, so points are comparable)."""
    return lambda: evaluate(model, data, batch_size, limit=limit, precision=precision)


def _exceeds(smoothed: float, best: float, factor: float | None) -> bool:
    return bool(factor) and smoothed > factor * best


def run_range_test(rt: DictConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: Step,
                   evaluate_fn: Evaluate | None, tracker: Tracker, progress: bool = True) -> RangeTestResult:
    """Run the test with ``step`` and restore ``model``/``optimizer`` to their states before it.

    ``evaluate_fn`` runs every ``rt.eval_every`` iterations and at the last one (never when it or
    ``rt.eval_every`` is None). Under torch.distributed the loss is averaged over ranks and the stop
    decision agreed, so every rank records the same curve and stops at the same iteration.
    """
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    was_training = model.training
    device = next(model.parameters()).device
    n, protocol, start, end, momentum = rt.iterations, rt.protocol, rt.start_lr, rt.end_lr, rt.momentum
    stop_factor, diverge_factor = rt.stop_factor, rt.diverge_factor  # plain values: DictConfig reads are slow
    every = rt.eval_every if evaluate_fn is not None else None
    ema = DebiasedEMA(rt.smooth_beta)
    rows: list[dict[str, Any]] = []
    best, diverged_at, stopped = math.inf, None, False
    model.train()
    try:
        for it in tqdm(range(n), desc=f"range test ({protocol})", disable=not (progress and is_rank0()),
                       mininterval=2.0, dynamic_ncols=True):
            lr = range_lr(it, n, start, end, protocol)
            set_hyperparameters(optimizer, lr, momentum)
            loss = float(global_mean(step(it)))
            smoothed = ema.update(loss)
            row = {"iteration": it, "lr": lr, "train_loss": loss, "smoothed_loss": smoothed,
                   "test_loss": None, "test_acc": None}
            finite = math.isfinite(loss)
            if every and finite and ((it + 1) % every == 0 or it == n - 1):
                result = evaluate_fn()
                row.update(test_loss=result.loss, test_acc=result.accuracy)
            rows.append(row)
            tracker.log_metrics({k: row[k] for k in CURVE_COLUMNS[1:] if row[k] is None or math.isfinite(row[k])},
                                step=it)
            best = min(best, smoothed) if finite else best
            if diverged_at is None and (not finite or _exceeds(smoothed, best, diverge_factor)):
                diverged_at = it
            if any_rank(not finite or _exceeds(smoothed, best, stop_factor), device):
                stopped = it < n - 1
                diverged_at = it if diverged_at is None else diverged_at
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        model.train(was_training)
    diverged_lr = rows[diverged_at]["lr"] if diverged_at is not None else None
    return RangeTestResult(rows, diverged_lr, diverged_at, stopped)
