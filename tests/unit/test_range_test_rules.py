"""Each suggestion rule against values computed by hand on fixed synthetic curves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from superconv.core.range_rules import accuracy_peak, min_loss_div10, steepest, suggest, valley
from superconv.core.range_test import DebiasedEMA
from superconv.core.schedules import range_lr

LRS = np.array([1e-3, 1e-2, 1e-1, 1.0])


def test_valley_takes_fastai_index_in_longest_decreasing_run() -> None:
    losses = np.array([5, 4, 6, 3, 2.5, 2, 1, 1.5, 0.5, 3])
    lrs = np.arange(10) / 100
    # lds = 1 2 1 3 4 5 6 6 7 3 -> ends at 8, starts at 8 - 7 = 1, sections 7/3 -> 1 + 2 + 1 = 4
    assert valley(lrs, losses) == lrs[4]


def test_valley_edge_cases() -> None:
    assert valley(LRS, np.array([1.0, 2.0, 3.0, 4.0])) is None  # never decreases: no valley
    assert valley(LRS[:2], np.array([2.0, 1.0])) == LRS[0]  # fastai's index -1 clamped to the first LR


def test_steepest_is_left_lr_of_most_negative_slope_vs_log_lr() -> None:
    # slopes per ln-unit: -0.1/ln10, -0.9/ln10, +0.2/ln10 -> segment 1
    assert steepest(LRS, np.array([2.0, 1.9, 1.0, 1.2])) == 1e-2


def test_min_loss_div10() -> None:
    assert min_loss_div10(LRS, np.array([2.0, 1.9, 1.0, 1.2])) == pytest.approx(0.01)


def test_accuracy_peak_takes_first_maximum() -> None:
    assert accuracy_peak(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), np.array([10, 50, 80, 80, 30])) == 0.3
    assert accuracy_peak(np.array([]), np.array([])) is None


def _rows(lrs, losses, accs) -> list[dict]:
    return [{"lr": lr, "smoothed_loss": loss, "test_acc": acc} for lr, loss, acc in zip(lrs, losses, accs, strict=True)]


def test_suggest_uses_fastai_window_and_ignores_divergence_and_lr_zero() -> None:
    lrs = [0.01 * i for i in range(20)]  # linear from 0: the log rules must not see lr = 0
    losses = [3.0 - 0.1 * i for i in range(15)] + [10.0, 0.01, math.nan, math.inf, 50.0]
    accs = [None] * 20
    for i, acc in ((4, 20.0), (9, 60.0), (14, 50.0), (16, 99.0)):
        accs[i] = acc
    rules = suggest(_rows(lrs, losses, accs), iterations_planned=20, diverged_iteration=15)
    # loss window: rows 2..14 (skip 20//10 = 2 at the start, the last 5 and everything from divergence)
    # valley: 13 strictly decreasing points -> end 12, start -1, sections 13/3 -> -1 + 4 + 2 = 5 -> row 7
    assert rules["valley"] == pytest.approx(0.07)
    # equal loss steps, shrinking log-LR steps: the last segment (rows 13 -> 14) is steepest
    assert rules["steepest"] == pytest.approx(0.13)
    assert rules["min_loss_div10"] == pytest.approx(0.014)  # row 14, not the post-divergence row 16
    assert rules["accuracy_peak"] == pytest.approx(0.09)  # 99% at row 16 is after divergence
    assert all(v < lrs[15] for v in rules.values())


def test_suggest_without_divergence_drops_only_the_tail() -> None:
    lrs = [0.1 * (i + 1) for i in range(10)]
    losses = [1.0 + 0.1 * i for i in range(10)]  # rising: minimum at the first usable point
    rules = suggest(_rows(lrs, losses, [None] * 10), iterations_planned=10, diverged_iteration=None)
    assert rules["min_loss_div10"] == pytest.approx(0.02)  # window rows 1..4
    assert rules["valley"] is None and rules["accuracy_peak"] is None


def test_debiased_ema_matches_closed_form() -> None:
    ema = DebiasedEMA(0.98)
    values = [2.0, 1.0, 4.0]
    out = [ema.update(v) for v in values]
    assert out[0] == pytest.approx(2.0)  # debiased: the first value is the value itself
    weights = np.array([0.98**2, 0.98, 1.0]) * 0.02
    assert out[2] == pytest.approx(float(weights @ values / weights.sum()))


@pytest.mark.parametrize("protocol", ["linear", "exponential"])
def test_range_lr_spans_start_to_end(protocol: str) -> None:
    lrs = [range_lr(i, 11, 1e-3, 1.0, protocol) for i in range(11)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1.0)
    steps = np.diff(lrs) if protocol == "linear" else np.diff(np.log(lrs))
    assert np.allclose(steps, steps[0])
