"""A computed verdict per claim of published.yaml, with the statistic it rests on."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from scipy import stats

from superconv.report.reference import Reference
from superconv.report.results import RunSet
from superconv.report.sequential import Plan, Sequence, first_seeds, seeds_of, walk
from superconv.report.stats import (
    LEVEL,
    decide_at_least,
    decide_at_most,
    decide_within,
    difference,
    pct,
    seeds_note,
    seeds_to_decide,
    summarize,
)
from superconv.report.tables import accuracy_table, effective_train_size, speed_table

ALPHA = 1 - LEVEL  # the slope test of gap_grows; the other rules decide by their CIs (95% for a fixed n)
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run")


@dataclass(frozen=True)
class Verdict:
    claim_id: str
    claim: str
    verdict: str  # one of VERDICTS
    statistic: str  # the number the verdict rests on
    evidence: str  # how it was computed, in words
    published: str = ""  # the paper's own number for the same comparison
    sequential: str = ""  # a sequential claim's rule, looks taken and why it stopped (report.sequential)

    def line(self) -> str:
        paper = f" Paper: {self.published}." if self.published else ""
        looks = f" {self.sequential[0].upper()}{self.sequential[1:]}." if self.sequential else ""
        return f"**{self.verdict.upper()}**: {self.claim}. {self.statistic}; {self.evidence}.{paper}{looks}"

    def record(self) -> dict[str, str]:
        return asdict(self)


def _runs(runs: RunSet, claim: dict[str, Any], run: str) -> pd.DataFrame:
    s = runs.summaries
    if claim.get("experiment"):
        s = s[s["experiment"] == claim["experiment"]]
    return s[s["run"] == run]


def _finished(frame: pd.DataFrame) -> list[float]:
    return frame[~frame["diverged"]]["final_test_acc"].dropna().astype(float).tolist()


def _needs(ref: Reference, claim: dict[str, Any], runs: list[str]) -> str:
    needs = {r["needs"] for run in runs for r in ref.rows_of(claim.get("experiment"), run) if r["needs"]}
    return "; ".join(sorted(needs)) or "runs named " + " and ".join(runs)


def _not_run(ref: Reference, claim: dict[str, Any], missing: list[str]) -> Verdict:
    where = f" of {claim['experiment']}" if claim.get("experiment") else ""
    return Verdict(claim["id"], claim["text"], "not run", f"no runs of {', '.join(missing)}{where}",
                   f"needs: {_needs(ref, claim, missing)}", _published_pair(ref, claim))


def _published_pair(ref: Reference, claim: dict[str, Any]) -> str:
    """The paper's numbers for a policy-vs-baseline claim, from the rows (never typed into the claim)."""
    if not claim.get("experiment") or "policy" not in claim:
        return ""
    pol = ref.rows_of(claim["experiment"], claim["policy"])
    base = ref.rows_of(claim["experiment"], claim["baseline"])
    pol = next((r for r in pol if r["train_size"] is None), None)
    base = next((r for r in base if r["train_size"] is None), None)
    if not (pol and base and pol["mean"] is not None and base["mean"] is not None):
        return ""
    text = f"{pol['mean']:.2f} vs {base['mean']:.2f} ({pol['mean'] - base['mean']:+.2f} pp)"
    unit = "iterations" if pol["iterations"] and base["iterations"] else "epochs"
    if pol[unit] and base[unit]:
        text += f" in {pol[unit]:g} vs {base[unit]:g} {unit} (ratio {pol[unit] / base[unit]:.3f})"
    return text


def _diverged_note(frame: pd.DataFrame) -> str:
    k = int(frame["diverged"].sum())
    return f"; {k} diverged seed(s) of {frame['run'].iloc[0]} excluded" if k else ""


