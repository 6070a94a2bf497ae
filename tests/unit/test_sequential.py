"""Sequential seeds: the looks a plan takes, its error rate under repeated looks (by simulation: seeded, fast),
and a claim decided by its looks on fixture runs."""

from __future__ import annotations

import numpy as np
import pytest

from superconv.report.claims import judge_claims
from superconv.report.reference import load_reference
from superconv.report.results import load_run_dirs, load_study_runs
from superconv.report.sequential import Plan, walk
from superconv.report.stats import decide_at_least, difference
from superconv.report.tables import accuracy_table
from tests.report_data import write_run

MNIST = "paper_mnist_lenet"


def test_a_plan_fixes_its_looks_and_spends_alpha_over_them() -> None:
    plan = Plan(start=4, max_seeds=12, batch=2)
    assert plan.looks == (4, 6, 8, 10, 12) and plan.level == pytest.approx(0.99)
    assert Plan(start=4, max_seeds=9, batch=2).looks == (4, 6, 8, 9)
    assert Plan(start=4, max_seeds=4).looks == (4,) and Plan(start=4, max_seeds=4).level == pytest.approx(0.95)
    with pytest.raises(ValueError, match="start <= max_seeds"):
        Plan(start=6, max_seeds=4)


def _error_rate(plan: Plan, effect: float, sims: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Two runs with per-seed spread 1 and a true difference ``effect``, judged as a `better` claim at margin 0
    through ``plan``'s looks: (the share of sequences whose stopping look's verdict is wrong, the share in which any
    look's CI misses the true difference)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(effect, 1.0, (sims, plan.max_seeds))
    b = rng.normal(0.0, 1.0, (sims, plan.max_seeds))
    wrong = missed = 0
    for x, y in zip(a, b, strict=True):
        cis = []

        def judge(n: int, level: float, x: np.ndarray = x, y: np.ndarray = y, cis: list = cis) -> list[str]:
            d = difference(x[:n].mean(), x[:n].std(ddof=1), n, y[:n].mean(), y[:n].std(ddof=1), n, level)
            cis.append(d.ci)
            return [decide_at_least(d.ci, 0.0)]

        seq = walk(plan, plan.max_seeds, judge)
        final = seq.looks[-1].verdicts[0]
        truth = "reproduced" if effect > 0 else "not reproduced" if effect < 0 else None
        wrong += final != "inconclusive" and final != truth
        missed += any(not lo <= effect <= hi for lo, hi in cis)
    return wrong / sims, missed / sims


def test_the_bonferroni_looks_keep_the_error_rate_that_naive_looks_inflate() -> None:
    """On the margin (no true effect) any decided verdict is an error: with 5 looks at 95% each (stopping at the
    first decided one) about 11% of sequences decide wrongly here; spending alpha over the looks keeps it under 5%
    (2.4% here), and so is the chance that any look's CI misses the truth (simultaneous coverage >= 95%)."""
    plan = Plan(start=4, max_seeds=12, batch=2)
    naive = Plan(start=4, max_seeds=12, batch=2, alpha=0.05 * len(plan.looks))  # each look at 95%
    assert naive.level == pytest.approx(0.95)
    wrong, missed = _error_rate(plan, 0.0)
    naive_wrong, naive_missed = _error_rate(naive, 0.0)
    assert wrong <= 0.05 and missed <= 0.05, (wrong, missed)
    assert naive_wrong > 0.08 and naive_missed > 0.08, (naive_wrong, naive_missed)
    # with a true effect the coverage holds too, and a real difference of 1.5 spreads is decided right
    wrong, missed = _error_rate(plan, 1.5, sims=500, seed=1)
    assert wrong <= 0.05 and missed <= 0.05, (wrong, missed)


def _claim_runs(root, policy_accs: list[float], baseline_accs: list[float]):
    dirs = [write_run(root, "one_cycle", seed, [97.0, acc], experiment=MNIST) for seed, acc in enumerate(policy_accs)]
    dirs += [write_run(root, "momentum_0.9", seed, [97.0, acc], experiment=MNIST)
             for seed, acc in enumerate(baseline_accs)]
    return load_run_dirs(dirs)


def _cm_verdict(runs, plans):
    ref = load_reference()
    found = judge_claims(ref, runs, accuracy_table(runs, ref), "one_cycle", "inv", plans)
    return next(v for v in found if v.claim_id == "mnist_cm_beats_constant")


def test_a_claim_takes_its_looks_and_says_why_it_stopped(tmp_path) -> None:
    """mnist_cm_beats_constant (better, margin 0): 4 seeds straddle 0; the 6-seed look, at 99%, decides it. With
    only 4 seeds committed it waits for the next look's; with no plan it is the fixed-n 95% verdict."""
    policy = [99.20, 99.05, 99.25, 99.10, 99.20, 99.15]
    baseline = [99.05, 99.10, 99.00, 99.10, 98.95, 98.95]
    plan = {"mnist_cm_beats_constant": Plan(start=4, max_seeds=8, batch=2)}
    waiting = _cm_verdict(_claim_runs(tmp_path / "four", policy[:4], baseline[:4]), plan)
    assert waiting.verdict == "inconclusive"
    assert "looks taken: n=4; stopped: waiting for seeds: the next look needs n=6" in waiting.sequential
    assert "Sequential: Bonferroni over the looks at n = 4, 6, 8 (each CI at 98.33%" in waiting.line()
    decided = _cm_verdict(_claim_runs(tmp_path / "six", policy, baseline), plan)
    assert decided.verdict == "reproduced", decided.line()
    assert "looks taken: n=4, n=6; stopped: decided at n=6" in decided.sequential
    assert "98.33% CI" in decided.statistic
    fixed = _cm_verdict(_claim_runs(tmp_path / "six", policy, baseline), None)
    assert fixed.sequential == "" and "95% CI" in fixed.statistic


def test_seeds_past_nine_are_listed_after_nine(tmp_path) -> None:
    """The sequential rule takes a run past 10 seeds: its tables list seeds 0..11 in order, not 0, 1, 10, 11, 2;
    run names still sort as text (momentum_0.85 before momentum_0.9)."""
    for seed in (11, 2, 10, 0, 1, 9):
        write_run(tmp_path, "one_cycle", seed, [97.0, 99.0], experiment=MNIST)
    for run in ("momentum_0.9", "momentum_0.85"):
        write_run(tmp_path, run, 0, [97.0, 99.0], experiment=MNIST)
    expected = [("momentum_0.85", 0), ("momentum_0.9", 0), *(("one_cycle", s) for s in (0, 1, 2, 9, 10, 11))]
    for runs in (load_study_runs(tmp_path), load_run_dirs(tmp_path.glob("*"))):
        assert list(zip(runs.summaries["run"], runs.summaries["seed"], strict=True)) == expected
