"""Reading stage outputs (summary.json, metrics.csv, curve.csv) into pandas frames for the report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def load_train_runs(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summaries: one row per run dir, metrics: every metrics.csv row tagged with run and seed)."""
    summaries, metrics = [], []
    for summary_path in sorted(Path(results, "train").glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        summary["dir"] = summary_path.parent.name
        summaries.append(summary)
        frame = pd.read_csv(summary_path.parent / "metrics.csv")
        metrics.append(frame.assign(run=summary["run"], seed=summary["seed"]))
    if not summaries:
        raise FileNotFoundError(f"no training results under {Path(results, 'train')}: run the train stages first")
    return pd.DataFrame(summaries), pd.concat(metrics, ignore_index=True)


def load_range_test(directory: Path) -> tuple[pd.DataFrame, dict] | None:
    """A range test's curve and suggestion, or None when the study has none."""
    curve, found = Path(directory, "curve.csv"), Path(directory, "suggestion.json")
    if not (curve.is_file() and found.is_file()):
        return None
    return pd.read_csv(curve), json.loads(found.read_text())