def _policy_and_baseline(claim: dict[str, Any], runs: RunSet,
                         ref: Reference) -> tuple[pd.DataFrame, pd.DataFrame, str] | Verdict:
    """The claim's two sides and their published pair, or the "not run" verdict when a side is missing."""
    pol, base = _runs(runs, claim, claim["policy"]), _runs(runs, claim, claim["baseline"])
    missing = [r for r, f in ((claim["policy"], pol), (claim["baseline"], base)) if f.empty]
    if missing:
        return _not_run(ref, claim, missing)
    return pol, base, _published_pair(ref, claim)


def speedup(claim: dict[str, Any], runs: RunSet, ref: Reference, table: pd.DataFrame,
            level: float = LEVEL) -> list[Verdict]:
    """Iterations to the baseline's mean final accuracy, over the baseline's budget, against max_ratio."""
    found = _policy_and_baseline(claim, runs, ref)
    if isinstance(found, Verdict):
        return [found]
    pol, base, published = found
    if not _finished(base):
        return [Verdict(claim["id"], claim["text"], "inconclusive", "no target",
                        f"every seed of {claim['baseline']} diverged", published)]
    speed = speed_table(runs, claim["policy"], claim["baseline"], claim.get("experiment"))
    mine = speed[speed["run"] == claim["policy"]]
    target, budget = speed["target_acc"].iloc[0], int(speed["baseline_iterations"].iloc[0])
    missed = mine[mine["iterations_to_target"].isna()]
    if len(missed):
        diverged = int(missed["diverged"].sum())
        return [Verdict(claim["id"], claim["text"], "not reproduced",
                        f"{len(missed)} of {len(mine)} seeds never reached {target:.2f}%",
                        f"target = {claim['baseline']}'s mean final accuracy; {diverged} of the misses diverged",
                        published)]
    ratios = (mine["iterations_to_target"].astype(float) / budget).tolist()
    s, limit = summarize(ratios, level), float(claim["max_ratio"])
    verdict = decide_at_most(s.ci, limit)
    ci = f", {pct(level)} CI [{s.ci[0]:.3f}, {s.ci[1]:.3f}]" if s.n > 1 else ""
    rule = f"reproduced when the CI's upper bound is below {limit:g}"
    if s.n < 2:
        rule += "; one seed gives no CI: needs at least 2"
    elif verdict == "inconclusive":
        rule += "; " + seeds_note(seeds_to_decide(abs(s.mean - limit), s.std**2), s.n)
    return [Verdict(claim["id"], claim["text"], verdict,
                    f"iterations-to-target ratio {s.mean:.3f}{ci} (claim: <= {limit:g})",
                    f"{claim['policy']} reached {target:.2f}% ({claim['baseline']}'s mean final accuracy) after "
                    f"{mine['iterations_to_target'].mean():.0f} iterations on average (seeds: "
                    f"{', '.join(f'{x:.0f}' for x in mine['iterations_to_target'])}) vs the baseline's {budget}, "
                    f"{1 / s.mean:.1f}x fewer; {rule}", published)]


