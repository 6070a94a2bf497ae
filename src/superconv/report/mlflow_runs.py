"""Training runs rebuilt from an MLflow store: metrics.csv-like frames from metric histories, summaries from
params, tags and final metrics, so the report can compare any set of tracked runs."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from superconv.common.tracking import ROLE_TAG, STUDY_TAG
from superconv.report.results import RunSet, build_runset

CURVE_KEYS = ("lr", "momentum", "train_loss", "test_loss", "test_acc")
USABLE_STATUS = ("FINISHED", "FAILED")  # FAILED is how a diverged run ends (stages.Diverged)


def _search(client: Any, experiment_ids: list[str], filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_runs(client: Any, experiment: str, study: str | None = None, run_ids: list[str] | None = None,
              filter_string: str | None = None) -> list[Any]:
    """Training runs chosen by study (children of its parent run), explicit ids, or an MLflow filter string."""
    if run_ids:
        return [client.get_run(run_id) for run_id in run_ids]
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ValueError(f"no MLflow experiment {experiment!r} at {client.tracking_uri}")
    train = f"tags.`{ROLE_TAG}` = 'train'"
    if study is not None:
        parents = _search(client, [exp.experiment_id],
                          f"tags.`{STUDY_TAG}` = '{study}' and tags.`{ROLE_TAG}` = 'study'")
        if not parents:
            raise ValueError(f"no study parent run {study!r} in experiment {experiment!r}")
        return [run for parent in parents for run in _search(
            client, [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and {train}")]
    return _search(client, [exp.experiment_id], f"{filter_string} and {train}" if filter_string else train)


def _tag(run: Any, key: str) -> str | None:
    value = run.data.tags.get(key)
    return None if value in (None, "None", "") else value


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def metrics_frame(client: Any, run: Any) -> pd.DataFrame:
    """metrics.csv rebuilt: one row per logged step, test_* only where an evaluation was logged."""
    columns = {}
    for key in CURVE_KEYS:
        history = client.get_metric_history(run.info.run_id, key)
        columns[key] = pd.Series({m.step: m.value for m in history}, dtype=float)
    frame = pd.DataFrame(columns).rename_axis("iteration").reset_index()
    batch = _number(run.data.params.get("trainer.total_batch"))
    size = _number(run.data.params.get("train_size") or run.data.params.get("dataset.train_size"))
    frame.insert(1, "epoch", (frame["iteration"] + 1) * batch / size if batch and size else math.nan)
    return frame


def run_record(client: Any, run: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """(summary.json-like dict, metrics frame) for one tracked training run."""
    frame = metrics_frame(client, run)
    params, final = run.data.params, run.data.metrics
    evals = frame.dropna(subset=["test_acc"])
    iterations = int(frame["train_loss"].notna().sum())
    epochs = frame.loc[frame["train_loss"].notna(), "epoch"].max()
    failed = run.info.status == "FAILED"
    size = _number(params.get("train_size") or params.get("dataset.train_size"))
    summary = {
        "run": _tag(run, "superconv.run") or run.info.run_name, "seed": int(_tag(run, "superconv.seed") or 0),
        "experiment": _tag(run, "superconv.experiment"), "policy": params.get("schedule.policy"),
        "train_size": size,  # a dataset without full_train_size has no subsets: its size is the full one
        "full_train_size": _number(params.get("dataset.full_train_size")) or size,
        "final_test_acc": final.get("final_test_acc", evals["test_acc"].iloc[-1] if len(evals) else None),
        "best_test_acc": final.get("best_test_acc", evals["test_acc"].max() if len(evals) else None),
        "iterations": iterations, "epochs": float(epochs) if pd.notna(epochs) else math.nan,
        "wall_s": final.get("wall_s", math.nan), "images_per_s": final.get("images_per_s", math.nan),
        "diverged": failed, "divergence_reason": "MLflow run FAILED (diverged or crashed)" if failed else None,
        "dataset_source": _tag(run, "superconv.dataset_source") or "", "tracking_run_id": run.info.run_id,
        "dir": f"mlflow:{run.info.run_id}", "params": dict(params),
    }
    return summary, frame


def load_mlflow_runs(client: Any, runs: list[Any], label_keys: list[str] | None = None) -> RunSet:
    """A RunSet from tracked runs (finished or failed; running and killed ones are left out)."""
    usable = [r for r in runs if r.info.status in USABLE_STATUS]
    return build_runset([run_record(client, r) for r in usable], label_keys or ())
