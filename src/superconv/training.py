"""The training loop: iteration budget from the schedule, periodic evaluation, divergence guard.

Each iteration writes the schedule's lr and momentum into the optimizer, takes one SGD step on a
device-resident batch and records the loss. Losses stay on the device and are read back every
``trainer.log_every`` iterations, so the hot path has no per-step host sync on a GPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

from superconv.data.loader import DeviceData
from superconv.distributed import is_rank0, rank, world_size
from superconv.engine import DivergenceGuard, evaluate, place_model, set_hyperparameters, sgd_step
from superconv.models import build_model
from superconv.schedules import Schedule
from superconv.tracking import Tracker

METRIC_COLUMNS = ["iteration", "epoch", "lr", "momentum", "train_loss", "test_loss", "test_acc"]


@dataclass
class TrainResult:
    rows: list[dict[str, Any]]
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    iterations: int
    diverged: str | None
    wall_s: float
    eval_s: float
    evaluations: list[dict[str, float]] = field(default_factory=list)


def train(cfg: DictConfig, train_data: DeviceData, test_data: DeviceData, schedule: Schedule,
          tracker: Tracker) -> TrainResult:
    """Run ``schedule`` (capped at trainer.max_iterations) and return the per-iteration records."""
    trainer = cfg.trainer
    model = place_model(build_model(cfg.model), train_data.device, trainer.channels_last)
    optimizer = instantiate(cfg.optimizer)(params=model.parameters())
    n = schedule.iterations if trainer.max_iterations is None else min(schedule.iterations,
                                                                       int(trainer.max_iterations))
    per_epoch = len(train_data) / trainer.total_batch
    guard = DivergenceGuard(trainer.divergence_factor)
    rows: list[dict[str, Any]] = []
    pending: list[tuple[int, float, float, torch.Tensor]] = []
    evaluations: list[dict[str, float]] = []
    eval_s = 0.0
    start = time.perf_counter()
    bar = tqdm(total=n, desc=f"train {schedule.policy}", disable=not (trainer.progress and is_rank0()),
               mininterval=2.0, dynamic_ncols=True)
    model.train()
    for it in range(n):
        lr, momentum = schedule.lr_at(it), schedule.momentum_at(it)
        set_hyperparameters(optimizer, lr, momentum)
        x, y = train_data.batch(it, trainer.total_batch, rank(), world_size())
        pending.append((it, lr, momentum, sgd_step(model, optimizer, x, y)))
        last = it == n - 1
        eval_now = (it + 1) % trainer.eval_every == 0 or last
        if not (eval_now or len(pending) >= trainer.log_every):
            continue
        losses = torch.stack([p[3] for p in pending]).tolist()
        for (i, lr_i, m_i, _), loss in zip(pending, losses, strict=True):
            rows.append({"iteration": i, "epoch": (i + 1) / per_epoch, "lr": lr_i, "momentum": m_i,
                         "train_loss": loss, "test_loss": None, "test_acc": None})
            tracker.log_metrics({"lr": lr_i, "momentum": m_i, "train_loss": loss}, step=i)
            if guard.check(i, loss):
                break
        bar.update(len(pending))
        pending = []
        if guard.reason:
            break
        if eval_now:
            t_eval = time.perf_counter()
            result = evaluate(model, test_data, trainer.eval_batch)
            eval_s += time.perf_counter() - t_eval
            rows[-1].update(test_loss=result.loss, test_acc=result.accuracy)
            evaluations.append({"iteration": it, "test_loss": result.loss, "test_acc": result.accuracy})
            tracker.log_metrics({"test_loss": result.loss, "test_acc": result.accuracy}, step=it)
        elapsed = time.perf_counter() - start - eval_s
        bar.set_postfix(lr=f"{lr:.4g}", loss=f"{losses[-1]:.4f}",
                        acc=f"{evaluations[-1]['test_acc']:.2f}" if evaluations else "-",
                        img_s=f"{(it + 1) * trainer.total_batch / max(elapsed, 1e-9):.0f}")
    bar.close()
    return TrainResult(rows, model, optimizer, len(rows), guard.reason, time.perf_counter() - start, eval_s,
                       evaluations)


def summarize(result: TrainResult, cfg: DictConfig, schedule: Schedule) -> dict[str, Any]:
    """The run's headline numbers for summary.json, the report and MLflow."""
    evals = result.evaluations
    train_s = max(result.wall_s - result.eval_s, 1e-9)
    return {
        "final_test_acc": evals[-1]["test_acc"] if evals else None,
        "final_test_loss": evals[-1]["test_loss"] if evals else None,
        "best_test_acc": max((e["test_acc"] for e in evals), default=None),
        "iterations": result.iterations,
        "schedule_iterations": schedule.iterations,
        "epochs": result.iterations * cfg.trainer.total_batch / cfg.dataset.train_size,
        "wall_s": result.wall_s,
        "train_s": train_s,
        "eval_s": result.eval_s,
        "images_per_s": result.iterations * cfg.trainer.total_batch / train_s,
        "diverged": result.diverged is not None,
        "divergence_reason": result.diverged,
    }