def _difference_claim(claim: dict[str, Any], runs: RunSet, ref: Reference, bound: float, rule: str,
                      level: float) -> list[Verdict]:
    """Policy's mean final accuracy minus the baseline's, Welch CI and test, decided against ``bound`` (pp)."""
    found = _policy_and_baseline(claim, runs, ref)
    if isinstance(found, Verdict):
        return [found]
    pol, base, published = found
    a, b = _finished(pol), _finished(base)
    if not a or not b:
        side = claim["policy"] if not a else claim["baseline"]
        verdict = "not reproduced" if not a else "inconclusive"
        return [Verdict(claim["id"], claim["text"], verdict, f"every seed of {side} diverged", "no final accuracy",
                        published)]
    sa, sb = summarize(a, level), summarize(b, level)
    d = difference(sa.mean, sa.std, sa.n, sb.mean, sb.std, sb.n, level)
    notes = _diverged_note(pol) + _diverged_note(base)
    means = f"{sa.mean:.2f} ± {sa.std:.2f} (n={sa.n}) vs {sb.mean:.2f} ± {sb.std:.2f} (n={sb.n}){notes}"
    if math.isnan(d.p) or sa.n < 2 or sb.n < 2:
        return [Verdict(claim["id"], claim["text"], "inconclusive", f"difference {d.diff:+.3f} pp",
                        f"{means}; {rule}; a CI needs at least 2 seeds of each run", published)]
    verdict = decide_at_least(d.ci, bound)
    if verdict == "inconclusive":
        rule += "; " + seeds_note(seeds_to_decide(abs(d.diff - bound), sa.std**2 + sb.std**2), min(sa.n, sb.n))
    return [Verdict(claim["id"], claim["text"], verdict,
                    f"difference {d.diff:+.3f} pp, {pct(level)} CI [{d.ci[0]:+.3f}, {d.ci[1]:+.3f}], "
                    f"Welch p = {d.p:.3g}",
                    f"{means}; {rule}", published)]


def not_worse(claim: dict[str, Any], runs: RunSet, ref: Reference, table: pd.DataFrame,
              level: float = LEVEL) -> list[Verdict]:
    """Non-inferiority: the CI of (policy - baseline) must lie above -margin_pp."""
    margin = float(claim["margin_pp"])
    return _difference_claim(claim, runs, ref, -margin, f"non-inferiority margin {margin:g} pp: reproduced when "
                             f"the CI's lower bound is above {-margin:+g} pp", level)


def better(claim: dict[str, Any], runs: RunSet, ref: Reference, table: pd.DataFrame,
           level: float = LEVEL) -> list[Verdict]:
    """Superiority (an ablation's "A beats B"): the CI of (policy - baseline) must lie above +margin_pp (default 0);
    not reproduced when it lies wholly below."""
    margin = float(claim["margin_pp"])  # Better fills its default (0)
    return _difference_claim(claim, runs, ref, margin, f"superiority by more than {margin:g} pp: reproduced when the "
                             f"CI's lower bound is above {margin:+g} pp, not reproduced when its upper bound is below",
                             level)


def matches_published(claim: dict[str, Any], runs: RunSet, ref: Reference, table: pd.DataFrame,
                      level: float = LEVEL) -> list[Verdict]:
    """Each row: no significant difference from the published value and a CI inside ±tolerance_pp."""
    out, tol = [], claim["tolerance_pp"]
    for key in claim["rows"]:
        row = ref.row(key)
        text = f"{claim['text']} ({row['run']}, {row['dataset']} {row['model']})"
        ours = table[(table["key"] == key) & (table["status"] != "not run")]
        if ours.empty:
            out.append(Verdict(claim["id"], text, "not run", f"no run of {key}", f"needs: {row['needs']}",
                               _row_value(row)))
            continue
        for r in ours.to_dict("records"):
            verdict = _match_verdict(claim["id"], text if len(ours) == 1 else f"{text} [{r['run']}]", r, row, tol,
                                     level)
            factors = gap_factors(claim, key, table)
            if verdict.verdict != "reproduced" and factors:  # none run yet: the line names what would test it
                verdict = replace(verdict, evidence=f"{verdict.evidence}; {gap_sentence(r, row, factors)}")
            out.append(verdict)
    return out


FINDINGS = ("accounts for the gap", "closes part of the gap", "matches the paper, effect not resolved",
            "explains nothing", "widens the gap", "diverged", "not run")


