"""Stage wiring: config -> validated settings -> data, model, tracking -> fixed output files.

``pipelines/*.py`` are thin Hydra apps that call these functions; everything here is importable and
tested without Hydra's command line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from superconv import config as C
from superconv.checkpoint import config_fingerprint, load_resumable
from superconv.data.augment import Augment
from superconv.data.loader import DeviceData
from superconv.data.prepared import Prepared, load_prepared, read_meta, write_prepared
from superconv.data.sources import fetch
from superconv.data.subset import class_counts, stratified_subset
from superconv.distributed import is_rank0, process_group
from superconv.engine import Precision, build_training_model, resolve_device, seed_everything
from superconv.io import atomic_write, write_json
from superconv.models import count_parameters
from superconv.optim import build_optimizer
from superconv.range_rules import suggestion
from superconv.range_test import CURVE_COLUMNS, classification_step, held_out_evaluation, run_range_test
from superconv.schedules import build_schedule
from superconv.tracking import Tracker, tracked_run
from superconv.training import METRIC_COLUMNS, summarize, train

log = logging.getLogger(__name__)


def prepare_stage(cfg: DictConfig) -> dict[str, Any]:
    """Fetch the dataset from the first source that works and write the prepared tensors.

    A ``dataset.train_size`` below the full training set keeps a class-stratified subset drawn by
    ``dataset.subset_seed`` (default 0), recorded in meta.json; the full set's meta is unchanged.
    """
    train_split, test_split, source = fetch(cfg.dataset, Path(cfg.raw_root))
    info = {"dataset": cfg.dataset.name, "source": source}
    size, num_classes = int(cfg.dataset.train_size), int(cfg.dataset.num_classes)
    if size != len(train_split.labels):
        seed = int(OmegaConf.select(cfg.dataset, "subset_seed", default=0))
        train_split = stratified_subset(train_split, size, num_classes, seed)
        info.update(train_size=size, subset_seed=seed, class_counts=class_counts(train_split.labels, num_classes))
    meta = write_prepared(Path(cfg.out), train_split, test_split, info)
    log.info("prepared %s from source %r -> %s (%s)", cfg.dataset.name, source, cfg.out, meta["split_sizes"])
    print(f"{cfg.dataset.name}: source={source} train={meta['split_sizes']['train']} "
          f"test={meta['split_sizes']['test']} -> {cfg.out}")
    return meta


def _dataset_dir(cfg: DictConfig) -> Path:
    """``<data_root>/<dataset.prepared_name>``; datasets without that key use their name."""
    return Path(cfg.data_root) / OmegaConf.select(cfg.dataset, "prepared_name", default=cfg.dataset.name)


def _check_dataset(cfg: DictConfig) -> dict[str, Any]:
    """The prepared dataset must exist and match the config (before any compute)."""
    meta = read_meta(_dataset_dir(cfg))
    if meta["split_sizes"]["train"] != cfg.dataset.train_size:
        raise C.ConfigError(
            f"dataset.train_size={cfg.dataset.train_size} but {_dataset_dir(cfg)} holds "
            f"{meta['split_sizes']['train']} training images: fix dataset.train_size or re-run prepare."
        )
    return meta


def _device_data(cfg: DictConfig, prepared: Prepared, device: torch.device, seed: int) -> tuple[
        DeviceData, DeviceData]:
    """Both splits on ``device``; only the training split is augmented."""
    ds = cfg.dataset
    kwargs = {"device": device, "input_scale": ds.input_scale, "mean": ds.mean, "std": ds.std,
              "channels_last": cfg.trainer.channels_last, "seed": seed}
    return (DeviceData(prepared.train, augment=Augment.from_config(cfg.augment), **kwargs),
            DeviceData(prepared.test, **kwargs))


def _preflight(cfg: DictConfig) -> tuple[dict[str, Any], torch.device]:
    """After validation, before compute: dataset matches, out= writable, MLflow reachable; seed; device."""
    meta = _check_dataset(cfg)
    C.check_writable("out", cfg.out)
    C.check_tracking(cfg)
    seed_everything(cfg.seed, cfg.trainer.threads)
    return meta, resolve_device(cfg.trainer.device)


def _dataset_tags(meta: dict[str, Any]) -> dict[str, str]:
    return {"superconv.dataset": meta["dataset"], "superconv.dataset_source": meta["source"],
            "superconv.dataset_sha256": meta["sha256"]["train.pt"]}


def _study(cfg: DictConfig, default: str) -> str:
    return cfg.study if cfg.study else default


def apply_lr_from(cfg: DictConfig) -> str:
    """Take min_lr/max_lr from a range test's suggestion.json when ``lr_from`` is set; say which."""
    if not cfg.lr_from:
        return "config"
    path = Path(cfg.lr_from)
    if not path.is_file():
        raise C.ConfigError(f"lr_from={cfg.lr_from!r} does not exist: run the range test first or drop lr_from.")
    found = json.loads(path.read_text())
    schedule = cfg.schedule
    if "max_lr" not in schedule:
        raise C.ConfigError(f"lr_from needs a schedule with min_lr/max_lr; schedule.policy={schedule.policy!r}.")
    for key, ours in (("dataset", cfg.dataset.name), ("model", cfg.model._target_)):
        if found.get(key, ours) != ours:
            log.warning("lr_from=%s was measured with %s=%s, but this run uses %s", path, key, found[key], ours)
    with open_dict(cfg):
        schedule.max_lr = float(found["max_lr"])
        schedule.min_lr = float(found["min_lr"])
    return str(path)


