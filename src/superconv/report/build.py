"""Build reports/: figures, tables (ours beside the published numbers), claim verdicts and report.md."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from superconv.io import atomic_write, write_json
from superconv.report import figures
from superconv.report.results import load_range_test, load_train_runs
from superconv.report.stats import iterations_to_target, summarize, welch_p, welch_p_from_stats

ALPHA = 0.05


def published_rows() -> list[dict[str, Any]]:
    """The published reference (report/published.yaml)."""
    text = resources.files("superconv.report").joinpath("published.yaml").read_text()
    return yaml.safe_load(text)["rows"]


@dataclass(frozen=True)
class Verdict:
    claim: str
    verdict: str  # reproduced | not reproduced | inconclusive | not run
    evidence: str

    def line(self) -> str:
        return f"**{self.verdict.upper()}**: {self.claim} ({self.evidence})"


def accuracy_table(summaries: pd.DataFrame, published: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per named run: ours (mean ± std, n, 95% CI) beside the published value and the difference."""
    rows = []
    for run, group in summaries.groupby("run", sort=False):
        ok = group[~group["diverged"]]
        s = summarize(ok["final_test_acc"].tolist()) if len(ok) else None
        experiment = group["experiment"].iloc[0] if "experiment" in group else None
        pub = next((p for p in published if p["run"] == run and p["experiment"] == experiment), None)
        rows.append({
            "run": run,
            "policy": pub["policy"] if pub else run,
            "budget": pub["budget"] if pub else "",
            "iterations": int(group["iterations"].max()),
            "epochs": round(float(group["epochs"].max()), 1),
            "n": s.n if s else 0,
            "diverged": int(group["diverged"].sum()),
            "ours_mean": s.mean if s else None,
            "ours_std": s.std if s else None,
            "ci95_low": s.ci95[0] if s else None,
            "ci95_high": s.ci95[1] if s else None,
            "published_mean": pub["mean"] if pub else None,
            "published_std": pub["std"] if pub else None,
            "published_n": pub["n"] if pub else None,
            "authors_log": pub["authors_log"] if pub else None,
            "difference": (s.mean - pub["mean"]) if (s and pub) else None,
            "source": pub["source"] if pub else "",
        })
    return pd.DataFrame(rows)


def speed_table(evals: pd.DataFrame, table: pd.DataFrame, policy: str, baseline: str) -> pd.DataFrame:
    """Iterations each policy run needs to reach the baseline's mean final accuracy."""
    base = table.set_index("run").loc[baseline]
    target = float(base["ours_mean"])
    rows = []
    for (run, seed), group in evals.groupby(["run", "seed"]):
        if run not in (policy, baseline):
            continue
        reached = iterations_to_target(group, target)
        rows.append({"run": run, "seed": seed, "target_acc": target, "iterations_to_target": reached,
                     "baseline_iterations": int(base["iterations"])})
    return pd.DataFrame(rows)


