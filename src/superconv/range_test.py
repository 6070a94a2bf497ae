"""The LR range test (Smith's linear protocol and fastai's exponential one) and its suggestion rules.

The test trains a fresh copy of the model with a rising LR, records the raw and debiased-EMA-smoothed
training loss at every iteration and the held-out loss/accuracy every ``eval_every`` iterations, and
stops once the smoothed loss exceeds ``stop_factor`` x its best. The model and optimizer states are
restored afterwards, so nothing that runs later sees the test's updates.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from superconv.data.loader import DeviceData
from superconv.distributed import is_rank0
from superconv.engine import evaluate, set_hyperparameters, sgd_step
from superconv.tracking import Tracker

CURVE_COLUMNS = ["iteration", "lr", "train_loss", "smoothed_loss", "test_loss", "test_acc"]
RULES = ("accuracy_peak", "steepest", "min_loss_div10")


def range_lr(it: int, iterations: int, start: float, end: float, protocol: str) -> float:
    """LR of iteration ``it``: linear (Smith) or exponential (fastai) from start to end."""
    frac = it / max(iterations - 1, 1)
    if protocol == "linear":
        return start + (end - start) * frac
    return start * (end / start) ** frac


@dataclass
class RangeTestResult:
    rows: list[dict[str, Any]]
    diverged_lr: float | None


def run_range_test(rt: DictConfig, total_batch: int, eval_batch: int, model: torch.nn.Module,
                   optimizer: torch.optim.Optimizer, train_data: DeviceData, test_data: DeviceData,
                   tracker: Tracker, progress: bool = True) -> RangeTestResult:
    """Run the test on ``model``/``optimizer`` and restore both to their states before it."""
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    rows: list[dict[str, Any]] = []
    avg, best, diverged_lr = 0.0, math.inf, None
    model.train()
    try:
        for it in tqdm(range(rt.iterations), desc=f"range test ({rt.protocol})",
                       disable=not (progress and is_rank0()), mininterval=2.0, dynamic_ncols=True):
            lr = range_lr(it, rt.iterations, rt.start_lr, rt.end_lr, rt.protocol)
            set_hyperparameters(optimizer, lr, rt.momentum)
            x, y = train_data.batch(it, total_batch)
            loss = float(sgd_step(model, optimizer, x, y))
            avg = rt.smooth_beta * avg + (1 - rt.smooth_beta) * loss
            smoothed = avg / (1 - rt.smooth_beta ** (it + 1))
            row = {"iteration": it, "lr": lr, "train_loss": loss, "smoothed_loss": smoothed,
                   "test_loss": None, "test_acc": None}
            if (it + 1) % rt.eval_every == 0 or it == rt.iterations - 1:
                result = evaluate(model, test_data, eval_batch, limit=rt.eval_size)
                row.update(test_loss=result.loss, test_acc=result.accuracy)
            rows.append(row)
            tracker.log_metrics({k: row[k] for k in ("lr", "train_loss", "smoothed_loss", "test_loss",
                                                     "test_acc")}, step=it)
            best = min(best, smoothed)
            if not math.isfinite(loss) or (rt.stop_factor and smoothed > rt.stop_factor * best):
                diverged_lr = lr
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    return RangeTestResult(rows, diverged_lr)


def suggest(rows: list[dict[str, Any]], protocol: str) -> dict[str, float | None]:
    """max_lr by every rule (None where the curve does not support it)."""
    lrs = np.array([r["lr"] for r in rows])
    smoothed = np.array([r["smoothed_loss"] for r in rows])
    finite = np.isfinite(smoothed)
    evaluated = [r for r in rows if r["test_acc"] is not None and math.isfinite(r["test_acc"])]
    out: dict[str, float | None] = dict.fromkeys(RULES)
    if evaluated:
        out["accuracy_peak"] = max(evaluated, key=lambda r: r["test_acc"])["lr"]
    usable = finite & (lrs > 0)
    if usable.sum() >= 3:
        x = np.log(lrs[usable]) if protocol == "exponential" else lrs[usable]
        slope = np.gradient(smoothed[usable], x)
        out["steepest"] = float(lrs[usable][int(np.argmin(slope))])
        out["min_loss_div10"] = float(lrs[usable][int(np.argmin(smoothed[usable]))] / 10)
    return out


def suggestion(rows: list[dict[str, Any]], rt: DictConfig, diverged_lr: float | None) -> dict[str, Any]:
    """suggestion.json: every rule's max_lr, the chosen rule's max/min LR, and the curve's provenance."""
    rules = suggest(rows, rt.protocol)
    max_lr = rules.get(rt.rule)
    if max_lr is None:
        raise RuntimeError(f"range_test.rule={rt.rule!r} found no value on this curve; rules: {rules}")
    return {
        "method": rt.rule,
        "max_lr": max_lr,
        "min_lr": max_lr / rt.min_lr_divisor,
        "min_lr_divisor": rt.min_lr_divisor,
        "rules": rules,
        "diverged_lr": diverged_lr,
        "protocol": rt.protocol,
        "start_lr": rt.start_lr,
        "end_lr": rt.end_lr,
        "iterations_run": len(rows),
        "iterations_planned": rt.iterations,
    }
