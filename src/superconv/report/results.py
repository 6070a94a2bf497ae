"""Reading run results (stage dirs, sweep dirs, or records rebuilt from MLflow) into the frames the report uses."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from superconv.common.provenance import CONFIG_FILE

# summary.json keys the report reads, with the value assumed when a run (an older one, or MLflow) lacks them.
SUMMARY_DEFAULTS: dict[str, Any] = {
    "experiment": None, "policy": None, "train_size": None, "final_test_acc": None, "best_test_acc": None,
    "iterations": 0, "epochs": 0.0, "wall_s": float("nan"), "images_per_s": float("nan"), "diverged": False,
    "divergence_reason": None, "dataset_source": "", "tracking_run_id": None, "dir": "",
}


@dataclass(frozen=True)
class RunSet:
    """summaries: one row per run (run, seed, summary keys); metrics: every metrics.csv row tagged run/seed."""

    summaries: pd.DataFrame
    metrics: pd.DataFrame

    @property
    def evals(self) -> pd.DataFrame:
        """The evaluated rows (test accuracy present)."""
        return self.metrics.dropna(subset=["test_acc"])


# stage -> (its curve file, its result file): what a finished run directory holds (a study's skip rule, --verify and
# the MLflow import read these names).
RUN_FILES = {"train": ("metrics.csv", "summary.json"), "range_test": ("curve.csv", "suggestion.json")}
_MISSING = object()


def _walk(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return _MISSING
        tree = tree[part]
    return tree


def lookup(summary: Mapping[str, Any], key: str) -> Any:
    """A dotted key of a run: its summary (summary.json, its `schedule`), then its whole resolved config (the run
    directory's config.yaml), then flat MLflow `params`; None when none holds it."""
    for tree in (summary, summary.get("config")):
        found = _walk(tree, key)
        if found is not _MISSING:
            return found
    return summary.get("params", {}).get(key)


def limited_size(summary: Mapping[str, Any]) -> int | None:
    """train_size when the run used a subset, None for the full training set (the report's convention: a run
    without train_size is a full-data run); summaries without full_train_size keep theirs."""
    size, full = summary.get("train_size"), summary.get("full_train_size")
    if size is None or (isinstance(size, float) and math.isnan(size)):
        return None
    return None if full is not None and int(size) >= int(full) else int(size)


def run_label(summary: Mapping[str, Any], label_keys: Iterable[str]) -> str:
    """The run name, extended with the values of ``label_keys`` (how a sweep's points tell apart).

    A limited-data run (summary.json `train_size`) always carries its size: the same policy at several sizes
    is several runs.
    """
    parts = [f"{key.rsplit('.', 1)[-1]}={lookup(summary, key)}" for key in label_keys]
    if summary.get("train_size") and "train_size" not in label_keys:
        parts.append(f"train_size={summary['train_size']}")
    return summary["run"] + (f" [{', '.join(parts)}]" if parts else "")


def build_runset(records: list[tuple[dict[str, Any], pd.DataFrame]], label_keys: Iterable[str] = ()) -> RunSet:
    """Frames from (summary, metrics) pairs; ``label_keys`` relabel runs, the original name stays in base_run."""
    if not records:
        raise FileNotFoundError("no training results found: run the train stages (or check the selection) first")
    label_keys = list(label_keys)
    summaries, metrics = [], []
    for summary, frame in records:
        summary = {**summary, "train_size": limited_size(summary)}
        row = {**SUMMARY_DEFAULTS, **summary, "base_run": summary["run"], "run": run_label(summary, label_keys)}
        row["diverged"] = bool(row["diverged"])
        summaries.append({k: v for k, v in row.items() if not isinstance(v, Mapping)})
        metrics.append(frame.assign(run=row["run"], seed=row["seed"]))
    table = pd.DataFrame(summaries)
    if table.duplicated(["run", "seed"]).any():
        dup = table[table.duplicated(["run", "seed"], keep=False)][["run", "seed", "dir"]].to_dict("records")
        raise ValueError(f"several results for the same run and seed: {dup}; pass label keys that tell them apart")
    return RunSet(table, pd.concat(metrics, ignore_index=True))


def read_run_dir(directory: Path, name: str | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    """One run directory's summary.json, metrics.csv and (when there) config.yaml; ``name`` replaces its run name
    (a study names its runs by their directories: factor sweeps of one policy are different runs)."""
    summary = json.loads(Path(directory, "summary.json").read_text())
    summary["dir"] = str(directory)
    config = Path(directory, CONFIG_FILE)
    if config.is_file():
        summary["config"] = yaml.safe_load(config.read_text())
    if name is not None:
        summary["run"] = name
    return summary, pd.read_csv(Path(directory, "metrics.csv"))


def seed_order(directory: Path) -> tuple[str, str, int]:
    """Sort key that reads a run directory's trailing seed (``<run>-<seed>``, or a sweep point's number) as a
    number: seed 10 after seed 9, not between 1 and 2, so every table lists a run's seeds in the order they ran.
    The rest sorts as text, as before (``momentum_0.85`` before ``momentum_0.9``)."""
    stem, _, seed = directory.name.rpartition("-")
    if not seed.isdigit():
        stem, seed = directory.name, "-1"
    return str(directory.parent), stem, int(seed)


def load_run_dirs(directories: Iterable[Path], label_keys: Iterable[str] = ()) -> RunSet:
    """Runs from directories holding summary.json + metrics.csv (DVC stage outs, Hydra sweep points)."""
    found = sorted({Path(d) for d in directories if Path(d, "summary.json").is_file()
                    and Path(d, "metrics.csv").is_file()}, key=seed_order)
    return build_runset([read_run_dir(d) for d in found], label_keys)


def load_train_runs(results: Path) -> RunSet:
    """The DVC study's runs: results/train/<run>-<seed>/."""
    return load_run_dirs(Path(results, "train").glob("*"))


def study_run_name(directory: Path) -> str:
    """``<run>[@<variant>]-<seed>`` -> ``<run>``: how a study (stages.study) names each run's directory. A variant
    is one row of a published table that has several (``clr@40000``: CLR on 40,000 images); the run's label tells
    the variants apart by what they changed (its train_size)."""
    return directory.name.rsplit("-", 1)[0].split("@", 1)[0]


def study_run_dirs(results: Path) -> list[Path]:
    """A study's finished training runs: results/<study>/<run>-<seed>/ holding summary.json and metrics.csv."""
    return sorted((d for d in Path(results).glob("*-*") if Path(d, "summary.json").is_file()
                   and Path(d, "metrics.csv").is_file()), key=seed_order)


def load_study_runs(results: Path) -> RunSet:
    """A study's training runs, each named by its directory."""
    return build_runset([read_run_dir(d, study_run_name(d)) for d in study_run_dirs(results)])