def verdicts(table: pd.DataFrame, summaries: pd.DataFrame, speed: pd.DataFrame, policy: str,
             baseline: str) -> list[Verdict]:
    """Computed verdicts for the claims this study can test."""
    out = []
    by_run = table.set_index("run")
    acc = {run: summaries[(summaries["run"] == run) & ~summaries["diverged"]]["final_test_acc"].tolist()
           for run in (policy, baseline)}
    if not acc[policy] or not acc[baseline]:
        missing = [r for r in (policy, baseline) if not acc[r]]
        return [Verdict(f"{policy} vs {baseline}", "not run", f"no finished runs of {', '.join(missing)}")]
    p_speed = speed[speed["run"] == policy]["iterations_to_target"]
    base_iters = int(by_run.loc[baseline, "iterations"])
    if p_speed.isna().any():
        out.append(Verdict(
            f"{policy} reaches {baseline}'s final accuracy in a fraction of the iterations",
            "not reproduced", f"{int(p_speed.isna().sum())} of {len(p_speed)} seeds never reached "
            f"{speed['target_acc'].iloc[0]:.2f}%"))
    else:
        ratio = float(p_speed.mean()) / base_iters
        out.append(Verdict(
            f"{policy} reaches {baseline}'s final accuracy ({speed['target_acc'].iloc[0]:.2f}%) in a fraction "
            "of the iterations", "reproduced" if ratio < 0.5 else "not reproduced",
            f"mean {p_speed.mean():.0f} of {base_iters} iterations = {ratio:.3f} of the budget "
            f"({1 / ratio:.1f}x fewer)"))
    diff = by_run.loc[policy, "ours_mean"] - by_run.loc[baseline, "ours_mean"]
    p = welch_p(acc[policy], acc[baseline])
    if diff >= 0:
        verdict = "reproduced"
    elif p is not None and p < ALPHA:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    out.append(Verdict(f"{policy}'s final accuracy is at least {baseline}'s", verdict,
                       f"difference {diff:+.3f} pp, Welch p = {p:.3g}" if p is not None
                       else f"difference {diff:+.3f} pp (too few seeds for a test)"))
    for run in (policy, baseline):
        row = by_run.loc[run]
        if pd.isna(row["published_mean"]):
            continue
        p = welch_p_from_stats(row["ours_mean"], row["ours_std"], int(row["n"]), row["published_mean"],
                               row["published_std"], int(row["published_n"]))
        if p is None:
            verdict, evidence = "inconclusive", "fewer than 2 seeds"
        else:
            verdict = "reproduced" if p >= ALPHA else "not reproduced"
            evidence = f"ours {row['ours_mean']:.2f} ± {row['ours_std']:.2f} (n={int(row['n'])}) vs " \
                       f"{row['published_mean']:.2f} ± {row['published_std']:.2f} (n={int(row['published_n'])}), " \
                       f"difference {row['difference']:+.2f} pp, Welch p = {p:.3g}"
        out.append(Verdict(f"{run} reaches the published {row['published_mean']:.2f}%", verdict, evidence))
    return out


def _fmt(x: Any, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.{digits}f}"


