"""Every run of a study as a candidate explanation of a published row it fails to match.

A factor sweep tests the explanations a claim names; the study holds more evidence than that, since each ablation
changes something against a row's recipe too, and some land nearer the published value than the row's own run.
For each row that a ``matches_published`` claim does not reproduce, every other run of the study is read as "the
row's recipe plus what its config.yaml changes" (a diff of the resolved training groups, ``TRAINED``, seed by seed;
never the run's name), and
ranked by its distance from the published value, with its effect against the row's run and its difference from the
published value, each with a 95% CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from superconv.common.provenance import CONFIG_FILE, identity_changes, run_identity
from superconv.report.reference import Reference
from superconv.report.results import RunSet
from superconv.report.stats import decide_within, difference

# What a run trains with: the resolved groups (the recipe and row tables of a preset only feed them, and naming the
# same change twice would hide which keys moved).
TRAINED = ("dataset", "model", "optimizer", "schedule", "trainer", "augment")
COLUMNS = ["row", "run", "n", "mean", "changes", "n_changes", "distance", "vs_published", "vs_published_ci_low",
           "vs_published_ci_high", "effect", "effect_ci_low", "effect_ci_high", "within_spread", "matches"]


def _identities(runs: RunSet, run: str) -> dict[int, dict[str, Any]]:
    """seed -> the run's identity within ``TRAINED``, from each seed's config.yaml (runs without one are skipped)."""
    found = {}
    for record in runs.summaries[runs.summaries["run"] == run].to_dict("records"):
        config = Path(str(record.get("dir")), CONFIG_FILE)
        if config.is_file():
            identity = run_identity(yaml.safe_load(config.read_text()))
            found[int(record["seed"])] = {k: v for k, v in identity.items() if k.split(".", 1)[0] in TRAINED}
    return found


def config_changes(runs: RunSet, run: str, base: str) -> list[str]:
    """``key: base -> run`` for every identity key ``run`` changes against ``base``, seed by seed (the union over
    the seeds both have; a key whose value differs by seed lists each value)."""
    mine, theirs = _identities(runs, run), _identities(runs, base)
    by_key: dict[str, list[str]] = {}
    for seed in sorted(set(mine) & set(theirs)):
        for change in identity_changes(theirs[seed], mine[seed]):
            key, values = change.split(": ", 1)
            by_key.setdefault(key, [])
            if values not in by_key[key]:
                by_key[key].append(values)
    return [f"{key}: {' | '.join(values)}" for key, values in sorted(by_key.items())]


def _failed_rows(ref: Reference, table: pd.DataFrame) -> list[tuple[str, float]]:
    """(row key, tolerance) of every matches_published row our runs ran and do not reproduce."""
    failed = []
    for claim in ref.claims:
        if claim["type"] != "matches_published":
            continue
        for key in claim["rows"]:
            ours = table[(table["key"] == key) & (table["status"] == "ran")]
            if ours.empty or ours.iloc[0]["compared_to"] != "published":
                continue
            r = ours.iloc[0]
            ci = (r["difference_ci_low"], r["difference_ci_high"])
            if None in ci or pd.isna(ci[0]) or decide_within(ci, claim["tolerance_pp"]) != "reproduced":
                failed.append((key, float(claim["tolerance_pp"])))
    return failed


def candidate_rows(ref: Reference, runs: RunSet, table: pd.DataFrame) -> pd.DataFrame:
    """For each failed row, every other finished run of the study with its config diff against the row's run,
    ranked by distance from the published mean (nearest first)."""
    rows = []
    ran = table[table["status"] == "ran"]
    for key, tolerance in _failed_rows(ref, table):
        pub, base = ref.row(key), ran[ran["key"] == key].iloc[0]
        for r in ran[ran["run"] != base["run"]].to_dict("records"):
            changes = config_changes(runs, r["run"], base["run"])
            if not changes or r["n"] < 2:
                continue
            effect = difference(r["ours_mean"], r["ours_std"], int(r["n"]), base["ours_mean"], base["ours_std"],
                                int(base["n"]))
            versus = difference(r["ours_mean"], r["ours_std"], int(r["n"]), pub["mean"], pub["std"], pub["n"])
            rows.append({"row": key, "run": r["run"], "n": int(r["n"]), "mean": r["ours_mean"],
                         "changes": "; ".join(changes), "n_changes": len(changes),
                         "distance": abs(r["ours_mean"] - pub["mean"]), "vs_published": versus.diff,
                         "vs_published_ci_low": versus.ci[0], "vs_published_ci_high": versus.ci[1],
                         "effect": effect.diff, "effect_ci_low": effect.ci[0], "effect_ci_high": effect.ci[1],
                         "within_spread": abs(r["ours_mean"] - pub["mean"]) <= (pub["std"] or 0.0),
                         "matches": decide_within(versus.ci, tolerance) == "reproduced"})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame.sort_values(["row", "distance"], kind="stable").reset_index(drop=True) if len(frame) else frame


def best_single_change(group: pd.DataFrame) -> dict[str, Any] | None:
    """The nearest run that lands within the published spread, among those with the fewest changed keys."""
    inside = group[group["within_spread"]]
    if inside.empty:
        return None
    return inside.sort_values(["n_changes", "distance"], kind="stable").iloc[0].to_dict()


def candidates_markdown(frame: pd.DataFrame, ref: Reference, shown: int = 10) -> str:
    """One section per failed row: the nearest ``shown`` runs, and which change (if any) reaches the published
    spread."""
    if frame.empty:
        return ""
    parts = ["## Every run as a candidate explanation", "",
             "For each published row we do not reproduce, every other run of the study, read as the row's recipe plus "
             "what its `config.yaml` changes (the resolved dataset, model, optimizer, schedule, trainer and augment "
             "keys that differ, seed by seed), ranked by distance from the published mean. Effect: the run minus "
             "the row's own run; vs published: the run minus the "
             "published mean; both with 95% CIs. The whole list is `tables/candidates.csv`.", ""]
    for key, group in frame.groupby("row", sort=False):
        pub = ref.row(key)
        best = best_single_change(group)
        spread = f"the published spread ({pub['mean']:.2f} ± {pub['std'] or 0:.2f})"
        if best is None:
            verdict = f"No run of the study lands within {spread}."
        else:
            lead = ("A single change brings our number within" if best["n_changes"] == 1 else
                    "No single change does; the run with the fewest changes within")
            verdict = (f"{lead} {spread}: **{best['run']}** ({best['mean']:.2f} over {best['n']} seeds; "
                       f"`{best['changes']}`).")
        parts += [f"### {key}", "", verdict, "",
                  "| run | n | mean | distance | vs published [95% CI] | effect [95% CI] | changes |",
                  "|---|---|---|---|---|---|---|"]
        for r in group.head(shown).to_dict("records"):
            parts.append(f"| {r['run']} | {r['n']} | {r['mean']:.2f} | {r['distance']:.2f} | "
                         f"{r['vs_published']:+.2f} [{r['vs_published_ci_low']:+.2f}, {r['vs_published_ci_high']:+.2f}]"
                         f" | {r['effect']:+.2f} [{r['effect_ci_low']:+.2f}, {r['effect_ci_high']:+.2f}] | "
                         f"{r['changes'].replace('|', '/')} |")
        parts.append("")
    return "\n".join(parts)
