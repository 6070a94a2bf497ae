"""Report statistics against hand computation."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from superconv.common.metrics import iterations_to_target
from superconv.report.stats import (
    decide_at_least,
    decide_at_most,
    decide_within,
    difference,
    seeds_to_decide,
    summarize,
)


def test_summary_mean_std_and_t_interval() -> None:
    s = summarize([99.0, 99.2, 99.4])
    assert s.n == 3 and s.mean == pytest.approx(99.2) and s.std == pytest.approx(0.2)
    half = 4.302652729911275 * 0.2 / math.sqrt(3)  # t(0.975, 2)
    assert s.ci == (pytest.approx(99.2 - half), pytest.approx(99.2 + half))


def test_single_value_has_no_interval() -> None:
    s = summarize([98.0])
    assert s.std == 0.0 and math.isnan(s.ci[0])


def test_welch_difference_matches_scipy() -> None:
    a, b = [1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9]
    sa, sb = summarize(a), summarize(b)
    d = difference(sa.mean, sa.std, sa.n, sb.mean, sb.std, sb.n)
    assert d.p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert d.p < 0.001


def test_iterations_to_target_counts_updates() -> None:
    evals = pd.DataFrame({"iteration": [9, 19, 29], "test_acc": [90.0, 98.9, 99.1]})
    assert iterations_to_target(evals, 99.0) == 30
    assert iterations_to_target(evals, 99.5) is None


def test_difference_is_welch_with_satterthwaite_df() -> None:
    d = difference(99.2, 0.1, 3, 99.0, 0.1, 3)
    se = math.sqrt(0.01 / 3 + 0.01 / 3)
    df = (2 * 0.01 / 3) ** 2 / (2 * (0.01 / 3) ** 2 / 2)  # = 4
    assert d.df == pytest.approx(df) and df == pytest.approx(4.0)
    half = 2.7764451051977987 * se  # t(0.975, 4)
    assert d.diff == pytest.approx(0.2) and d.ci == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert d.p == pytest.approx(2 * stats.t.sf(0.2 / se, 4))


def test_difference_against_a_single_number_is_one_sample_t() -> None:
    d = difference(99.2, 0.1, 3, 99.25)
    assert d.df == pytest.approx(2)
    assert d.p == pytest.approx(stats.ttest_1samp([99.1, 99.2, 99.3], 99.25).pvalue)
    one = difference(99.2, 0.0, 1, 99.25)
    assert math.isnan(one.p) and one.diff == pytest.approx(-0.05)


@pytest.mark.parametrize(("ci", "bound", "verdict"), [
    ((0.01, 0.5), 0.0, "reproduced"),
    ((0.0, 0.5), 0.0, "inconclusive"),  # the lower bound must clear the margin, not touch it
    ((-0.2, 0.3), 0.0, "inconclusive"),
    ((-0.5, 0.0), 0.0, "inconclusive"),  # the whole CI must lie on the wrong side
    ((-0.5, -0.01), 0.0, "not reproduced"),
    ((-0.05, 0.3), -0.1, "reproduced"),  # non-inferiority: bound = -margin
    ((math.nan, math.nan), 0.0, "inconclusive"),
])
def test_at_least_decides_by_where_the_ci_lies(ci, bound, verdict) -> None:
    assert decide_at_least(ci, bound) == verdict
    assert decide_at_most((-ci[1], -ci[0]), -bound) == verdict  # the mirror image


@pytest.mark.parametrize(("ci", "verdict"), [
    ((-0.09, 0.09), "reproduced"),
    ((-0.1, 0.05), "inconclusive"),  # touching the tolerance is not inside it
    ((-0.3, 0.05), "inconclusive"),
    ((-0.3, -0.1), "inconclusive"),
    ((-0.3, -0.11), "not reproduced"),
    ((0.11, 0.2), "not reproduced"),
    ((-0.5, 0.5), "inconclusive"),
])
def test_within_is_an_equivalence_test(ci, verdict) -> None:
    assert decide_within(ci, 0.1) == verdict


def test_seeds_to_decide_is_the_first_count_whose_ci_clears_the_margin() -> None:
    n = seeds_to_decide(0.1, 0.02)
    half = lambda k: stats.t.ppf(0.975, k - 1) * math.sqrt(0.02 / k)  # noqa: E731
    assert half(n) < 0.1 <= half(n - 1)
    assert seeds_to_decide(0.0, 0.02) is None  # an effect on the margin is never decided
    assert seeds_to_decide(0.1, 0.02, fixed_variance=0.01) is None  # the fixed part alone is too wide
    assert seeds_to_decide(1.0, 0.0001) == 2
