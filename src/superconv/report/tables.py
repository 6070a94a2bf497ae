"""The report's tables as frames: our runs beside the published rows, iterations to target, curves for DVC plots."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from superconv.common.metrics import iterations_to_target
from superconv.report.reference import Reference
from superconv.report.results import RunSet
from superconv.report.stats import LEVEL, difference, summarize


def matched_row(ref: Reference, summary: dict[str, Any]) -> dict[str, Any] | None:
    """The published row a run reproduces: same experiment and run, and the same training-set size."""
    candidates = ref.rows_of(summary["experiment"], summary["base_run"])
    size = summary.get("train_size")
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return next((r for r in candidates if r["train_size"] is None), None)
    return next((r for r in candidates if ref.full_size(r) == int(size)), None)


def _none(x: Any) -> Any:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _published_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {"key": row["key"], "group": row["group"], "experiment": row["experiment"], "dataset": row["dataset"],
            "model": row["model"], "policy": row["policy"], "family": row["family"],
            "published_iterations": row["iterations"], "published_epochs": row["epochs"],
            "published_mean": row["mean"], "published_std": row["std"], "published_n": row["n"],
            "authors_log": row["authors_log"], "verified": row["verified"], "source": row["source"],
            **{f"independent_{k}": (row["independent"] or {}).get(k) for k in ("mean", "n", "source", "cite")},
            "needs": row["needs"], "note": row["note"]}


def _ours(group: pd.DataFrame, level: float) -> dict[str, Any]:
    ok = group[~group["diverged"]].dropna(subset=["final_test_acc"])
    s = summarize(ok["final_test_acc"].tolist(), level) if len(ok) else None
    status = "ran" if s else "diverged"
    return {"status": status, "n": s.n if s else 0, "diverged": int(group["diverged"].sum()),
            "iterations": int(group["iterations"].max()), "epochs": round(float(group["epochs"].max()), 2),
            "ours_mean": s.mean if s else None, "ours_std": s.std if s else None,
            "ci95_low": _none(s.ci[0]) if s else None, "ci95_high": _none(s.ci[1]) if s else None}


def _versus_reference(r: dict[str, Any], level: float) -> dict[str, Any]:
    """Our mean against the published value (Welch when it has a std), else against the authors' log."""
    out = {"compared_to": None, "difference": None, "difference_ci_low": None, "difference_ci_high": None,
           "difference_p": None, "difference_log": None}
    if r["ours_mean"] is None:
        return out
    if r.get("authors_log") is not None:
        out["difference_log"] = r["ours_mean"] - r["authors_log"]
    if r.get("published_mean") is not None:
        out["compared_to"] = "published"
        d = difference(r["ours_mean"], r["ours_std"], r["n"], r["published_mean"], r["published_std"],
                       r["published_n"], level)
    elif r.get("authors_log") is not None:
        out["compared_to"] = "authors' log"
        d = difference(r["ours_mean"], r["ours_std"], r["n"], r["authors_log"], level=level)
    else:
        return out
    out.update(difference=d.diff, difference_ci_low=_none(d.ci[0]), difference_ci_high=_none(d.ci[1]),
               difference_p=_none(d.p))
    return out


def accuracy_table(runs: RunSet, ref: Reference, level: float = LEVEL) -> pd.DataFrame:
    """Every study run (mean ± std, CI over seeds) beside its published row, then every published row not run. The
    CI columns keep their names (ci95_*) at any ``level``: a sequential look asks for a wider one."""
    rows, matched = [], set()
    for run, group in runs.summaries.groupby("run", sort=False):
        first = group.iloc[0].to_dict()
        pub = matched_row(ref, first)
        base = _published_fields(pub) if pub else {
            "key": run, "group": "", "experiment": first["experiment"], "dataset": "", "model": "",
            "policy": first["policy"] or first["base_run"], "family": first["policy"]}
        if pub:
            matched.add(pub["key"])
        row = {**base, "run": run, "base_run": first["base_run"], "train_size": _none(first["train_size"]),
               **_ours(group, level)}
        rows.append({**row, **_versus_reference(row, level)})
    for pub in ref.rows:
        if pub["key"] not in matched:
            rows.append({**_published_fields(pub), "run": pub["run"], "base_run": pub["run"],
                         "train_size": pub["train_size"], "status": "not run", "n": 0, "diverged": 0})
    return pd.DataFrame(rows)


def speed_table(runs: RunSet, policy: str, baseline: str, experiment: str | None = None) -> pd.DataFrame:
    """Per seed of both runs: iterations to reach the baseline's mean final accuracy (diverged seeds included)."""
    s = runs.summaries
    if experiment is not None:
        s = s[s["experiment"] == experiment]
    base = s[(s["run"] == baseline) & ~s["diverged"]].dropna(subset=["final_test_acc"])
    columns = ["run", "seed", "diverged", "target_acc", "iterations_to_target", "baseline_iterations", "ratio"]
    if base.empty:
        return pd.DataFrame(columns=columns)
    target, budget = float(base["final_test_acc"].mean()), int(base["iterations"].max())
    evals = runs.evals
    rows = []
    for r in s[s["run"].isin([policy, baseline])].to_dict("records"):
        curve = evals[(evals["run"] == r["run"]) & (evals["seed"] == r["seed"])]
        reached = iterations_to_target(curve, target)
        rows.append({"run": r["run"], "seed": r["seed"], "diverged": r["diverged"], "target_acc": target,
                     "iterations_to_target": reached, "baseline_iterations": budget,
                     "ratio": None if reached is None else reached / budget})
    return pd.DataFrame(rows, columns=columns)


def curves_table(runs: RunSet) -> pd.DataFrame:
    """Test accuracy per evaluation, long format (iteration, run, seed, test_acc): the DVC plots source."""
    return runs.evals[["iteration", "epoch", "run", "seed", "test_acc", "test_loss"]].reset_index(drop=True)


def schedules_table(runs: RunSet) -> pd.DataFrame:
    """LR and momentum as applied, first seed of each run (the schedule is seed-independent)."""
    m = runs.metrics
    first = m[m["seed"] == m.groupby("run")["seed"].transform("min")]
    return first[["iteration", "run", "lr", "momentum"]].reset_index(drop=True)


def effective_train_size(ref: Reference, summary: dict[str, Any]) -> int | None:
    """A run's training-set size: summary.json train_size, else the full size of its published row's dataset."""
    if _none(summary.get("train_size")) is not None:
        return int(summary["train_size"])
    rows = ref.rows_of(summary["experiment"], summary["base_run"])
    return ref.datasets.get(rows[0]["dataset"]) if rows else None


def limited_data_table(runs: RunSet, ref: Reference) -> pd.DataFrame:
    """Final accuracy by training-set size (Table 1 analogue), ours per run and seed; empty without train_size."""
    s = runs.summaries
    if s["train_size"].isna().all():
        return pd.DataFrame(columns=["experiment", "base_run", "train_size", "seed", "final_test_acc", "diverged"])
    experiments = set(s.loc[s["train_size"].notna(), "experiment"])
    rows = [{"experiment": r["experiment"], "base_run": r["base_run"], "train_size": effective_train_size(ref, r),
             "seed": r["seed"], "final_test_acc": r["final_test_acc"], "diverged": r["diverged"]}
            for r in s[s["experiment"].isin(experiments)].to_dict("records")]
    return pd.DataFrame(rows)