def markdown_table(table: pd.DataFrame) -> str:
    lines = ["| run | policy | budget | n | ours (mean ± std) | 95% CI | published | difference | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        ours = f"{_fmt(r['ours_mean'])} ± {_fmt(r['ours_std'])}" if r["n"] else "not run"
        ci = f"[{_fmt(r['ci95_low'])}, {_fmt(r['ci95_high'])}]"
        pub = f"{_fmt(r['published_mean'])} ± {_fmt(r['published_std'])}" if r["published_mean"] else "–"
        lines.append(f"| {r['run']} | {r['policy']} | {r['iterations']} it ({r['epochs']} ep) | {r['n']} | "
                     f"{ours} | {ci} | {pub} | {_fmt(r['difference'], 2)} | {r['source']} |")
    return "\n".join(lines)


def build_report(results: Path, out: Path, policy: str, baseline: str, range_test_dir: Path | None) -> dict:
    """Write report.md, figures/*.png, tables/*.csv and metrics.json under ``out``; return the metrics."""
    results, out = Path(results), Path(out)
    summaries, metrics = load_train_runs(results)
    evals = metrics.dropna(subset=["test_acc"])
    table = accuracy_table(summaries, published_rows())
    speed = speed_table(evals, table, policy, baseline)
    found_verdicts = verdicts(table, summaries, speed, policy, baseline)
    fig_dir, tab_dir = out / "figures", out / "tables"
    images = {}
    figures.save_figure(figures.accuracy_vs_iteration_figure(evals), fig_dir / "accuracy_vs_iteration.png")
    images["accuracy"] = "figures/accuracy_vs_iteration.png"
    first_seed = metrics[metrics["seed"] == metrics.groupby("run")["seed"].transform("min")]
    figures.save_figure(figures.schedules_figure(first_seed), fig_dir / "schedules.png")
    images["schedules"] = "figures/schedules.png"
    range_test = load_range_test(range_test_dir) if range_test_dir else None
    if range_test is not None:
        figures.save_figure(figures.range_test_figure(*range_test), fig_dir / "range_test.png")
        images["range_test"] = "figures/range_test.png"
    for name, frame in (("accuracy", table), ("speed", speed), ("runs", summaries.drop(columns=["schedule"]))):
        atomic_write(tab_dir / f"{name}.csv", lambda p, f=frame: f.to_csv(p, index=False))
    report_metrics = {f"{r['run']}_final_test_acc_mean": r["ours_mean"] for r in table.to_dict("records")}
    report_metrics.update({f"{r['run']}_final_test_acc_std": r["ours_std"] for r in table.to_dict("records")})
    ratio = speed[speed["run"] == policy]["iterations_to_target"].mean()
    report_metrics["speedup_iterations_ratio"] = None if pd.isna(ratio) else float(
        ratio / table.set_index("run").loc[baseline, "iterations"])
    write_json(out / "metrics.json", report_metrics)
    text = render_markdown(table, speed, found_verdicts, images, range_test[1] if range_test else None,
                           summaries)
    atomic_write(out / "report.md", lambda p: p.write_text(text))
    return {"metrics": report_metrics, "verdicts": [v.line() for v in found_verdicts]}


def render_markdown(table: pd.DataFrame, speed: pd.DataFrame, found: list[Verdict], images: dict[str, str],
                    suggestion: dict | None, summaries: pd.DataFrame) -> str:
    """The report page: verdicts first, then the evidence."""
    parts = ["# superconv report: MNIST / LeNet, 1cycle vs Caffe inv", "",
             "Generated by `dvc repro` (stage `report`); every number below is computed from `results/`.", "",
             "## Verdicts", ""]
    parts += [f"- {v.line()}" for v in found]
    parts += ["", "## Final test accuracy beside the published numbers", "", markdown_table(table), "",
              "Published values were read from a third-party transcription of the paper (see source); "
              "std is the sample std over seeds, the CI is t-based.", ""]
    if suggestion is not None:
        rules = ", ".join(f"{k} = {_fmt(v, 4)}" for k, v in suggestion["rules"].items())
        parts += ["## LR range test", "", f"![range test]({images['range_test']})", "",
                  f"Protocol: {suggestion['protocol']} {suggestion['start_lr']:g} → {suggestion['end_lr']:g} over "
                  f"{suggestion['iterations_planned']} iterations ({suggestion['iterations_run']} run). "
                  f"Rules: {rules}. Chosen ({suggestion['method']}): max_lr = {suggestion['max_lr']:.4g}, "
                  f"min_lr = {suggestion['min_lr']:.4g} (÷{suggestion['min_lr_divisor']}). "
                  "The paper used 0.01–0.1 for this row.", ""]
    parts += ["## Test accuracy against iteration", "", f"![accuracy]({images['accuracy']})", "",
              "## Iterations to the baseline's final accuracy", "",
              "| run | seed | target (%) | iterations to target | baseline budget |", "|---|---|---|---|---|"]
    parts += [f"| {r['run']} | {r['seed']} | {r['target_acc']:.2f} | {_fmt(r['iterations_to_target'], 0)} | "
              f"{r['baseline_iterations']} |" for r in speed.to_dict("records")]
    parts += ["", "## Schedules", "", f"![schedules]({images['schedules']})", "", "## Runs", "",
              "| run | seed | final acc (%) | best acc (%) | iterations | wall (s) | images/s | data source |",
              "|---|---|---|---|---|---|---|---|"]
    for r in summaries.to_dict("records"):
        parts.append(f"| {r['run']} | {r['seed']} | {_fmt(r['final_test_acc'])} | {_fmt(r['best_test_acc'])} | "
                     f"{r['iterations']} | {r['wall_s']:.0f} | {r['images_per_s']:.0f} | {r['dataset_source']} |")
    return "\n".join(parts) + "\n"