def gap_factors(claim: dict[str, Any], key: str, table: pd.DataFrame) -> list[dict[str, Any]]:
    """The claim's factor sweeps for row ``key`` (claim ``factors``: row key -> factor -> run names), each run
    judged against the row's own run and the published value.

    A factor run *accounts for the gap* when it matches the published value (its CI of the difference lies within
    ±tolerance_pp) and beats the row's run (effect CI above 0); it *closes part* of it when it beats the row's run
    without matching; it *matches the paper, effect not resolved* when it matches but its effect's CI still
    includes 0 (more seeds would tell); it *widens* the gap when worse (CI below 0); otherwise it *explains nothing*.
    """
    factors = (claim.get("factors") or {}).get(key) or {}
    if not factors:
        return []
    row_run = key.split("/", 1)[1]
    ran = table[table["status"] == "ran"]
    diverged = set(table.loc[table["status"] == "diverged", "run"])
    base = ran[ran["run"] == row_run]
    published = table[table["key"] == key].iloc[0]
    rows = []
    for factor, names in factors.items():
        for name in names:
            found = ran[ran["run"] == name]
            entry = {"claim_id": claim["id"], "row": key, "factor": factor, "run": name, "n": 0, "diverged": 0,
                     "mean": None,
                     "std": None, "effect": None, "effect_ci_low": None, "effect_ci_high": None,
                     "vs_published": None, "vs_published_ci_low": None, "vs_published_ci_high": None,
                     "finding": "diverged" if name in diverged else "not run"}
            if found.empty or base.empty:
                rows.append(entry)
                continue
            f, b = found.iloc[0], base.iloc[0]
            effect = difference(f["ours_mean"], f["ours_std"], int(f["n"]), b["ours_mean"], b["ours_std"], int(b["n"]))
            versus = difference(f["ours_mean"], f["ours_std"], int(f["n"]), published["published_mean"],
                                published["published_std"], published["published_n"])
            matches = decide_within(versus.ci, float(claim["tolerance_pp"])) == "reproduced"
            better = decide_at_least(effect.ci, 0.0)
            if better == "reproduced":
                finding = "accounts for the gap" if matches else "closes part of the gap"
            elif better == "not reproduced":
                finding = "widens the gap"
            else:
                finding = "matches the paper, effect not resolved" if matches else "explains nothing"
            rows.append({**entry, "n": int(f["n"]), "diverged": int(f["diverged"]), "mean": f["ours_mean"],
                         "std": f["ours_std"],
                         "effect": effect.diff, "effect_ci_low": effect.ci[0], "effect_ci_high": effect.ci[1],
                         "vs_published": versus.diff, "vs_published_ci_low": versus.ci[0],
                         "vs_published_ci_high": versus.ci[1], "finding": finding})
    return rows


def gap_sentence(r: dict[str, Any], row: dict[str, Any], factors: list[dict[str, Any]]) -> str:
    """The verdict line's gap analysis: which factor accounts for the gap, which close part, which explain nothing."""
    parts = []
    for finding in FINDINGS[:-2]:
        named = [f for f in factors if f["finding"] == finding]
        if named:
            cells = ", ".join(f"{f['run']} ({f['factor']}: {f['mean']:.2f}, effect {f['effect']:+.2f} pp "
                              f"[{f['effect_ci_low']:+.2f}, {f['effect_ci_high']:+.2f}]"
                              + (f"; {f['diverged']} of {f['n'] + f['diverged']} seeds diverged" if f.get("diverged")
                                 else "") + ")" for f in named)
            parts.append(f"{finding}: {cells}")
    diverged = [f"{f['run']} ({f['factor']})" for f in factors if f["finding"] == "diverged"]
    if diverged:
        parts.append(f"every seed diverged: {', '.join(diverged)}")
    missing = [f["run"] for f in factors if f["finding"] == "not run"]
    if missing:
        parts.append(f"not run in these results: {', '.join(missing)}")
    gap = row["mean"] - r["ours_mean"]
    return f"gap analysis (published − ours = {gap:+.2f} pp; effects against our {row['run']}): " + "; ".join(parts)


