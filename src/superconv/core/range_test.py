"""The LR range test: an LR ramp (``schedules.range_ramp``) run by the training loop, plus a monitor.

Smith's protocol ramps the LR linearly and reads held-out accuracy; fastai's ramps it exponentially and
reads the training loss. The monitor records the debiased-EMA-smoothed loss of every iteration, marks
divergence (loss not finite, or smoothed loss above ``diverge_factor`` x its best) and stops the loop on a
non-finite loss or, when ``stop_factor`` is set, once the smoothed loss exceeds ``stop_factor`` x its best.
Everything else (batched loss reads, evaluation, MLflow, progress bar, checkpoints, signals, resume) is
the loop's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from superconv.common.tracking import Tracker
from superconv.core.engine import Trainable
from superconv.core.loop import IN_MEMORY, Checkpointing, Evaluate, LoopSettings, Step, run_loop
from superconv.core.schedules import range_ramp

CURVE_COLUMNS = ["iteration", "lr", "train_loss", "smoothed_loss", "test_loss", "test_acc"]


class DebiasedEMA:
    """fastai's AvgSmoothLoss: EMA of the loss divided by (1 - beta^n), so early values are not pulled to 0."""

    def __init__(self, beta: float) -> None:
        self.beta, self.avg, self.count = beta, 0.0, 0

    def update(self, value: float) -> float:
        self.count += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * value
        return self.avg / (1 - self.beta**self.count)


def _exceeds(smoothed: float, best: float, factor: float | None) -> bool:
    return bool(factor) and smoothed > factor * best


class RangeTestMonitor:
    """The range test's smoothing, divergence mark and stop rule, fed each loss in order by the loop."""

    columns = ("smoothed_loss",)

    def __init__(self, smooth_beta: float, stop_factor: float | None, diverge_factor: float | None) -> None:
        self.ema = DebiasedEMA(smooth_beta)
        self.stop_factor, self.diverge_factor = stop_factor, diverge_factor
        self.best = math.inf
        self.diverged_at: int | None = None  # iteration (= row index) of the first divergent point
        self.reason: str | None = None

    def observe(self, iteration: int, loss: float) -> dict[str, float]:
        smoothed = self.ema.update(loss)
        finite = math.isfinite(loss)
        self.best = min(self.best, smoothed) if finite else self.best
        if self.diverged_at is None and (not finite or _exceeds(smoothed, self.best, self.diverge_factor)):
            self.diverged_at = iteration
        if not finite or _exceeds(smoothed, self.best, self.stop_factor):
            self.reason = (f"loss is {loss} at iteration {iteration}" if not finite else
                           f"smoothed loss {smoothed:.4g} exceeds {self.stop_factor}x its best ({self.best:.4g})")
            self.diverged_at = iteration if self.diverged_at is None else self.diverged_at
        return {"smoothed_loss": smoothed}

    def state_dict(self) -> dict[str, Any]:
        return {"avg": self.ema.avg, "count": self.ema.count, "best": self.best, "diverged_at": self.diverged_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.avg, self.ema.count, self.best = state["avg"], state["count"], state["best"]
        self.diverged_at = state["diverged_at"]


@dataclass
class RangeTestResult:
    rows: list[dict[str, Any]]
    diverged_lr: float | None
    diverged_iteration: int | None  # index into rows of the first divergent point
    stopped_early: bool


def run_range_test(rt: Any, trainable: Trainable, step: Step, evaluate: Evaluate | None, tracker: Tracker, *,
                   iterations_per_epoch: float = 1.0, batch: int = 0, log_every: int = 20, progress: bool = True,
                   checkpoint_every: int = 0, checkpointing: Checkpointing = IN_MEMORY,
                   resume: dict[str, Any] | None = None) -> RangeTestResult:
    """Ramp the LR over ``rt.iterations`` with ``step``; ``evaluate`` every ``rt.eval_every`` iterations and at
    the last one (never when it or ``rt.eval_every`` is None)."""
    n = int(rt.iterations)
    schedule = range_ramp(rt.protocol, float(rt.start_lr), float(rt.end_lr), n, float(rt.momentum))
    monitor = RangeTestMonitor(rt.smooth_beta, rt.stop_factor, rt.diverge_factor)
    settings = LoopSettings(iterations=n, iterations_per_epoch=iterations_per_epoch, batch=batch,
                            eval_every=rt.eval_every if evaluate is not None else None, log_every=log_every,
                            checkpoint_every=checkpoint_every, progress=progress, desc=f"range test ({rt.protocol})")
    result = run_loop(trainable, schedule, step, evaluate, settings, monitor, tracker, checkpointing, resume)
    rows = result.rows
    at = monitor.diverged_at
    return RangeTestResult(rows, rows[at]["lr"] if at is not None else None, at, len(rows) < n)
