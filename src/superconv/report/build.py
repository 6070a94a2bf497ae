"""Build reports/: figures, tables (ours beside the published numbers), claim verdicts, report.md and report.html."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from superconv.common.io import atomic_write, write_json
from superconv.common.plots import save_figure
from superconv.report import figures
from superconv.report.candidates import candidate_rows, candidates_markdown
from superconv.report.claims import VERDICTS, Verdict, gap_factors, judge_claims
from superconv.report.range_spread import load_range_tests, spread, spread_figure, spread_sentence
from superconv.report.reference import Reference, load_reference
from superconv.report.render import to_html
from superconv.report.results import RunSet, load_study_runs, load_train_runs
from superconv.report.sequential import Plan
from superconv.report.stats import difference
from superconv.report.tables import (
    accuracy_table,
    curves_table,
    limited_data_table,
    schedules_table,
    speed_table,
)

RAN = ("ran", "diverged")
VERDICTS_FILE = "verdicts.json"  # what the paper report gathers (reports/<study>/verdicts.json)


def _fmt(x: Any, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _budget(iterations: Any, epochs: Any) -> str:
    parts = [f"{int(iterations)} it" if _fmt(iterations) != "–" else "", f"{epochs:g} ep" if _fmt(epochs) != "–"
             else ""]
    return " / ".join(p for p in parts if p) or "–"


def _published(r: dict[str, Any]) -> str:
    if _fmt(r.get("published_mean")) == "–":
        return "–"
    std = r.get("published_std")
    return f"{r['published_mean']:.2f}" + (f" ± {std:.2f} (n={int(r['published_n'])})" if _fmt(std) != "–" else "")


def _independent(r: dict[str, Any]) -> str:
    if _fmt(r.get("independent_mean")) == "–":
        return "–"
    return f"{r['independent_mean']:.2f} (n={int(r['independent_n'])}, {r['independent_source']})"


def ours_markdown(table: pd.DataFrame) -> str:
    """Our runs: mean ± std (n), CI, the published value, the authors' log, an independent reproduction (so a gap can
    be told apart as ours or the paper's) and the differences."""
    lines = ["| run | dataset / model | policy | budget (ours) | budget (paper) | n | ours (mean ± std) | 95% CI | "
             "published | authors' log | independent | ours − published [95% CI] | ours − log | tag |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table[table["status"].isin(RAN)].to_dict("records"):
        n = f"{r['n']}" + (f" (+{r['diverged']} diverged)" if r["diverged"] else "")
        ours = f"{_fmt(r['ours_mean'])} ± {_fmt(r['ours_std'])}" if r["status"] == "ran" else "**diverged**"
        diff = _fmt(r["difference"], sign=True)
        if _fmt(r["difference_ci_low"]) != "–":
            diff += f" [{_fmt(r['difference_ci_low'], sign=True)}, {_fmt(r['difference_ci_high'], sign=True)}]"
        if r["compared_to"] == "authors' log":
            diff += " (vs log)"
        dataset = f"{r['dataset']} / {r['model']}" if r["dataset"] else r["experiment"] or "–"
        size = f", {int(r['train_size'])} images" if _fmt(r["train_size"]) != "–" else ""
        lines.append(f"| {r['run']} | {dataset}{size} | {r['policy']} | {_budget(r['iterations'], r['epochs'])} | "
                     f"{_budget(r.get('published_iterations'), r.get('published_epochs'))} | {n} | {ours} | "
                     f"[{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}] | {_published(r)} | "
                     f"{_fmt(r.get('authors_log'))} | {_independent(r)} | {diff} | "
                     f"{_fmt(r['difference_log'], sign=True)} | "
                     f"{r['verified'] if isinstance(r.get('verified'), str) else '–'} |")
    ran = table[table["status"].isin(RAN)]
    cites = dict(zip(ran.get("independent_source", []), ran.get("independent_cite", []), strict=True))
    notes = [f"Independent ({name}): {cites[name]}." for name in sorted(n for n in cites if isinstance(n, str))]
    return "\n".join(lines + ([""] + notes if notes else []))


def not_run_markdown(table: pd.DataFrame, ref: Reference) -> str:
    """Published rows the study did not run, per paper table, with what each needs."""
    parts = []
    rest = table[table["status"] == "not run"]
    for group, rows in rest.groupby("group", sort=False):
        parts += [f"**{ref.groups[group]['title']}**", "",
                  "| key | policy | budget | published | authors' log | tag | status | needs |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows.to_dict("records"):
            note = f" ({r['note']})" if r["note"] else ""
            parts.append(f"| {r['key']} | {r['policy']} | {_budget(r['published_iterations'], r['published_epochs'])} "
                         f"| {_published(r)}{note} | {_fmt(r['authors_log'])} | {r['verified']} | not run | "
                         f"{r['needs']} |")
        parts.append("")
    return "\n".join(parts)


def runs_markdown(summaries: pd.DataFrame) -> str:
    """Every run and seed, diverged ones with their reason."""
    lines = ["| run | seed | status | final acc (%) | best acc (%) | iterations | epochs | wall (s) | images/s | "
             "data source |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summaries.to_dict("records"):
        status = f"**diverged**: {r['divergence_reason']}" if r["diverged"] else "finished"
        lines.append(f"| {r['run']} | {r['seed']} | {status} | {_fmt(r['final_test_acc'])} | "
                     f"{_fmt(r['best_test_acc'])} | {r['iterations']} | {_fmt(r['epochs'], 1)} | "
                     f"{_fmt(r['wall_s'], 0)} | {_fmt(r['images_per_s'], 0)} | {r['dataset_source'] or '–'} |")
    return "\n".join(lines)


def speed_markdown(speed: pd.DataFrame) -> str:
    """Per seed: iterations to the baseline's mean final accuracy ("never" when it was not reached)."""
    lines = ["| run | seed | target (%) | iterations to target | baseline budget | ratio |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['seed']}{' (diverged)' if r['diverged'] else ''} | {r['target_acc']:.2f} | "
              f"{'never' if pd.isna(r['iterations_to_target']) else int(r['iterations_to_target'])} | "
              f"{r['baseline_iterations']} | {_fmt(r['ratio'], 3)} |" for r in speed.to_dict("records")]
    return "\n".join(lines)


def report_title(table: pd.DataFrame, policy: str, baseline: str) -> str:
    ran = table[table["status"].isin(RAN)]
    subjects = [f"{d} / {m}" for d, m in zip(ran["dataset"], ran["model"], strict=True) if d]
    subjects = list(dict.fromkeys(subjects)) or list(dict.fromkeys(ran["experiment"].dropna())) or ["ad-hoc runs"]
    return f"superconv report: {', '.join(subjects)} — {policy} vs {baseline}"


def _draw(fig_dir: Path, name: str, figure: Any) -> str:
    save_figure(figure, fig_dir / f"{name}.png")
    return f"figures/{name}.png"


def side_runs(ref: Reference) -> set[str]:
    """Runs that only vary one thing against a row's run (factor sweeps, ablation baselines): reported in their own
    sections, left out of the accuracy and schedule figures so those stay readable."""
    names = {run for c in ref.claims for per_row in (c.get("factors") or {}).values() for runs in per_row.values()
             for run in runs}
    return names | {c["baseline"] for c in ref.claims if c["type"] == "better"}


def ablation_rows(ref: Reference, runs: RunSet, table: pd.DataFrame, policy: str) -> pd.DataFrame:
    """``policy`` minus every other run of the study that has no published row and is no factor sweep (the paper's
    ablations, and any a user adds to a study), with the Welch CI: how each alternative lands against the policy."""
    factor_runs = side_runs(ref) - {c["baseline"] for c in ref.claims if c["type"] == "better"}
    s = runs.summaries[~runs.summaries["diverged"]].dropna(subset=["final_test_acc"])
    mine = s[s["run"] == policy]["final_test_acc"]
    others = table[(table["status"] == "ran") & (table["group"] == "") & ~table["run"].isin(factor_runs | {policy})]
    rows = []
    for run in others["run"]:
        theirs = s[s["run"] == run]["final_test_acc"]
        if len(mine) < 2 or len(theirs) < 2:
            continue
        d = difference(mine.mean(), mine.std(), len(mine), theirs.mean(), theirs.std(), len(theirs))
        finding = (f"{policy} better" if d.ci[0] > 0 else f"{policy} worse" if d.ci[1] < 0
                   else "no clear difference")
        rows.append({"run": run, "label": f"{policy} − {run}", "effect": d.diff, "effect_ci_low": d.ci[0],
                     "effect_ci_high": d.ci[1], "finding": finding})
    return pd.DataFrame(rows, columns=["run", "label", "effect", "effect_ci_low", "effect_ci_high", "finding"])


def factor_rows(ref: Reference, table: pd.DataFrame) -> pd.DataFrame:
    """Every claim's factor sweeps, judged (claims.gap_factors), for the gap-analysis table and figure."""
    rows = [f for c in ref.claims for key in (c.get("factors") or {}) for f in gap_factors(c, key, table)]
    return pd.DataFrame(rows)


def draw_figures(out: Path, runs: RunSet, table: pd.DataFrame, ref: Reference, speed: pd.DataFrame,
                 range_tests: dict[str, dict[str, Any]], factors: pd.DataFrame,
                 ablations: pd.DataFrame) -> dict[str, str]:
    """Every figure the data supports; name -> path relative to ``out``."""
    fig_dir, images = out / "figures", {}
    ran = table[table["status"] == "ran"]
    hidden = side_runs(ref)
    shown = RunSet(runs.summaries[~runs.summaries["run"].isin(hidden)], runs.metrics[~runs.metrics["run"].isin(hidden)])
    published = {r["run"]: r["published_mean"] for r in ran.to_dict("records") if _fmt(r["published_mean"]) != "–"}
    images["accuracy"] = _draw(fig_dir, "accuracy_vs_iteration",
                               figures.accuracy_vs_iteration_figure(shown.evals, published))
    images["schedules"] = _draw(fig_dir, "schedules", figures.schedules_figure(schedules_table(shown)))
    if len(speed):
        images["speed"] = _draw(fig_dir, "iterations_to_target", figures.iterations_to_target_figure(speed))
    for label, rt in range_tests.items():
        images[f"range_test:{label}"] = _draw(fig_dir, "range_test" + (f"_{label}" if label else ""),
                                              spread_figure(rt["curves"], rt["combined"]))
    compared = ran[ran["compared_to"].notna()]
    if len(compared):
        rows = compared.assign(label=compared["run"] + " (" + compared["dataset"] + ")")
        images["published"] = _draw(fig_dir, "published_comparison", figures.published_comparison_figure(rows))
    judged = factors[~factors["finding"].isin(["not run", "diverged"])] if len(factors) else factors
    for key, group in (judged.groupby("row", sort=False) if len(judged) else []):
        row, ours = ref.row(key), ran[ran["key"] == key]
        gap = {"published − ours": row["mean"] - float(ours["ours_mean"].iloc[0])} if len(ours) else {}
        frame = group.assign(label=group["run"] + " (" + group["factor"] + ")")
        images[f"factors:{key}"] = _draw(fig_dir, "factors_" + key.replace("/", "_"), figures.effects_figure(
            frame, f"{key}: each factor's effect against our {row['run']} (the gap a factor must close: red)", gap))
    if len(ablations):
        images["ablations"] = _draw(fig_dir, "ablations", figures.effects_figure(
            ablations, "ablations: the study's policy minus each alternative run (above 0: the policy wins)"))
    limited = limited_data_table(runs, ref)
    if len(limited):
        ok = limited[~limited["diverged"]]
        pub = pd.DataFrame([{"base_run": r["run"], "train_size": ref.full_size(r), "mean": r["mean"]}
                            for r in ref.rows if r["experiment"] in set(limited["experiment"])
                            and r["run"] in set(limited["base_run"]) and r["mean"] is not None],
                           columns=["base_run", "train_size", "mean"])
        images["limited"] = _draw(fig_dir, "accuracy_vs_train_size", figures.limited_data_figure(ok, pub))
    table2 = ran[ran["group"].str.startswith("table2")]
    if len(table2):
        titles = {g: ref.groups[g]["title"] for g in set(table2["group"])}
        ours = table2.assign(title=table2["group"].map(titles), mean=table2["ours_mean"], std=table2["ours_std"])
        pub = pd.DataFrame([{**r, "title": titles[r["group"]]} for r in ref.rows
                            if r["group"] in titles and r["mean"] is not None and r["epochs"]])
        images["epochs"] = _draw(fig_dir, "accuracy_vs_epochs", figures.accuracy_vs_epochs_figure(ours, pub))
    return images


def report_metrics(table: pd.DataFrame, speed: pd.DataFrame, found: list[Verdict], policy: str) -> dict[str, Any]:
    """reports/metrics.json: per run final accuracy (mean, std, n, diverged, vs paper), speed-up, verdict counts."""
    metrics: dict[str, Any] = {}
    for r in table[table["status"].isin(RAN)].to_dict("records"):
        run = r["run"]
        metrics.update({f"{run}_final_test_acc_mean": r["ours_mean"], f"{run}_final_test_acc_std": r["ours_std"],
                        f"{run}_n": r["n"], f"{run}_diverged": r["diverged"],
                        f"{run}_difference_vs_published": r["difference"]})
    reached = speed[speed["run"] == policy]["ratio"]
    metrics["speedup_iterations_ratio"] = (
        float(reached.mean()) if len(reached) and reached.notna().all() else None)
    metrics = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in metrics.items()}
    counts = Counter(v.verdict for v in found)
    metrics.update({f"claims_{v.replace(' ', '_')}": counts.get(v, 0) for v in VERDICTS})
    return metrics


def range_test_markdown(label: str, rt: dict[str, Any], image: str) -> list[str]:
    """One range-test section: how it ran, each rule's spread over the seeds, the chosen (median) LR, per-seed rows."""
    c = rt["combined"]
    rules = list(c["spread"])
    lines = [f"## LR range test{f' ({label})' if label else ''}", "", f"![range test]({image})", "",
             f"Protocol: {c['protocol']} {c['start_lr']:g} → {c['end_lr']:g} over {c['iterations_planned']} "
             f"iterations, momentum {c['momentum']:g}, batch {c['total_batch']}. {spread_sentence(c)}", "",
             "| seed | iterations run | diverged at LR | " + " | ".join(rules) + " |",
             "|---|---|---|" + "---|" * len(rules)]
    for one in sorted(rt["found"], key=lambda f: f["seed"]):
        lines.append(f"| {one['seed']} | {one['iterations_run']} | {_fmt(one.get('diverged_lr'), 4)} | "
                     + " | ".join(_fmt(one["rules"].get(r), 4) for r in rules) + " |")
    return [*lines, ""]


def factors_markdown(factors: pd.DataFrame) -> str:
    lines = ["| row | factor | run | n | ours (mean ± std) | effect vs the row's run [95% CI] | "
             "vs published [95% CI] | finding |", "|---|---|---|---|---|---|---|---|"]
    for f in factors.to_dict("records"):
        if f["finding"] in ("not run", "diverged"):
            status = "not run yet" if f["finding"] == "not run" else "**every seed diverged**"
            lines.append(f"| {f['row']} | {f['factor']} | {f['run']} | 0 | – | – | – | {status} |")
            continue
        n = f"{f['n']}" + (f" (+{f['diverged']} diverged)" if f.get("diverged") else "")
        lines.append(f"| {f['row']} | {f['factor']} | {f['run']} | {n} | {_fmt(f['mean'])} ± {_fmt(f['std'])} | "
                     f"{_fmt(f['effect'], sign=True)} [{_fmt(f['effect_ci_low'], sign=True)}, "
                     f"{_fmt(f['effect_ci_high'], sign=True)}] | {_fmt(f['vs_published'], sign=True)} "
                     f"[{_fmt(f['vs_published_ci_low'], sign=True)}, {_fmt(f['vs_published_ci_high'], sign=True)}] | "
                     f"**{f['finding']}** |")
    return "\n".join(lines)


# Other studies' verdicts are gathered by the paper report, whose DVC deps are every report: a study report that
# quoted them would change with files outside its own deps (stale after any other study's rebuild).
OTHER_STUDIES = ["## Other studies", "",
                 "Every study's verdicts, side by side: [the paper report](../paper.md) "
                 "(`dvc repro -s studies/dvc.yaml:paper`). This report is built from its own results only.", ""]


@dataclass(frozen=True)
class Evidence:
    """Everything a study report shows, computed once by ``write_report``; each section of the page reads it."""

    title: str
    source: str
    runs: RunSet
    ref: Reference
    policy: str
    baseline: str
    table: pd.DataFrame
    speed: pd.DataFrame
    found: list[Verdict]
    factors: pd.DataFrame
    candidates: pd.DataFrame
    range_tests: dict[str, dict[str, Any]]
    images: dict[str, str]
    out: Path


def _verdicts_section(e: Evidence) -> list[str]:
    tested = [v for v in e.found if v.verdict != "not run"]
    counts = Counter(v.verdict for v in tested)
    return [f"# {e.title}", "", f"Built from {e.source}. Every number below is computed from those runs; published "
            "numbers come from `superconv/report/published.yaml` (tags: REPO = authors' logs, PAPER-2nd = "
            "third-party transcription, PAPER-img = image of the paper's table, UNVERIFIED).", "",
            "## Verdicts", "",
            ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts.get(v)) or "No claim could be tested.", "",
            *(f"- {v.line()}" for v in tested)]


def _ours_section(e: Evidence) -> list[str]:
    parts = ["", "## Our runs beside the published numbers", "", ours_markdown(e.table), "",
             "Mean ± sample std over finished seeds; the 95% CI of our mean is t-based. The difference's CI is "
             "Welch's when the paper gives a std (its n runs), else a one-sample t interval against the single "
             "published number. Diverged seeds are counted, not averaged."
             + (f" {e.ref.notes.evaluation}" if e.ref.notes.evaluation else ""), ""]
    if "published" in e.images:
        parts += [f"![ours against the published numbers]({e.images['published']})", ""]
    return parts


def _gap_section(e: Evidence) -> list[str]:
    if not len(e.factors):
        return []
    return ["## Gap analysis: factors tested for verdicts that failed", "",
            "Each factor run changes one thing against the row's own run (`factors` of the claim in "
            "published.yaml). It *accounts for the gap* when it beats the row's run (effect CI above 0) and "
            "matches the published value within the claim's tolerance, *closes part of the gap* when it beats "
            "the row's run without matching, *matches the paper, effect not resolved* when it matches but its "
            "effect's CI includes 0, *widens* the gap when worse, and otherwise *explains nothing*.", "",
            factors_markdown(e.factors), "",
            *(f"![factors of {k.split(':', 1)[1]}]({v})" for k, v in e.images.items() if k.startswith("factors:")),
            ""]


def _ablations_section(e: Evidence) -> list[str]:
    if "ablations" not in e.images:
        return []
    return ["## Ablations", "", f"Every other run of the study without a published row or a factor sweep, "
            f"against {e.policy} (Welch 95% CI); the `better` claims above give the verdicts on the paper's own "
            "findings.", "", f"![ablations]({e.images['ablations']})", ""]


def _range_tests_section(e: Evidence) -> list[str]:
    return [line for label, rt in e.range_tests.items()
            for line in range_test_markdown(label, rt, e.images[f"range_test:{label}"])]


def _curves_section(e: Evidence) -> list[str]:
    parts = ["## Test accuracy against iteration", "", f"![accuracy against iteration]({e.images['accuracy']})", "",
             f"## Iterations to {e.baseline}'s final accuracy", ""]
    if "speed" in e.images:
        parts += [f"![iterations to target]({e.images['speed']})", ""]
    parts += [speed_markdown(e.speed) if len(e.speed) else f"No finished {e.baseline} run: no target.", "",
              "## Schedules", "", f"![schedules]({e.images['schedules']})", ""]
    for key, heading, alt in (("limited", e.ref.notes.limited_data, "accuracy by training-set size"),
                              ("epochs", e.ref.notes.epochs, "accuracy against epochs")):
        if key in e.images:
            parts += [f"## {heading}", "", f"![{alt}]({e.images[key]})", ""]
    return parts


def _runs_section(e: Evidence) -> list[str]:
    return [*OTHER_STUDIES, "## Runs", "", runs_markdown(e.runs.summaries), "",
            "## Claims not tested by this study", "", *(f"- {v.line()}" for v in e.found if v.verdict == "not run"),
            "", "## Published rows not run by this study", "", not_run_markdown(e.table, e.ref).rstrip("\n")]


def _candidates_section(e: Evidence) -> list[str]:
    return ["", candidates_markdown(e.candidates, e.ref).rstrip("\n")] if len(e.candidates) else []


SECTIONS = (_verdicts_section, _ours_section, _gap_section, _ablations_section, _range_tests_section,
            _curves_section, _runs_section, _candidates_section)


def render_markdown(evidence: Evidence) -> str:
    """The report page: verdicts first, then the evidence, one section after another."""
    return "\n".join(line for section in SECTIONS for line in section(evidence)).rstrip("\n") + "\n"


def combined_range_tests(groups: dict[str, list[Path]]) -> dict[str, dict[str, Any]]:
    """label -> the finished seeds' curves, suggestions and their spread (range_spread.spread); empty groups skipped."""
    found = {}
    for label, directories in groups.items():
        curves, suggestions = load_range_tests(directories)
        if suggestions:
            found[label] = {"curves": curves, "found": suggestions, "combined": spread(suggestions)}
    return found


def range_test_dirs(directory: Path) -> list[Path]:
    """A range-test directory's seeds: its seed-*/ subdirectories (a multi-seed test), else itself (one test)."""
    seeds = sorted(Path(directory).glob("seed-*"))
    return seeds or [Path(directory)]


def write_report(runs: RunSet, out: Path, policy: str, baseline: str,
                 range_tests: dict[str, list[Path]] | None = None, source: str = "the study's results",
                 ref: Reference | None = None, plans: Mapping[str, Plan] | None = None) -> dict[str, Any]:
    """Write report.md/.html, figures/*.png, tables/*.csv, metrics.json and verdicts.json under ``out``; return
    metrics and verdicts. ``range_tests``: label -> the directories of one range test's seeds; ``plans``: claim id
    -> the study's sequential plan for it."""
    out, ref = Path(out), ref or load_reference()
    table = accuracy_table(runs, ref)
    speed = speed_table(runs, policy, baseline)
    found = judge_claims(ref, runs, table, policy, baseline, plans)
    tests = combined_range_tests(range_tests or {})
    factors, ablations = factor_rows(ref, table), ablation_rows(ref, runs, table, policy)
    candidates = candidate_rows(ref, runs, table)
    images = draw_figures(out, runs, table, ref, speed, tests, factors, ablations)
    frames = {"accuracy": table, "speed": speed, "runs": runs.summaries, "claims": pd.DataFrame(
        [v.record() for v in found]), "accuracy_curves": curves_table(runs), "schedules": schedules_table(runs),
              "limited_data": limited_data_table(runs, ref), "factors": factors, "ablations": ablations,
              "candidates": candidates}
    for name, frame in frames.items():
        atomic_write(out / "tables" / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
    for label, rt in tests.items():
        write_json(out / "tables" / f"range_test{f'_{label}' if label else ''}.json", rt["combined"])
    metrics = report_metrics(table, speed, found, policy)
    write_json(out / "metrics.json", metrics)
    title = report_title(table, policy, baseline)
    lines = [v.line() for v in found if v.verdict != "not run"]
    write_json(out / VERDICTS_FILE, {"title": title, "built_from": source, "verdicts": lines})
    text = render_markdown(Evidence(title, source, runs, ref, policy, baseline, table, speed, found, factors,
                                    candidates, tests, images, out))
    atomic_write(out / "report.md", lambda p: p.write_text(text))
    page = to_html(text, out, title)
    atomic_write(out / "report.html", lambda p: p.write_text(page))
    return {"metrics": metrics, "verdicts": lines}


def build_report(results: Path, out: Path, policy: str, baseline: str, range_test_dir: Path | None,
                 ref: Reference | None = None) -> dict[str, Any]:
    """The DVC stage's report: every run under results/train/ and the range test's seeds."""
    tests = {"": range_test_dirs(range_test_dir)} if range_test_dir else {}
    return write_report(load_train_runs(Path(results)), out, policy, baseline, tests,
                        f"`{Path(results) / 'train'}`", ref)


def build_study_report(results: Path, out: Path, policy: str, baseline: str, range_tests: list[str],
                       ref: Reference | None = None, plans: Mapping[str, Plan] | None = None) -> dict[str, Any]:
    """A study's report (stages.study): its training runs under ``results``/<run>-<seed>/, each named by its
    directory, and the range-test runs named in ``range_tests`` (one section each, over their seeds)."""
    groups = {name: sorted(Path(results).glob(f"{name}-*")) for name in range_tests}
    return write_report(load_study_runs(Path(results)), out, policy, baseline, groups, f"`{results}`", ref, plans)


def _markdown_table(rows: list[dict[str, str]]) -> list[str]:
    keys = list(rows[0]) if rows else []
    return [f"| {' | '.join(keys)} |", f"|{'---|' * len(keys)}",
            *(f"| {' | '.join(str(r[k]) for k in keys)} |" for r in rows)]


def write_not_run_report(out: Path, title: str, source: str, plan: list[dict[str, str]],
                         how: list[str]) -> dict[str, Any]:
    """The report of a study with no finished training run: what it will run (``plan``) and how (``how``), and a
    verdicts.json without verdicts, so the paper report and DVC find it and list the study's rows as not run."""
    out = Path(out)
    text = "\n".join([f"# {title}", "", f"No training run of this study has finished yet (results: {source}).", "",
                       "Run it with:", "", "```", *how, "```", "", "## What it runs", "",
                       *_markdown_table(plan), ""])
    atomic_write(out / "report.md", lambda p: p.write_text(text))
    atomic_write(out / "report.html", lambda p: p.write_text(to_html(text, out, title)))
    write_json(out / VERDICTS_FILE, {"title": title, "built_from": source, "verdicts": []})
    return {"metrics": {}, "verdicts": []}
