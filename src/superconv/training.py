"""The training loop: iteration budget from the schedule, periodic evaluation, divergence guard.

Each iteration writes the schedule's lr and momentum into the optimizer, takes one SGD step on a
device-resident batch and records the loss. Losses stay on the device and are read back every
``trainer.log_every`` iterations, so the hot path has no per-step host sync on a GPU.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from superconv.checkpoint import StopRequested, restore_rng, rng_state, save_checkpoint, stop_signals
from superconv.data.loader import DeviceData
from superconv.distributed import any_rank, barrier, global_mean, is_rank0, rank, world_size
from superconv.engine import DivergenceGuard, Precision, build_training_model, evaluate, set_hyperparameters, sgd_step
from superconv.optim import build_optimizer
from superconv.report.stats import iterations_to_target
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


TRAIN_COLUMNS = METRIC_COLUMNS[:5]  # the per-iteration columns; test_* come from the evaluations


@dataclass
class LoopState:
    """Everything besides model/optimizer that a resumed run needs to continue exactly."""

    iteration: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    eval_s: float = 0.0
    wall_s: float = 0.0
    first_loss: float | None = None

    def to_checkpoint(self) -> dict[str, Any]:
        """The state with its rows as one float64 tensor per column: a list of 80k row dicts took seconds to
        copy and pickle at every checkpoint, the tensors milliseconds (and round-trip every float exactly)."""
        payload = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rows"}
        payload["columns"] = {c: torch.tensor([r[c] for r in self.rows], dtype=torch.float64) for c in TRAIN_COLUMNS}
        return payload

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> LoopState:
        if "columns" not in payload:  # a checkpoint written before the columns format keeps its row dicts
            return cls(**payload)
        columns = [payload["columns"][c].tolist() for c in TRAIN_COLUMNS]
        rows = [{**dict(zip(TRAIN_COLUMNS, values, strict=True)), "test_loss": None, "test_acc": None}
                for values in zip(*columns, strict=True)]
        for row in rows:
            row["iteration"] = int(row["iteration"])
        for done in payload["evaluations"]:
            rows[int(done["iteration"])].update(test_loss=done["test_loss"], test_acc=done["test_acc"])
        return cls(rows=rows, **{k: v for k, v in payload.items() if k != "columns"})


@dataclass(frozen=True)
class LoopSettings:
    """The trainer values the loop reads, copied out of the config once (an OmegaConf read per
    iteration costs more than a LeNet step's bookkeeping)."""

    total_batch: int
    eval_batch: int
    eval_every: int
    log_every: int
    checkpoint_every: int
    progress: bool

    @classmethod
    def from_config(cls, trainer: DictConfig) -> LoopSettings:
        return cls(int(trainer.total_batch), int(trainer.eval_batch), int(trainer.eval_every), int(trainer.log_every),
                   int(trainer.checkpoint_every or 0), bool(trainer.progress))


def train(cfg: DictConfig, train_data: DeviceData, test_data: DeviceData, schedule: Schedule,
          tracker: Tracker, checkpoint_path: Path, resume: dict[str, Any] | None = None,
          fingerprint: str = "") -> TrainResult:
    """Run ``schedule`` (capped at trainer.max_iterations), checkpointing every trainer.checkpoint_every
    iterations and on SIGINT/SIGTERM; continue from ``resume`` (a checkpoint payload) when given.

    Under torchrun every rank runs this loop on its share of each global batch; logged losses are
    averaged over ranks and stop decisions agreed, so all ranks take the same path; rank 0 writes.
    """
    settings = LoopSettings.from_config(cfg.trainer)
    device = train_data.device
    net, model = build_training_model(cfg, device)
    optimizer = build_optimizer(cfg.optimizer, net)
    precision = Precision.for_device(device, cfg.trainer.amp)
    state = LoopState()
    if resume is not None:
        net.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if precision.scaler is not None and "scaler" in resume:
            precision.scaler.load_state_dict(resume["scaler"])
        restore_rng(resume["rng"])
        state = LoopState.from_checkpoint(resume["loop"])
        tracker.resend(resume.get("tracking_unconfirmed", []))
    n = schedule.iterations if cfg.trainer.max_iterations is None else min(schedule.iterations,
                                                                           int(cfg.trainer.max_iterations))
    per_epoch = len(train_data) / settings.total_batch
    rank_, world = rank(), world_size()
    guard = DivergenceGuard(cfg.trainer.divergence_factor)
    guard.first = state.first_loss
    pending: list[tuple[int, float, float, torch.Tensor]] = []
    segment_start = time.perf_counter()

    def checkpoint(next_iteration: int, complete: bool) -> float:
        """Save; return the clock reading up to which ``state.wall_s`` counts (the save itself is timed
        into the next segment, or by the caller at the end)."""
        now = time.perf_counter()
        state.iteration, state.first_loss = next_iteration, guard.first
        state.wall_s += now - segment_start
        unconfirmed = tracker.flush(wait=complete)
        if is_rank0():
            payload = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state(),
                       "loop": state.to_checkpoint(), "complete": complete, "fingerprint": fingerprint,
                       "tracking_run_id": tracker.run_id, "tracking_unconfirmed": unconfirmed}
            if precision.scaler is not None:
                payload["scaler"] = precision.scaler.state_dict()
            save_checkpoint(checkpoint_path, payload)
        barrier()  # no rank exits (and has torchrun stop the others) while rank 0 is still writing
        return now

    bar = tqdm(total=n, initial=state.iteration, desc=f"train {schedule.policy}", mininterval=2.0,
               disable=not (settings.progress and is_rank0()), dynamic_ncols=True)
    model.train()
    with stop_signals() as stop:
        for it in range(state.iteration, n):
            lr, momentum = schedule.lr_at(it), schedule.momentum_at(it)
            set_hyperparameters(optimizer, lr, momentum)
            x, y = train_data.batch(it, settings.total_batch, rank_, world)
            pending.append((it, lr, momentum, sgd_step(model, optimizer, x, y, precision)))
            eval_now = (it + 1) % settings.eval_every == 0 or it == n - 1
            periodic = settings.checkpoint_every and (it + 1) % settings.checkpoint_every == 0
            if not (eval_now or periodic or len(pending) >= settings.log_every):
                continue
            stopping = any_rank(bool(stop), device)  # at flush points only, the same on every rank
            losses = global_mean(torch.stack([p[3] for p in pending]).float()).tolist()
            for (i, lr_i, m_i, _), loss in zip(pending, losses, strict=True):
                state.rows.append({"iteration": i, "epoch": (i + 1) / per_epoch, "lr": lr_i, "momentum": m_i,
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
                result = evaluate(net, test_data, settings.eval_batch, precision=precision)
                state.eval_s += time.perf_counter() - t_eval
                state.rows[-1].update(test_loss=result.loss, test_acc=result.accuracy)
                state.evaluations.append({"iteration": it, "test_loss": result.loss, "test_acc": result.accuracy})
                tracker.log_metrics({"test_loss": result.loss, "test_acc": result.accuracy}, step=it)
            if periodic or stopping:
                segment_start = checkpoint(it + 1, complete=False)
                if stopping:
                    bar.close()
                    raise StopRequested(stop[0] if stop else signal.SIGTERM, it, checkpoint_path)
            elapsed = state.wall_s + time.perf_counter() - segment_start - state.eval_s
            bar.set_postfix(lr=f"{lr:.4g}", loss=f"{losses[-1]:.4f}",
                            acc=f"{state.evaluations[-1]['test_acc']:.2f}" if state.evaluations else "-",
                            img_s=f"{(it + 1) * settings.total_batch / max(elapsed, 1e-9):.0f}")
    bar.close()
    state.wall_s += time.perf_counter() - checkpoint(len(state.rows), complete=True)  # the final save counts
    return TrainResult(state.rows, net, optimizer, len(state.rows), guard.reason, state.wall_s, state.eval_s,
                       state.evaluations)


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
        "target_acc": cfg.target_acc,
        "iterations_to_target": (None if cfg.target_acc is None or not evals else
                                 iterations_to_target(pd.DataFrame(evals), float(cfg.target_acc))),
        "diverged": result.diverged is not None,
        "divergence_reason": result.diverged,
    }