def train_sizes(cfg: DictConfig) -> dict[str, int]:
    """Training images used and the dataset's full size: the report tells limited-data rows apart by them."""
    size = int(cfg.dataset.train_size)
    return {"train_size": size, "full_train_size": int(OmegaConf.select(cfg.dataset, "full_train_size",
                                                                        default=size))}


def log_curves(tracker: Tracker, frame: pd.DataFrame, title: str) -> None:
    """Log the run's curves figure and always close it: pyplot keeps every figure alive until closed, so sweeps
    in one process (and failed uploads) would pile them up."""
    import matplotlib.pyplot as plt

    from superconv.report.figures import run_curves_figure

    figure = run_curves_figure(frame, title)
    try:
        tracker.log_figure(figure, "curves.png")
    finally:
        plt.close(figure)


def train_stage(cfg: DictConfig, run_name: str, default_study: str = "adhoc",
                experiment: str | None = None) -> dict[str, Any]:
    """Validate, train, and write metrics.csv, summary.json and checkpoint.pt into ``cfg.out``."""
    lr_source = apply_lr_from(cfg)
    if lr_source != "config":
        run_name = f"{run_name}_lr_from_range_test"  # a different run from the recipe's, in tables and MLflow
    C.validate_train(cfg)
    meta, device = _preflight(cfg)
    with process_group(device):
        return _train(cfg, run_name, default_study, experiment, lr_source, meta, device)


def _train(cfg: DictConfig, run_name: str, default_study: str, experiment: str | None, lr_source: str,
           meta: dict[str, Any], device: torch.device) -> dict[str, Any]:
    out = Path(cfg.out)
    schedule = build_schedule(cfg.schedule, C.iterations_per_epoch(cfg))
    train_data, test_data = _device_data(cfg, load_prepared(_dataset_dir(cfg)), device, cfg.seed)
    tags = {**_dataset_tags(meta), "superconv.run": run_name, "superconv.experiment": str(experiment),
            "superconv.seed": str(cfg.seed), "superconv.lr_source": lr_source}
    fingerprint = config_fingerprint(cfg)
    resume = load_resumable(out / "checkpoint.pt", fingerprint)
    if resume is not None:
        log.info("resuming %s from its checkpoint at iteration %d", out, resume["loop"]["iteration"])
    with tracked_run(cfg, f"{run_name}-seed{cfg.seed}", _study(cfg, default_study), tags,
                     resume_run_id=resume["tracking_run_id"] if resume else None) as tracker:
        result = train(cfg, train_data, test_data, schedule, tracker, out / "checkpoint.pt", resume, fingerprint)
        summary = {**summarize(result, cfg, schedule), "run": run_name, "seed": cfg.seed, "experiment": experiment,
                   "policy": schedule.policy, **train_sizes(cfg), "lr_source": lr_source,
                   "dataset_source": meta["source"],
                   "dataset_sha256": meta["sha256"]["train.pt"], "tracking_run_id": tracker.run_id,
                   "resumed": resume is not None,
                   "schedule": OmegaConf.to_container(cfg.schedule, resolve=True)}
        if is_rank0():
            frame = pd.DataFrame(result.rows, columns=METRIC_COLUMNS)
            atomic_write(out / "metrics.csv", lambda p: frame.to_csv(p, index=False))
            write_json(out / "summary.json", summary)
            log_curves(tracker, frame, f"{run_name} seed {cfg.seed}")
            for name in ("metrics.csv", "summary.json"):
                tracker.log_artifact(out / name)
            tracker.log_metrics({k: summary[k] for k in ("final_test_acc", "best_test_acc", "images_per_s",
                                                         "wall_s") if summary[k] is not None},
                                step=result.iterations)
        if result.diverged:
            tracker.fail(f"diverged: {result.diverged}")
            if cfg.trainer.fail_on_divergence:
                raise Diverged(result.diverged, out)
    return summary


