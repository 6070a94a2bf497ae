"""The combined paper report: every published table and claim, with what each study found, "not run" where none ran.

It reads only what each study's report wrote (``reports/<study>/verdicts.json``, ``tables/accuracy.csv`` and
``tables/claims.csv``), never a run, so regenerating it re-runs no study:

    python pipelines/paper_report.py reports      # -> reports/paper.md and reports/paper.html
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from superconv.common.io import atomic_write
from superconv.report.build import VERDICTS_FILE
from superconv.report.claims import VERDICTS
from superconv.report.reference import Reference, load_reference
from superconv.report.render import to_html

TITLE = "superconv: every published claim and row, with what each study found"


def _fmt(x: Any, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:+.2f}" if sign else f"{x:.2f}"


def load_studies(reports: Path) -> dict[str, dict[str, Any]]:
    """study name (its report directory) -> its verdicts.json, accuracy and claims tables."""
    studies = {}
    for found in sorted(Path(reports).glob(f"*/{VERDICTS_FILE}")):
        tables = found.parent / "tables"
        if (tables / "accuracy.csv").is_file() and (tables / "claims.csv").is_file():
            accuracy, claims = pd.read_csv(tables / "accuracy.csv"), pd.read_csv(tables / "claims.csv").fillna("")
        else:  # a study that has not run yet: listed, with nothing to put beside the published rows
            accuracy = pd.DataFrame(columns=["key", "status", "n"])
            claims = pd.DataFrame(columns=["claim_id", "verdict", "evidence", "claim", "statistic"])
        studies[found.parent.name] = {"verdicts": json.loads(found.read_text()), "accuracy": accuracy,
                                      "claims": claims}
    return studies


def _ours(studies: dict[str, dict[str, Any]], key: str) -> list[tuple[str, dict[str, Any]]]:
    """(study, row) for every study that ran the published row ``key``, most seeds first."""
    found = []
    for name, study in studies.items():
        acc = study["accuracy"]
        hit = acc[(acc["key"] == key) & acc["status"].isin(["ran", "diverged"])]
        found += [(name, r) for r in hit.to_dict("records")]
    return sorted(found, key=lambda pair: -int(pair[1]["n"]))


def _published(row: dict[str, Any]) -> str:
    if row["mean"] is None:
        return "–" + (f" ({row['note']})" if row["note"] else "")
    return f"{row['mean']:.2f}" + (f" ± {row['std']:.2f}" if row["std"] is not None else "")


def group_markdown(group: str, ref: Reference, studies: dict[str, dict[str, Any]]) -> list[str]:
    """One published table: each row's published value, an independent reproduction, and ours from every study."""
    rows = [r for r in ref.rows if r["group"] == group]
    lines = [f"### {ref.groups[group]['title']}", "", f"Source: {ref.groups[group]['source']}.", "",
             "| row | policy | published | independent | ours (mean ± std, n) | ours − published [95% CI] | study |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        indep = row["independent"]
        independent = f"{indep['mean']:.2f} (n={indep['n']}, {indep['source']})" if indep else "–"
        ours = _ours(studies, row["key"])
        if not ours:
            lines.append(f"| {row['key']} | {row['policy']} | {_published(row)} | {independent} | not run | – | "
                         f"needs: {row['needs'] or 'a study that runs it'} |")
        for name, r in ours:
            mine = "diverged" if r["status"] == "diverged" else f"{_fmt(r['ours_mean'])} ± {_fmt(r['ours_std'])}"
            diff = _fmt(r["difference"], sign=True)
            if _fmt(r["difference_ci_low"]) != "–":
                diff += f" [{_fmt(r['difference_ci_low'], sign=True)}, {_fmt(r['difference_ci_high'], sign=True)}]"
            lines.append(f"| {row['key']} | {row['policy']} | {_published(row)} | {independent} | "
                         f"{mine} (n={int(r['n'])}) | {diff} | [{name}]({name}/report.md) |")
    return [*lines, ""]


def claims_markdown(ref: Reference, studies: dict[str, dict[str, Any]]) -> tuple[list[str], Counter]:
    """Every claim of published.yaml: each study's verdicts on it, or "not run" with what it needs."""
    lines, counts = [], Counter()
    for claim in ref.claims:
        tested = [(name, v) for name, s in studies.items()
                  for v in s["claims"][s["claims"]["claim_id"] == claim["id"]].to_dict("records")
                  if v["verdict"] != "not run"]
        if not tested:
            counts["not run"] += 1
            needs = next((v["evidence"] for s in studies.values()
                          for v in s["claims"][s["claims"]["claim_id"] == claim["id"]].to_dict("records")), "")
            lines.append(f"- **NOT RUN** ({claim['id']}): {claim['text']}." + (f" {needs}." if needs else ""))
            continue
        for name, v in tested:
            counts[v["verdict"]] += 1
            lines.append(f"- **{v['verdict'].upper()}** ({claim['id']}, [{name}]({name}/report.md)): {v['claim']}. "
                         f"{v['statistic']}; {v['evidence']}.")
    return lines, counts


def paper_markdown(ref: Reference, studies: dict[str, dict[str, Any]]) -> str:
    claims, counts = claims_markdown(ref, studies)
    parts = [f"# {TITLE}", "",
             "Gathered from each study's own report (every number is computed there, from its runs); published "
             "numbers and claims come from `superconv/report/published.yaml`. Rebuilding this page re-runs no study: "
             "`dvc repro -s studies/dvc.yaml:paper` (or `python pipelines/paper_report.py reports`).", "",
             "## Studies", "", "| study | built from | verdicts |", "|---|---|---|"]
    for name, s in studies.items():
        found = Counter(line.split("**")[1].lower() for line in s["verdicts"]["verdicts"] if "**" in line)
        summary = ", ".join(f"{found[v]} {v}" for v in VERDICTS if found.get(v)) or "none tested"
        parts.append(f"| [{s['verdicts']['title']}]({name}/report.md) | {s['verdicts']['built_from']} | {summary} |")
    if not studies:
        parts.append("| – | no study has a report yet | – |")
    parts += ["", "## Claims", "", ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts.get(v)), "", *claims,
              "", "## Published tables", ""]
    for group in ref.groups:
        parts += group_markdown(group, ref, studies)
    return "\n".join(parts) + "\n"


def build_paper_report(reports: Path, ref: Reference | None = None) -> str:
    """Write ``reports``/paper.md and its self-contained paper.html; return the markdown."""
    text = paper_markdown(ref or load_reference(), load_studies(reports))
    atomic_write(Path(reports) / "paper.md", lambda p: p.write_text(text))
    page = to_html(text, Path(reports), TITLE)
    atomic_write(Path(reports) / "paper.html", lambda p: p.write_text(page))
    return text


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python pipelines/paper_report.py REPORTS_DIR (holding one report directory per study)",
              file=sys.stderr)
        return 2
    build_paper_report(Path(args[0]))
    print(f"report: {Path(args[0]) / 'paper.md'} and {Path(args[0]) / 'paper.html'}")
    return 0
