"""The train stage: one training run -> metrics.csv, summary.json and checkpoint.pt in ``out``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from superconv.common import plots
from superconv.common.errors import Diverged
from superconv.common.io import atomic_write, write_json
from superconv.common.metrics import iterations_to_target
from superconv.common.tracking import Tracker, tracked_run
from superconv.core.data.prepared import load_prepared
from superconv.core.distributed import is_rank0, process_group
from superconv.core.loop import EVAL_COLUMNS, TRAIN_COLUMNS, LoopResult
from superconv.core.schedules import Schedule
from superconv.stages import rules
from superconv.stages.common import (
    backfill,
    device_data,
    resumable,
    run_tags,
    study_name,
    write_config,
    write_provenance,
)
from superconv.stages.compose import apply_lr_from
from superconv.stages.preflight import dataset_dir, preflight
from superconv.stages.schema import TrainConfig
from superconv.stages.training import run_training

log = logging.getLogger(__name__)

METRIC_COLUMNS = [*TRAIN_COLUMNS, *EVAL_COLUMNS]  # metrics.csv


def train_sizes(run: TrainConfig) -> dict[str, int]:
    """Training images used and the dataset's full size: the report tells limited-data rows apart by them."""
    size = run.dataset.train_size
    return {"train_size": size, "full_train_size": run.dataset.full_train_size or size}


def log_curves(tracker: Tracker, frame: pd.DataFrame, title: str) -> None:
    """Log the run's curves figure and always close it: pyplot keeps every figure alive until closed, so sweeps
    in one process (and failed uploads) would pile them up."""
    import matplotlib.pyplot as plt

    figure = plots.run_curves_figure(frame, title)
    try:
        tracker.log_figure(figure, "curves.png")
    finally:
        plt.close(figure)


def run_summary(result: LoopResult, run: TrainConfig, schedule: Schedule) -> dict[str, Any]:
    """The run's headline numbers for summary.json, the report and MLflow."""
    evals = result.evaluations
    train_s = max(result.wall_s - result.eval_s, 1e-9)
    return {
        "final_test_acc": evals[-1]["test_acc"] if evals else None,
        "final_test_loss": evals[-1]["test_loss"] if evals else None,
        "best_test_acc": max((e["test_acc"] for e in evals), default=None),
        "iterations": result.iterations,
        "schedule_iterations": schedule.iterations,
        "epochs": result.iterations * run.trainer.total_batch / run.dataset.train_size,
        "wall_s": result.wall_s,
        "train_s": train_s,
        "eval_s": result.eval_s,
        "images_per_s": result.iterations * run.trainer.total_batch / train_s,
        "target_acc": run.target_acc,
        "iterations_to_target": (None if run.target_acc is None or not evals else
                                 iterations_to_target(pd.DataFrame(evals), run.target_acc)),
        "diverged": result.stop_reason is not None,
        "divergence_reason": result.stop_reason,
    }


def train_stage(cfg: DictConfig, run_name: str, default_study: str = "adhoc",
                experiment: str | None = None) -> dict[str, Any]:
    """Validate, train, and write metrics.csv, summary.json and checkpoint.pt into ``cfg.out``."""
    lr_source = apply_lr_from(cfg)
    if lr_source != "config":
        run_name = f"{run_name}_lr_from_range_test"  # a different run from the recipe's, in tables and MLflow
    checked = rules.validate_train(cfg)
    meta, device = preflight(checked.run)
    with process_group(device):
        return _train(cfg, checked, run_name, default_study, experiment, lr_source, meta, device)


def _train(cfg: DictConfig, checked: rules.Checked, run_name: str, default_study: str, experiment: str | None,
           lr_source: str, meta: dict[str, Any], device: Any) -> dict[str, Any]:
    run, out, schedule = checked.run, Path(cfg.out), checked.schedule
    checkpointing, resume, identity = resumable(cfg)
    train_data, test_data = device_data(run, load_prepared(dataset_dir(run)), device, checked.augment)
    tags = {**run_tags(run, meta, device), "superconv.run": run_name, "superconv.experiment": str(experiment),
            "superconv.seed": str(run.seed), "superconv.lr_source": lr_source, "superconv.identity": identity}
    if is_rank0():
        write_config(out, cfg)
    with tracked_run(OmegaConf.to_container(cfg, resolve=True), f"{run_name}-seed{run.seed}",
                     study_name(run, default_study), tags, resume_run_id=resume["tracking_run_id"] if resume else None,
                     writer=is_rank0()) as tracker:
        result = run_training(run.model.model_dump(by_alias=True), run.optimizer.model_dump(by_alias=True),
                              run.trainer, schedule, train_data, test_data, tracker, checkpointing, resume)
        backfill(tracker, resume, result.rows)
        summary = {**run_summary(result, run, schedule), "run": run_name, "seed": run.seed, "experiment": experiment,
                   "policy": schedule.policy, **train_sizes(run), "lr_source": lr_source,
                   "dataset_source": meta["source"],
                   "dataset_sha256": meta["sha256"]["train.pt"], "tracking_run_id": tracker.run_id,
                   "resumed": resume is not None,
                   "schedule": OmegaConf.to_container(cfg.schedule, resolve=True)}
        if is_rank0():
            frame = pd.DataFrame(result.rows, columns=METRIC_COLUMNS)
            atomic_write(out / "metrics.csv", lambda p: frame.to_csv(p, index=False))
            write_json(out / "summary.json", summary)
            write_provenance(out, run.trainer.cpu_mode)
            if tracker.active:  # drawing (and importing seaborn) only for a store that keeps the figure
                log_curves(tracker, frame, f"{run_name} seed {run.seed}")
            for name in ("metrics.csv", "summary.json"):
                tracker.log_artifact(out / name)
            tracker.log_metrics({k: summary[k] for k in ("final_test_acc", "best_test_acc", "images_per_s",
                                                         "wall_s") if summary[k] is not None},
                                step=result.iterations)
        if result.stop_reason:
            tracker.fail(f"diverged: {result.stop_reason}")
            if run.trainer.fail_on_divergence:
                raise Diverged(result.stop_reason, out)
    return summary