class Diverged(RuntimeError):
    """Training stopped on a non-finite or exploding loss; outputs hold what it had."""

    def __init__(self, reason: str, out: Path) -> None:
        super().__init__(f"training diverged: {reason}. What it had is in {out}.")


def range_test_stage(cfg: DictConfig, default_study: str = "adhoc") -> dict[str, Any]:
    """Run the range test; write curve.csv, suggestion.json and range_test.png into ``cfg.out``.

    When the chosen rule finds no value, curve.csv is still written (to show why) and the stage fails
    without a suggestion.json.
    """
    C.validate_range_test(cfg)
    meta, device = _preflight(cfg)
    rt = cfg.range_test
    if cfg.trainer.max_iterations is not None:
        with open_dict(cfg):
            rt.iterations = min(rt.iterations, int(cfg.trainer.max_iterations))
            if rt.eval_every is not None:
                rt.eval_every = min(rt.eval_every, rt.iterations)
    with process_group(device):
        return _range_test(cfg, default_study, meta, device)


def _range_test(cfg: DictConfig, default_study: str, meta: dict[str, Any], device: torch.device) -> dict[str, Any]:
    rt, out = cfg.range_test, Path(cfg.out)
    train_data, test_data = _device_data(cfg, load_prepared(_dataset_dir(cfg)), device, cfg.seed)
    net, model = build_training_model(cfg, device)
    optimizer = build_optimizer(cfg.optimizer, net)
    precision = Precision.for_device(device, cfg.trainer.amp)
    model_name = cfg.model._target_.rsplit(".", 1)[-1]
    provenance = {"model": cfg.model._target_, "model_parameters": count_parameters(net),
                  "dataset": cfg.dataset.name, "dataset_source": meta["source"],
                  "dataset_sha256": meta["sha256"]["train.pt"], "total_batch": cfg.trainer.total_batch,
                  "weight_decay": cfg.optimizer.weight_decay, "seed": cfg.seed,
                  "eval_size": min(rt.eval_size, len(test_data)) if rt.eval_every is not None else None}
    tags = {**_dataset_tags(meta), "superconv.range_test.protocol": rt.protocol}
    with tracked_run(cfg, f"range_test-{model_name.lower()}-{cfg.dataset.name}", _study(cfg, default_study),
                     tags) as tracker:
        step = classification_step(model, optimizer, train_data, cfg.trainer.total_batch, precision)
        evaluate_fn = held_out_evaluation(net, test_data, cfg.trainer.eval_batch, rt.eval_size, precision)
        result = run_range_test(rt, model, optimizer, step, evaluate_fn, tracker, cfg.trainer.progress)
        frame = pd.DataFrame(result.rows, columns=CURVE_COLUMNS)
        try:
            found = {**suggestion(result, rt), **provenance, "tracking_run_id": tracker.run_id}
        finally:
            if is_rank0():
                atomic_write(out / "curve.csv", lambda p: frame.to_csv(p, index=False))
        if is_rank0():
            from superconv.report.figures import range_test_figure, save_figure

            write_json(out / "suggestion.json", found)
            save_figure(range_test_figure(frame, found), out / "range_test.png")
            for file in ("curve.csv", "suggestion.json", "range_test.png"):
                tracker.log_artifact(out / file)
            tracker.log_metrics({"suggested_max_lr": found["max_lr"], "suggested_min_lr": found["min_lr"]},
                                step=len(result.rows))
    return found


def report_stage(cfg: DictConfig) -> dict[str, Any]:
    """Build reports/ and log it to the study's MLflow parent run."""
    from superconv.report.build import build_report

    built = build_report(Path(cfg.results), Path(cfg.out), cfg.compare.policy, cfg.compare.baseline,
                         Path(cfg.range_test_dir) if cfg.range_test_dir else None)
    for line in built["verdicts"]:
        print(line)
    if cfg.tracking.enabled and cfg.study:
        from superconv.tracking import log_to_study

        log_to_study(cfg, cfg.study, Path(cfg.out))
    return built
