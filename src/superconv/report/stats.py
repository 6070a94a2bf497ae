"""The statistics behind every table cell and verdict: mean, std, a t-based CI (95% unless a sequential plan asks
for more), Welch's t-test, speed-up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # every CI's confidence unless a sequential plan (report.sequential) spends its error over looks


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # sample std (ddof=1); 0 when n == 1
    ci: tuple[float, float]  # at ``level``
    level: float = LEVEL


def pct(level: float) -> str:
    """A CI's confidence as the verdicts print it: 95%, 99%, 98.75%."""
    return f"{level * 100:.4g}%"


def _t(level: float, df: float) -> float:
    return float(stats.t.ppf(1 - (1 - level) / 2, df))


def summarize(values: list[float] | np.ndarray, level: float = LEVEL) -> Summary:
    """Mean, sample std and a t-based confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    if n > 1:
        half = _t(level, n - 1) * std / math.sqrt(n)
        ci = (mean - half, mean + half)
    else:
        ci = (math.nan, math.nan)
    return Summary(n, mean, std, ci, level)


@dataclass(frozen=True)
class Difference:
    """mean_a - mean_b with its Welch CI (at ``level``) and two-sided p; nan CI/p when the data cannot carry a
    test."""

    diff: float
    ci: tuple[float, float]
    p: float
    df: float
    level: float = LEVEL


def difference(m1: float, s1: float, n1: int, m2: float, s2: float | None = None,
               n2: int | None = None, level: float = LEVEL) -> Difference:
    """Welch's test of two means from their stats; side 2 without std/n is a fixed number (one-sample t).

    Side 1 is ours and needs n >= 2; side 2 may be a published mean ± std over its n runs.
    """
    diff = m1 - m2
    if n1 < 2:  # one run of ours carries no estimate of its own spread
        return Difference(diff, (math.nan, math.nan), math.nan, math.nan, level)
    fixed = s2 is None or n2 is None or n2 < 2
    v1, v2 = s1**2 / n1, 0.0 if fixed else s2**2 / n2
    se = math.sqrt(v1 + v2)
    if se == 0.0:
        return Difference(diff, (diff, diff), 1.0 if diff == 0 else 0.0, math.inf, level)
    terms = v1**2 / (n1 - 1) + (0.0 if fixed else v2**2 / (n2 - 1))
    df = (v1 + v2) ** 2 / terms
    half = _t(level, df) * se
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return Difference(diff, (diff - half, diff + half), p, df, level)


# --- decisions by confidence interval ------------------------------------------------------------------------------
# A verdict must not outrun its evidence: each rule names its margin and decides by where the 95% CI lies against it.
# "reproduced" needs the whole CI on the claim's side, "not reproduced" the whole CI on the other side; anything
# that straddles the margin is "inconclusive" (and seeds_to_decide says roughly how many seeds would settle it).

def decide_at_least(ci: tuple[float, float], bound: float) -> str:
    """Claim: the quantity is >= ``bound`` (non-inferiority with bound = -margin)."""
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    return "reproduced" if lo > bound else "not reproduced" if hi < bound else "inconclusive"


def decide_at_most(ci: tuple[float, float], bound: float) -> str:
    """Claim: the quantity is <= ``bound`` (a speed-up ratio under its maximum)."""
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    return "reproduced" if hi < bound else "not reproduced" if lo > bound else "inconclusive"


def decide_within(ci: tuple[float, float], tolerance: float) -> str:
    """Claim: the quantity lies within ±``tolerance`` (equivalence to a published value)."""
    lo, hi = ci
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if -tolerance < lo and hi < tolerance:
        return "reproduced"
    return "not reproduced" if hi < -tolerance or lo > tolerance else "inconclusive"


MAX_SEEDS = 200


def seeds_to_decide(gap: float, variance_per_seed: float, fixed_variance: float = 0.0) -> int | None:
    """Seeds per run at which a 95% CI of the observed effect would no longer cross the margin ``gap`` away.

    ``variance_per_seed`` is the summed per-seed variance of the sides that get more seeds (ours, or ours plus a
    baseline run as often); ``fixed_variance`` a part more seeds do not shrink (a published mean's). Assumes the
    observed mean and spread stay; None when no count up to MAX_SEEDS would do (the effect sits on the margin).
    """
    if not gap > 0 or math.isnan(variance_per_seed):
        return None
    for n in range(2, MAX_SEEDS + 1):
        half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(variance_per_seed / n + fixed_variance)
        if half < gap:
            return n
    return None


def seeds_note(needed: int | None, have: int) -> str:
    """The inconclusive verdict's last words: how many seeds would likely decide it."""
    if needed is None:
        return f"more seeds would not likely decide it (the observed effect sits on the margin; n={have})"
    return f"about {needed} seeds per run would likely decide it, from the observed spread (n={have} now)"
