"""What the training and range-test stages share: the data on the device, tags, resume, and the files beside a run."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from superconv.common.io import atomic_write, write_json
from superconv.common.provenance import CONFIG_FILE, PROVENANCE_FILE, identity_digest, loaded_code, run_identity
from superconv.common.tracking import Tracker
from superconv.core.checkpoint import load_resumable
from superconv.core.cpu_mode import cpu_facts
from superconv.core.data.augment import Augment
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import Prepared
from superconv.core.distributed import world_size
from superconv.core.loop import Checkpointing
from superconv.stages.schema import Run

log = logging.getLogger(__name__)


def device_data(run: Run, prepared: Prepared, device: torch.device, augment: Augment) -> tuple[
        DeviceData, DeviceData]:
    """Both splits on ``device``, normalised as the dataset config says; only the training split is augmented."""
    ds = run.dataset
    kwargs = {"device": device, "input_scale": ds.input_scale, "mean": ds.mean, "std": ds.std,
              "channels_last": run.trainer.channels_last, "seed": run.seed}
    return DeviceData(prepared.train, augment=augment, **kwargs), DeviceData(prepared.test, **kwargs)


def run_tags(run: Run, meta: dict[str, Any], device: torch.device) -> dict[str, str]:
    """MLflow tags of a run: its dataset, the devices it ran on (a GPU run is searchable as one) and what decided
    its CPU numerics (``superconv.cpu.*``)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine() or device.type
    return {"superconv.dataset": meta["dataset"], "superconv.dataset_source": meta["source"],
            "superconv.dataset_sha256": meta["sha256"]["train.pt"], "superconv.device": name,
            "superconv.device_type": device.type, "superconv.device_count": str(world_size()),
            **{f"superconv.cpu.{k}": v for k, v in cpu_facts(run.trainer.cpu_mode).items()}}


def resumable(cfg: DictConfig) -> tuple[Checkpointing, dict[str, Any] | None, str]:
    """The run's checkpointing, the checkpoint it resumes (None: a fresh start) and its identity digest; an
    unfinished checkpoint of another identity is refused here, before any data is read or file written."""
    identity = run_identity(OmegaConf.to_container(cfg, resolve=True))
    checkpointing = Checkpointing(Path(cfg.out) / "checkpoint.pt", json.dumps(identity, sort_keys=True))
    resume = load_resumable(checkpointing.path, identity)
    if resume is not None:
        log.info("resuming %s from its checkpoint at iteration %d", cfg.out, resume["loop"]["iteration"])
    return checkpointing, resume, identity_digest(identity)


def backfill(tracker: Tracker, resume: dict[str, Any] | None, rows: list[dict[str, Any]]) -> None:
    """A run resumed into a new MLflow run (its own was not in this store) gets the rows before the checkpoint,
    so its curves are whole."""
    if tracker.recreated and resume is not None:
        tracker.log_rows(rows[: resume["loop"]["iteration"]])


def study_name(run: Run, default: str) -> str:
    return run.study or default


def write_config(out: Path, cfg: DictConfig) -> None:
    """The run's whole resolved config beside its results (the values MLflow gets as params), so any run can be
    labelled and compared by any key."""
    atomic_write(Path(out, CONFIG_FILE), lambda p: p.write_text(OmegaConf.to_yaml(cfg, resolve=True)))


def write_provenance(out: Path, cpu_mode: str) -> None:
    """The code this process ran (every superconv module loaded) and its environment, written when it ends."""
    write_json(Path(out, PROVENANCE_FILE), {
        "code": loaded_code(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
        "processor": platform.processor() or None, "cpu": cpu_facts(cpu_mode)})
