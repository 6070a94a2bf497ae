"""The range-test stage: curve.csv, suggestion.json, range_test.png and checkpoint.pt in ``out``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from superconv.common import plots
from superconv.common.io import atomic_write, write_json
from superconv.common.tracking import tracked_run
from superconv.core.data.prepared import load_prepared
from superconv.core.distributed import is_rank0, process_group
from superconv.core.engine import classification_step, held_out
from superconv.core.models import count_parameters
from superconv.core.range_rules import suggestion
from superconv.core.range_test import CURVE_COLUMNS, run_range_test
from superconv.core.schedules import range_lr
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
from superconv.stages.preflight import dataset_dir, preflight
from superconv.stages.training import trainable

# suggestion.json echoes these range_test values as the config wrote them (config.yaml holds the same).
ECHOED = ("protocol", "start_lr", "end_lr", "eval_every", "momentum", "smooth_beta", "stop_factor", "diverge_factor",
          "min_lr_divisor")


def range_test_stage(cfg: DictConfig, default_study: str = "adhoc") -> dict[str, Any]:
    """Run the range test; write curve.csv, suggestion.json and range_test.png into ``cfg.out``.

    When the chosen rule finds no value, curve.csv is still written (to show why) and the stage fails
    without a suggestion.json. A test stopped by SIGINT/SIGTERM or killed resumes from its checkpoint.
    """
    checked = rules.validate_range_test(cfg)
    meta, device = preflight(checked.run)
    with process_group(device):
        return _range_test(cfg, checked, default_study, meta, device)


def _range_test(cfg: DictConfig, checked: rules.Checked, default_study: str, meta: dict[str, Any],
                device: Any) -> dict[str, Any]:
    run, out = checked.run, Path(cfg.out)
    rt, trainer = run.range_test, run.trainer
    checkpointing, resume, identity = resumable(cfg)
    train_data, test_data = device_data(run, load_prepared(dataset_dir(run)), device, checked.augment)
    stepped = trainable(run.model.model_dump(by_alias=True), run.optimizer.model_dump(by_alias=True), trainer, device,
                        range_lr(0, rt.iterations, rt.start_lr, rt.end_lr, rt.protocol), rt.momentum)
    if is_rank0():
        write_config(out, cfg)
    model_name = run.model.target.rsplit(".", 1)[-1]
    provenance = {"model": run.model.target, "model_parameters": count_parameters(stepped.model),
                  "dataset": run.dataset.name, "dataset_source": meta["source"],
                  "dataset_sha256": meta["sha256"]["train.pt"], "total_batch": trainer.total_batch,
                  "weight_decay": cfg.optimizer.weight_decay, "seed": run.seed,
                  "eval_size": min(rt.eval_size, len(test_data)) if rt.eval_every is not None else None,
                  **{key: cfg.range_test[key] for key in ECHOED}}
    tags = {**run_tags(run, meta, device), "superconv.range_test.protocol": rt.protocol,
            "superconv.identity": identity}
    with tracked_run(OmegaConf.to_container(cfg, resolve=True), f"range_test-{model_name.lower()}-{run.dataset.name}",
                     study_name(run, default_study), tags, resume_run_id=resume["tracking_run_id"] if resume else None,
                     writer=is_rank0()) as tracker:
        result = run_range_test(
            rt, stepped, classification_step(stepped, train_data, trainer.total_batch),
            held_out(stepped, test_data, trainer.eval_batch, rt.eval_size), tracker,
            iterations_per_epoch=len(train_data) / trainer.total_batch, batch=trainer.total_batch,
            log_every=trainer.log_every, progress=trainer.progress,
            checkpoint_every=trainer.checkpoint_every or 0, checkpointing=checkpointing, resume=resume)
        backfill(tracker, resume, result.rows)
        frame = pd.DataFrame(result.rows, columns=CURVE_COLUMNS)
        try:
            found = {**suggestion(result, rt.iterations, rt.rule, rt.min_lr_divisor), **provenance,
                     "tracking_run_id": tracker.run_id}
        finally:
            if is_rank0():
                atomic_write(out / "curve.csv", lambda p: frame.to_csv(p, index=False))
        if is_rank0():
            write_json(out / "suggestion.json", found)
            write_provenance(out, trainer.cpu_mode)
            plots.save_figure(plots.range_test_figure(frame, found), out / "range_test.png")
            for file in ("curve.csv", "suggestion.json", "range_test.png"):
                tracker.log_artifact(out / file)
            tracker.log_metrics({"suggested_max_lr": found["max_lr"], "suggested_min_lr": found["min_lr"]},
                                step=len(result.rows))
    return found
