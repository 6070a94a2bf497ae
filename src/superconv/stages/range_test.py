"""The range-test stage: curve.csv, suggestion.json, range_test.png and checkpoint.pt in ``out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from superconv.common import plots
from superconv.common.io import atomic_write, write_json
from superconv.common.tracking import tracked_run
from superconv.core.data.prepared import load_prepared
from superconv.core.distributed import is_rank0, process_group
from superconv.core.engine import build_trainable, classification_step, held_out
from superconv.core.models import count_parameters
from superconv.core.range_rules import suggestion
from superconv.core.range_test import CURVE_COLUMNS, run_range_test
from superconv.core.schedules import range_lr
from superconv.stages import config as C
from superconv.stages.common import (
    backfill,
    dataset_dir,
    device_data,
    preflight,
    resumable,
    run_tags,
    study_name,
    write_config,
    write_provenance,
)


def range_test_stage(cfg: DictConfig, default_study: str = "adhoc") -> dict[str, Any]:
    """Run the range test; write curve.csv, suggestion.json and range_test.png into ``cfg.out``.

    When the chosen rule finds no value, curve.csv is still written (to show why) and the stage fails
    without a suggestion.json. A test stopped by SIGINT/SIGTERM or killed resumes from its checkpoint.
    """
    checked = C.validate_range_test(cfg)
    meta, device = preflight(cfg)
    C.cap_range_test(cfg)
    with process_group(device):
        return _range_test(cfg, checked, default_study, meta, device)


def _range_test(cfg: DictConfig, checked: C.Checked, default_study: str, meta: dict[str, Any],
                device: Any) -> dict[str, Any]:
    rt, out, trainer = cfg.range_test, Path(cfg.out), cfg.trainer
    checkpointing, resume, identity = resumable(cfg)
    train_data, test_data = device_data(cfg, load_prepared(dataset_dir(cfg)), device, checked.augment)
    trainable = build_trainable(cfg, device, range_lr(0, rt.iterations, rt.start_lr, rt.end_lr, rt.protocol),
                                float(rt.momentum))
    if is_rank0():
        write_config(out, cfg)
    model_name = cfg.model._target_.rsplit(".", 1)[-1]
    provenance = {"model": cfg.model._target_, "model_parameters": count_parameters(trainable.model),
                  "dataset": cfg.dataset.name, "dataset_source": meta["source"],
                  "dataset_sha256": meta["sha256"]["train.pt"], "total_batch": trainer.total_batch,
                  "weight_decay": cfg.optimizer.weight_decay, "seed": cfg.seed,
                  "eval_size": min(rt.eval_size, len(test_data)) if rt.eval_every is not None else None}
    tags = {**run_tags(cfg, meta, device), "superconv.range_test.protocol": rt.protocol,
            "superconv.identity": identity}
    with tracked_run(cfg, f"range_test-{model_name.lower()}-{cfg.dataset.name}", study_name(cfg, default_study),
                     tags, resume_run_id=resume["tracking_run_id"] if resume else None, writer=is_rank0()) as tracker:
        result = run_range_test(
            rt, trainable, classification_step(trainable, train_data, int(trainer.total_batch)),
            held_out(trainable, test_data, int(trainer.eval_batch), int(rt.eval_size)), tracker,
            iterations_per_epoch=len(train_data) / trainer.total_batch, batch=int(trainer.total_batch),
            log_every=int(trainer.log_every), progress=bool(trainer.progress),
            checkpoint_every=int(trainer.checkpoint_every or 0), checkpointing=checkpointing, resume=resume)
        backfill(tracker, resume, result.rows)
        frame = pd.DataFrame(result.rows, columns=CURVE_COLUMNS)
        try:
            found = {**suggestion(result, rt), **provenance, "tracking_run_id": tracker.run_id}
        finally:
            if is_rank0():
                atomic_write(out / "curve.csv", lambda p: frame.to_csv(p, index=False))
        if is_rank0():
            write_json(out / "suggestion.json", found)
            write_provenance(out, cfg)
            plots.save_figure(plots.range_test_figure(frame, found), out / "range_test.png")
            for file in ("curve.csv", "suggestion.json", "range_test.png"):
                tracker.log_artifact(out / file)
            tracker.log_metrics({"suggested_max_lr": found["max_lr"], "suggested_min_lr": found["min_lr"]},
                                step=len(result.rows))
    return found
