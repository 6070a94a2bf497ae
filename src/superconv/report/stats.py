"""The statistics behind every table cell and verdict: mean, std, 95% CI, Welch's t-test, speed-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
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


@dataclass(frozen=True)
class Difference:
    """mean_a - mean_b with its Welch 95% CI and two-sided p; nan CI/p when the data cannot carry a test."""

    diff: float
    ci95: tuple[float, float]
    p: float
    df: float


def difference(m1: float, s1: float, n1: int, m2: float, s2: float | None = None,
               n2: int | None = None) -> Difference:
    """Welch's test of two means from their stats; side 2 without std/n is a fixed number (one-sample t).

    Side 1 is ours and needs n >= 2; side 2 may be a published mean ± std over its n runs.
    """
    diff = m1 - m2
    if n1 < 2:  # one run of ours carries no estimate of its own spread
        return Difference(diff, (math.nan, math.nan), math.nan, math.nan)
    fixed = s2 is None or n2 is None or n2 < 2
    v1, v2 = s1**2 / n1, 0.0 if fixed else s2**2 / n2
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return Difference(diff, (diff, diff), 1.0 if diff == 0 else 0.0, math.inf)
    terms = v1**2 / (n1 - 1) + (0.0 if fixed else v2**2 / (n2 - 1))
    df = (v1 + v2) ** 2 / terms
    half = float(stats.t.ppf(0.975, df)) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Difference(diff, (diff - half, diff + half), p, df)