def _row_value(row: dict[str, Any]) -> str:
    parts = []
    if row["mean"] is not None:
        std = f" ± {row['std']:.2f} (n={row['n']})" if row["std"] is not None else ""
        parts.append(f"{row['mean']:.2f}{std} [{row['verified']}]")
    if row["authors_log"] is not None:
        parts.append(f"authors' log {row['authors_log']:.2f}")
    return ", ".join(parts)


def _match_verdict(claim_id: str, text: str, r: dict[str, Any], row: dict[str, Any], tol: float,
                   level: float) -> Verdict:
    published = _row_value(row)
    if r["status"] == "diverged":
        return Verdict(claim_id, text, "not reproduced", f"all {r['diverged']} seeds diverged", "no final accuracy",
                       published)
    if r["compared_to"] is None:
        return Verdict(claim_id, text, "inconclusive", "no published number", row["note"] or "row has no value",
                       published)
    ours = f"ours {r['ours_mean']:.2f} ± {r['ours_std']:.2f} (n={r['n']}) vs {r['compared_to']}"
    diff = f"difference {r['difference']:+.2f} pp"
    if r["difference_p"] is None:
        return Verdict(claim_id, text, "inconclusive", diff, f"{ours}; one seed against one number: no test",
                       published)
    lo, hi = r["difference_ci_low"], r["difference_ci_high"]
    stat = f"{diff}, {pct(level)} CI [{lo:+.2f}, {hi:+.2f}], p = {r['difference_p']:.3g}"
    verdict = decide_within((lo, hi), tol)
    why = {"reproduced": f"the CI lies within ±{tol:g} pp",
           "not reproduced": f"the CI lies wholly outside ±{tol:g} pp",
           "inconclusive": f"the CI crosses ±{tol:g} pp"}[verdict]
    if verdict == "inconclusive":
        published_std = row["std"] if r["compared_to"] == "published" else None
        fixed = published_std**2 / row["n"] if published_std is not None and row["n"] else 0.0
        gap = abs(abs(r["difference"]) - tol)
        why += "; " + seeds_note(seeds_to_decide(gap, r["ours_std"] ** 2, fixed), r["n"])
    return Verdict(claim_id, text, verdict, stat, f"{ours}; equivalence margin ±{tol:g} pp: {why}", published)


def gap_grows(claim: dict[str, Any], runs: RunSet, ref: Reference, table: pd.DataFrame,
              level: float = LEVEL) -> list[Verdict]:
    """Regress (policy - baseline) on training-set size: the claim needs a negative slope."""
    s = runs.summaries
    s = s[(s["experiment"] == claim["experiment"]) & s["base_run"].isin([claim["policy"], claim["baseline"]])
          & ~s["diverged"]].dropna(subset=["final_test_acc"])
    published = _published_gaps(ref, claim)
    if s.empty:
        return [_not_run(ref, claim, [claim["policy"], claim["baseline"]])]
    sizes = s.assign(size=[effective_train_size(ref, r) for r in s.to_dict("records")])
    means = sizes.groupby(["size", "base_run"])["final_test_acc"].mean().unstack()
    if not {claim["policy"], claim["baseline"]} <= set(means.columns):
        return [_not_run(ref, claim, [r for r in (claim["policy"], claim["baseline"]) if r not in means.columns])]
    gaps = (means[claim["policy"]] - means[claim["baseline"]]).dropna().sort_index(ascending=False)
    listed = ", ".join(f"{int(n)}: {g:+.2f}" for n, g in gaps.items())
    if len(gaps) < 3:
        return [Verdict(claim["id"], claim["text"], "inconclusive", f"gaps by size {listed or 'none'}",
                        f"needs both runs at 3 or more training-set sizes, have {len(gaps)}", published)]
    fit = stats.linregress(gaps.index.astype(float), gaps.to_numpy())
    slope = fit.slope * 10_000
    if fit.slope < 0 and fit.pvalue < 1 - level:
        verdict = "reproduced"
    elif fit.slope >= 0:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return [Verdict(claim["id"], claim["text"], verdict,
                    f"slope {slope:+.2f} pp per 10k images (p = {fit.pvalue:.3g})",
                    f"gap (pp) by training-set size {listed}", published)]


