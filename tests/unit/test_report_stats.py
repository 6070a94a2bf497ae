"""Report statistics against hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from superconv.report.stats import iterations_to_target, summarize, welch_p


def test_summary_mean_std_and_t_interval() -> None:
    s = summarize([99.0, 99.2, 99.4])
    assert s.n == 3 and s.mean == pytest.approx(99.2) and s.std == pytest.approx(0.2)
    half = 4.302652729911275 * 0.2 / math.sqrt(3)  # t(0.975, 2)
    assert s.ci95 == (pytest.approx(99.2 - half), pytest.approx(99.2 + half))


def test_single_value_has_no_interval() -> None:
    s = summarize([98.0])
    assert s.std == 0.0 and math.isnan(s.ci95[0])


def test_welch_needs_two_values_per_side() -> None:
    assert welch_p([1.0], [2.0, 3.0]) is None
    assert welch_p([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) < 0.001


def test_iterations_to_target_counts_updates() -> None:
    evals = pd.DataFrame({"iteration": [9, 19, 29], "test_acc": [90.0, 98.9, 99.1]})
    assert iterations_to_target(evals, 99.0) == 30
    assert iterations_to_target(evals, 99.5) is None
