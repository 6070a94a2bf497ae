"""Suggestion rules: from a range-test curve to max_lr, every rule computed, one chosen by config.

Every rule sees only points before the first divergent one and with lr > 0, so no rule returns a value
at or after divergence and the log-LR rules never take log(0). The loss rules use fastai's window on
top of that: skip the first ``planned // 10`` iterations (smoothed loss still settling) and the last 5
recorded ones (the run-up to the blow-up), as ``Learner.lr_find`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from superconv.core.range_test import RangeTestResult

TAIL_SKIP = 5  # fastai lr_find: losses[num_it//10 : -5]


def accuracy_peak(lrs: np.ndarray, accs: np.ndarray) -> float | None:
    """Smith: the LR where held-out accuracy peaks (first maximum) before it falls."""
    if len(lrs) == 0:
        return None
    return float(lrs[int(np.argmax(accs))])


def valley(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai >= 2.7 ``valley``: longest decreasing subsequence of the loss, LR at half of its middle third.

    ``lds[i]`` is the length of the longest strictly decreasing subsequence ending at ``i``; the valley
    ends at the first index of the longest one and starts ``lds`` points before it (fastai's arithmetic,
    kept exactly). Where fastai's index would be -1 (and wrap to the last, divergent LR) we take index 0;
    a curve that never decreases has no valley (None, where fastai returns the last LR).
    """
    n = len(losses)
    if n < 2:
        return None
    lds = np.ones(n, dtype=int)
    for i in range(1, n):
        higher = losses[:i] > losses[i]
        if higher.any():
            lds[i] = lds[:i][higher].max() + 1
    end = int(np.argmax(lds))
    if lds[end] < 2:
        return None
    start = end - int(lds[end])
    sections = (end - start) / 3
    return float(lrs[max(start + int(sections) + int(sections / 2), 0)])


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai ``steep``: left LR of the most negative forward-difference slope of loss vs log LR."""
    if len(lrs) < 2:
        return None
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(slopes))])


def min_loss_div10(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai ``minimum``: the LR of the lowest smoothed loss, divided by 10."""
    if len(lrs) == 0:
        return None
    return float(lrs[int(np.argmin(losses))] / 10)


def _column(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float)


def suggest(rows: list[dict[str, Any]], iterations_planned: int, diverged_iteration: int | None) -> dict[
        str, float | None]:
    """max_lr by every rule (None where the curve does not support it)."""
    lrs, smoothed, accs = _column(rows, "lr"), _column(rows, "smoothed_loss"), _column(rows, "test_acc")
    cut = len(rows) if diverged_iteration is None else diverged_iteration
    before = (np.arange(len(rows)) < cut) & (lrs > 0)
    evaluated = before & np.isfinite(accs)
    window = before & np.isfinite(smoothed)
    window[: iterations_planned // 10] = False
    window[max(len(rows) - TAIL_SKIP, 0):] = False
    return {
        "accuracy_peak": accuracy_peak(lrs[evaluated], accs[evaluated]),
        "valley": valley(lrs[window], smoothed[window]),
        "steepest": steepest(lrs[window], smoothed[window]),
        "min_loss_div10": min_loss_div10(lrs[window], smoothed[window]),
    }


def warnings_for(rules: dict[str, float | None], rule: str, rows: list[dict[str, Any]],
                 diverged_lr: float | None) -> list[str]:
    """Plain-language caveats about the chosen value, stored next to it in suggestion.json."""
    notes = []
    chosen = rules[rule]
    last_lr = max((r["lr"] for r in rows), default=0.0)
    if diverged_lr is None:
        notes.append("the loss never diverged: end_lr may be too low to bracket the largest usable LR")
    if rule == "accuracy_peak" and chosen is not None and diverged_lr is None and chosen >= last_lr:
        notes.append("test accuracy still peaks at the last evaluation: raise end_lr")
    missing = [name for name, value in rules.items() if value is None]
    if missing:
        notes.append(f"no value on this curve for: {', '.join(missing)}")
    return notes


class NoSuggestion(RuntimeError):
    """The configured rule found no value on this curve; the message lists what the other rules found."""


def suggestion(result: RangeTestResult, iterations: int, rule: str, min_lr_divisor: float) -> dict[str, Any]:
    """suggestion.json's core: every rule's max_lr, the chosen ``rule``'s max/min LR (min = max / min_lr_divisor),
    and how the run ended (the stage adds the values it ran with, as written)."""
    rules = suggest(result.rows, iterations, result.diverged_iteration)
    max_lr = rules[rule]
    if max_lr is None:
        raise NoSuggestion(f"range_test.rule={rule!r} found no value on this curve (rules: {rules}); "
                           "pick another rule or widen start_lr..end_lr.")
    return {
        "method": rule,
        "max_lr": max_lr,
        "min_lr": max_lr / min_lr_divisor,
        "rules": rules,
        "diverged_lr": result.diverged_lr,
        "stopped_early": result.stopped_early,
        "warnings": warnings_for(rules, rule, result.rows, result.diverged_lr),
        "iterations_planned": iterations,
        "iterations_run": len(result.rows),
    }
