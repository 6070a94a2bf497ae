"""The statistics behind every table cell and verdict: mean, std, 95% CI, Welch's t-test, speed-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample std (ddof=1); 0 when n == 1
    ci95: tuple[float, float]


def summarize(values: list[float] | np.ndarray) -> Summary:
    """Mean, sample std and a t-based 95% confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    if n > 1:
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
        ci = (mean - half, mean + half)
    else:
        ci = (math.nan, math.nan)
    return Summary(n, mean, std, ci)


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided Welch t-test p-value, or None when either side has fewer than 2 values."""
    if len(a) < 2 or len(b) < 2:
        return None
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def welch_p_from_stats(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float | None:
    """Welch's test against a published mean ± std (n runs)."""
    if n1 < 2 or n2 < 2:
        return None
    return float(stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False).pvalue)


def iterations_to_target(evals: pd.DataFrame, target: float) -> float | None:
    """First evaluated iteration count (updates done) whose test accuracy reaches ``target``."""
    hit = evals[evals["test_acc"] >= target]
    return float(hit["iteration"].iloc[0] + 1) if len(hit) else None