def _published_gaps(ref: Reference, claim: dict[str, Any]) -> str:
    by_size: dict[int, dict[str, float]] = {}
    for run in (claim["policy"], claim["baseline"]):
        for r in ref.rows_of(claim["experiment"], run):
            if r["mean"] is not None:
                by_size.setdefault(ref.full_size(r), {})[run] = r["mean"]
    gaps = {n: v[claim["policy"]] - v[claim["baseline"]] for n, v in sorted(by_size.items(), reverse=True)
            if len(v) == 2}
    return "gaps " + ", ".join(f"{n}: {g:+.1f}" for n, g in gaps.items()) if gaps else ""


CHECKS: dict[str, Callable[..., list[Verdict]]] = {
    "speedup": speedup, "not_worse": not_worse, "better": better, "matches_published": matches_published,
    "gap_grows": gap_grows,
}
SEQUENTIAL_TYPES = ("not_worse", "better", "matches_published")  # the claims decided by a CI over seeds of runs


def claim_parts(claim: dict[str, Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """A claim as the sequences it is decided by: (the claim, or one row of it, and the study runs behind it)."""
    if claim["type"] == "matches_published":
        return [({**claim, "rows": [key]}, [key.split("/", 1)[1].split("@")[0]]) for key in claim["rows"]]
    return [(claim, [claim["policy"], claim["baseline"]])]


def sequences(claim: dict[str, Any], runs: RunSet, ref: Reference, plan: Plan) -> list[tuple[Sequence, list[Verdict]]]:
    """Each part of ``claim`` walked through ``plan``'s looks: the sequence and the verdicts of its last look (the
    fixed-n verdicts while no look has its seeds yet)."""
    found = []
    for part, names in claim_parts(claim):
        last: list[Verdict] = []

        def judge(n: int, level: float, part: dict[str, Any] = part, names: list[str] = names,
                  last: list[Verdict] = last) -> list[str]:
            sub = first_seeds(runs, names, n)
            last[:] = CHECKS[part["type"]](part, sub, ref, accuracy_table(sub, ref, level), level)
            return [v.verdict for v in last]

        seq = walk(plan, seeds_of(runs, names), judge)
        if not seq.looks:
            last = CHECKS[part["type"]](part, runs, ref, accuracy_table(runs, ref))
        found.append((seq, last))
    return found


def study_claims(ref: Reference, runs: RunSet, policy: str, baseline: str) -> list[dict[str, Any]]:
    """The generic claims for the study's pair, unless a paper claim of that type already covers it."""
    if policy == baseline:
        return []
    experiments = set(runs.summaries["experiment"].dropna())
    covered = {c["type"] for c in ref.claims if c.get("experiment") in experiments
               and c.get("policy") == policy and c.get("baseline") == baseline}
    return [{**c, "text": c["text"].format(policy=policy, baseline=baseline), "policy": policy,
             "baseline": baseline} for c in ref.study_claims if c["type"] not in covered]


def judge_claims(ref: Reference, runs: RunSet, table: pd.DataFrame, policy: str, baseline: str,
                 plans: Mapping[str, Plan] | None = None) -> list[Verdict]:
    """Verdicts for every paper claim (not run ones included) and for the study's own pair; a claim the study gives
    a sequential plan (claim id -> Plan) is decided by its looks."""
    found = []
    for claim in [*study_claims(ref, runs, policy, baseline), *ref.claims]:
        plan = (plans or {}).get(claim["id"])
        if plan is None:
            found.extend(CHECKS[claim["type"]](claim, runs, ref, table))
            continue
        for seq, verdicts in sequences(claim, runs, ref, plan):
            found.extend(replace(v, sequential=seq.describe()) for v in verdicts)
    return found

