"""Sequential seeds: an undecided claim gets more seeds a batch at a time, up to the study's cap, with its error rate
kept honest under the repeated looks.

The rule is Bonferroni alpha spending over looks fixed in advance. A plan names the first look (``start`` seeds), the
``batch`` added per look and the cap (``max_seeds``): looks at n = start, start + batch, ..., max_seeds, K of them.
Every look decides by a CI at level 1 - alpha/K, so the chance that any look's CI misses the truth is at most alpha
(the union bound) whichever look the claim stops at: a verdict cannot be reached by looking until the noise agrees.
It is conservative (a Pocock or O'Brien-Fleming boundary would be narrower at the same alpha) but exact under any
stopping rule, needs no simulation to set, and a reader can check it by hand. A claim stops at the first look whose
verdict is decided (reproduced or not reproduced), or at the cap; before its next look's seeds exist it waits.
tests/unit/test_sequential.py checks the coverage by simulation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from superconv.report.results import RunSet
from superconv.report.stats import LEVEL, pct

DECIDED = ("reproduced", "not reproduced")


@dataclass(frozen=True)
class Plan:
    """A claim's seed budget: ``start`` seeds at the first look, ``batch`` more per look, at most ``max_seeds``."""

    start: int
    max_seeds: int
    batch: int = 2
    alpha: float = 1 - LEVEL

    def __post_init__(self) -> None:
        if not 2 <= self.start <= self.max_seeds or self.batch < 1 or not 0 < self.alpha < 1:
            raise ValueError(f"a sequential plan needs 2 <= start <= max_seeds, batch >= 1 and 0 < alpha < 1; "
                             f"got start={self.start}, max_seeds={self.max_seeds}, batch={self.batch}, "
                             f"alpha={self.alpha}")

    @property
    def looks(self) -> tuple[int, ...]:
        return tuple(sorted({*range(self.start, self.max_seeds, self.batch), self.max_seeds}))

    @property
    def level(self) -> float:
        """Each look's CI level: alpha spent equally over the planned looks."""
        return 1 - self.alpha / len(self.looks)

    def rule(self) -> str:
        return (f"sequential: Bonferroni over the looks at n = {', '.join(map(str, self.looks))} (each CI at "
                f"{pct(self.level)}, overall error <= {self.alpha:g})")


@dataclass(frozen=True)
class Look:
    n: int
    verdicts: tuple[str, ...]


@dataclass(frozen=True)
class Sequence:
    """The looks a claim took, and why it stopped: decided, cap reached, or waiting for the seeds of ``next_n``."""

    plan: Plan
    looks: tuple[Look, ...]
    stopped: str  # "decided" | "cap reached" | "waiting for seeds"
    next_n: int | None = None

    @property
    def n(self) -> int:
        return self.looks[-1].n if self.looks else 0

    def describe(self) -> str:
        taken = ", ".join(f"n={look.n}" for look in self.looks) or "none yet"
        why = {"decided": f"decided at n={self.n}", "cap reached": f"cap of {self.plan.max_seeds} seeds reached",
               "waiting for seeds": f"waiting for seeds: the next look needs n={self.next_n}"}[self.stopped]
        return f"{self.plan.rule()}; looks taken: {taken}; stopped: {why}"


def walk(plan: Plan, available: int, judge: Callable[[int, float], list[str]]) -> Sequence:
    """Take the plan's looks in order while their seeds exist (``available``): ``judge(n, level)`` gives the verdicts
    on the first n seeds at that look's level. Stop at the first look where none is inconclusive."""
    taken: list[Look] = []
    for n in plan.looks:
        if n > available:
            return Sequence(plan, tuple(taken), "waiting for seeds", n)
        verdicts = tuple(judge(n, plan.level))
        taken.append(Look(n, verdicts))
        if all(v in DECIDED for v in verdicts):
            return Sequence(plan, tuple(taken), "decided")
    return Sequence(plan, tuple(taken), "cap reached")


def first_seeds(runs: RunSet, names: Iterable[str], n: int) -> RunSet:
    """``runs`` with each of ``names`` cut to its n lowest seeds (every other run as it is): a look sees only the
    seeds it was planned on, so re-reading committed results retraces the same looks."""
    names = set(names)

    def keep(frame: pd.DataFrame) -> pd.Series:
        rank = frame.groupby("run")["seed"].rank(method="dense")
        return ~frame["run"].isin(names) | (rank <= n)


    kept = runs.summaries[keep(runs.summaries)]
    m = runs.metrics
    if len(m):
        m = m[pd.MultiIndex.from_frame(m[["run", "seed"]]).isin(pd.MultiIndex.from_frame(kept[["run", "seed"]]))]
    return RunSet(kept, m)


def seeds_of(runs: RunSet, names: Iterable[str]) -> int:
    """The seeds every one of ``names`` has (finished or diverged): what the next look can use."""
    s = runs.summaries
    counts = [s.loc[s["run"] == name, "seed"].nunique() for name in names]
    return min(counts) if counts else 0
