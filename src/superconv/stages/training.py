"""From validated settings to core's objects, and one training run through the loop: what the train stage, the
range-test stage and the self-check (``bench selfcheck``) share.

It loads torch, core and Hydra's ``instantiate`` only (no pandas, pydantic or MLflow), so the self-check, which runs
on a bare CUDA machine with only those installed, reuses it instead of copying it. Model and optimizer settings
come as the plain mappings ``conf/model`` and ``conf/optimizer`` hold (``_target_`` and the constructor's
arguments); the trainer's as any object with the attributes of ``TrainerSettings`` (the stages pass the validated
``schema.Trainer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from superconv.common.tracking import Tracker
from superconv.core.data.loader import DeviceData
from superconv.core.engine import EngineSettings, Trainable, build_trainable, classification_step, held_out
from superconv.core.loop import IN_MEMORY, Checkpointing, DivergenceGuard, LoopResult, LoopSettings, run_loop
from superconv.core.optim import OptimizerSpec
from superconv.core.schedules import Schedule


class TrainerSettings(Protocol):
    """The ``trainer`` values a run reads (``conf/trainer/*.yaml``)."""

    total_batch: int
    eval_batch: int
    eval_every: int
    max_iterations: int | None
    log_every: int
    checkpoint_every: int | None
    divergence_factor: float | None
    progress: bool
    channels_last: bool
    sync_bn: bool
    compile: bool
    cudnn_benchmark: bool
    amp: str | None


def composed(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any], TrainerSettings]:
    """The model, optimizer and trainer settings of a composed config, as ``trainable`` and ``run_training`` take
    them: for the benches and the self-check, which time or check what a composed config builds."""
    return (OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.optimizer, resolve=True),
            cfg.trainer)


def engine_settings(trainer: TrainerSettings) -> EngineSettings:
    return EngineSettings(channels_last=trainer.channels_last, sync_bn=trainer.sync_bn, compile=trainer.compile,
                          cudnn_benchmark=trainer.cudnn_benchmark, amp=trainer.amp)


def build_model(model: Mapping[str, Any]) -> torch.nn.Module:
    """The model ``conf/model`` names by ``_target_`` (seed the RNG first: its init draws from it)."""
    return instantiate(dict(model))


def optimizer_spec(optimizer: Mapping[str, Any]) -> OptimizerSpec:
    """``conf/optimizer``'s partial with its options bound, less ``decay_bn_and_bias`` (ours: it shapes the
    parameter groups)."""
    options = {k: v for k, v in optimizer.items() if k != "decay_bn_and_bias"}
    return OptimizerSpec(instantiate(options, _convert_="all"), float(optimizer["weight_decay"]),
                         bool(optimizer["decay_bn_and_bias"]))


def trainable(model: Mapping[str, Any], optimizer: Mapping[str, Any], trainer: TrainerSettings,
              device: torch.device, lr: float, momentum: float) -> Trainable:
    """A fresh model and optimizer as every run builds them, the optimizer at the schedule's first lr/momentum."""
    return build_trainable(build_model(model), optimizer_spec(optimizer), engine_settings(trainer), device, lr,
                           momentum)


def train_loop(stepped: Trainable, trainer: TrainerSettings, schedule: Schedule, train_data: DeviceData,
               test_data: DeviceData, tracker: Tracker, checkpointing: Checkpointing = IN_MEMORY,
               resume: dict[str, Any] | None = None) -> LoopResult:
    """``schedule`` (capped at trainer.max_iterations) through the loop on ``stepped``: one SGD step per global batch,
    full test-set evaluation every trainer.eval_every iterations, the trainer's divergence guard."""
    n = schedule.iterations if trainer.max_iterations is None else min(schedule.iterations, trainer.max_iterations)
    settings = LoopSettings(iterations=n, iterations_per_epoch=len(train_data) / trainer.total_batch,
                            batch=trainer.total_batch, eval_every=trainer.eval_every, log_every=trainer.log_every,
                            checkpoint_every=trainer.checkpoint_every or 0, progress=trainer.progress,
                            desc=f"train {schedule.policy}")
    return run_loop(stepped, schedule, classification_step(stepped, train_data, settings.batch),
                    held_out(stepped, test_data, trainer.eval_batch), settings,
                    DivergenceGuard(trainer.divergence_factor), tracker, checkpointing, resume)


def run_training(model: Mapping[str, Any], optimizer: Mapping[str, Any], trainer: TrainerSettings,
                 schedule: Schedule, train_data: DeviceData, test_data: DeviceData, tracker: Tracker,
                 checkpointing: Checkpointing = IN_MEMORY, resume: dict[str, Any] | None = None) -> LoopResult:
    """A training run: ``model`` and ``optimizer`` built at the schedule's first lr/momentum, then ``train_loop``
    (the bench times exactly this)."""
    stepped = trainable(model, optimizer, trainer, train_data.device, schedule.lr_at(0), schedule.momentum_at(0))
    return train_loop(stepped, trainer, schedule, train_data, test_data, tracker, checkpointing, resume)
