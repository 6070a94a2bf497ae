"""The one loop that training runs and LR range tests both drive.

Each iteration writes the schedule's lr and momentum into the optimizer, takes one step (a closure over
the data) and keeps the loss on the device. Every ``log_every`` iterations, at each evaluation and at
each checkpoint the losses are read back at once (no per-step host sync on a GPU), handed in order to a
:class:`Monitor` (training's divergence guard, the range test's smoothing and stop rules), sent to
MLflow and shown on the progress bar. Checkpoints, SIGINT/SIGTERM handling and resume live here only,
so a killed range test resumes bit-identical exactly as a killed training run does.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from superconv.common.errors import StopRequested
from superconv.common.tracking import Tracker
from superconv.core.checkpoint import restore_rng, rng_state, save_checkpoint, stop_signals
from superconv.core.distributed import any_rank, barrier, global_mean, is_rank0
from superconv.core.engine import Evaluation, Trainable, set_hyperparameters
from superconv.core.schedules import Schedule

TRAIN_COLUMNS = ("iteration", "epoch", "lr", "momentum", "train_loss")  # one value per iteration
EVAL_COLUMNS = ("test_loss", "test_acc")  # at the evaluated iterations only

Step = Callable[[int], torch.Tensor]  # iteration -> this rank's detached loss on global batch ``iteration``
Evaluate = Callable[[], Evaluation]


class Monitor(Protocol):
    """Reads every recorded loss in order: returns the row's extra columns and sets ``reason`` to stop."""

    columns: tuple[str, ...]
    reason: str | None

    def observe(self, iteration: int, loss: float) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class DivergenceGuard:
    """Training's monitor: stops a run whose loss is not finite or has grown ``factor`` x above its first value."""

    columns: tuple[str, ...] = ()

    def __init__(self, factor: float | None) -> None:
        self.factor = factor
        self.first: float | None = None
        self.reason: str | None = None

    def observe(self, iteration: int, loss: float) -> dict[str, float]:
        if not math.isfinite(loss):
            self.reason = f"loss is {loss} at iteration {iteration}"
        elif self.first is None:
            self.first = loss
        elif self.factor and loss > self.factor * self.first:
            self.reason = (f"loss {loss:.4g} at iteration {iteration} exceeds {self.factor}x "
                           f"the first ({self.first:.4g})")
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"first": self.first}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first = state["first"]


@dataclass
class LoopState:
    """Everything besides model/optimizer that a resumed run needs to continue exactly."""

    iteration: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, float]] = field(default_factory=list)
    eval_s: float = 0.0
    wall_s: float = 0.0
    monitor: dict[str, Any] = field(default_factory=dict)

    def to_checkpoint(self, columns: tuple[str, ...]) -> dict[str, Any]:
        """The state with its rows as one float64 tensor per column: a list of 80k row dicts took seconds to
        copy and pickle at every checkpoint, the tensors milliseconds (and round-trip every float exactly)."""
        payload = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rows"}
        payload["columns"] = {c: torch.tensor([r[c] for r in self.rows], dtype=torch.float64) for c in columns}
        return payload

    @classmethod
    def from_checkpoint(cls, payload: dict[str, Any]) -> LoopState:
        names = list(payload["columns"])
        columns = [payload["columns"][c].tolist() for c in names]
        rows = [{**dict(zip(names, values, strict=True)), "test_loss": None, "test_acc": None}
                for values in zip(*columns, strict=True)]
        for row in rows:
            row["iteration"] = int(row["iteration"])
        for done in payload["evaluations"]:
            rows[int(done["iteration"])].update(test_loss=done["test_loss"], test_acc=done["test_acc"])
        return cls(rows=rows, **{k: v for k, v in payload.items() if k != "columns"})


@dataclass(frozen=True)
class LoopSettings:
    """The loop's plain values, copied out of the config once (an OmegaConf read per iteration costs more
    than a LeNet step's bookkeeping)."""

    iterations: int  # the schedule's budget, or fewer (trainer.max_iterations)
    iterations_per_epoch: float
    batch: int  # images per iteration over all ranks (the progress bar's images/s)
    eval_every: int | None  # None: never evaluate
    log_every: int
    checkpoint_every: int  # 0: only on signals and at the end
    progress: bool
    desc: str


@dataclass(frozen=True)
class LoopResult:
    rows: list[dict[str, Any]]
    evaluations: list[dict[str, float]]
    stop_reason: str | None  # the monitor's, when it stopped the loop
    wall_s: float  # the loop's time, checkpoint saves (the final one too) and evaluations included
    eval_s: float

    @property
    def iterations(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Checkpointing:
    """Where the loop saves (None: never, for in-memory use) and the run identity a resume must match (JSON)."""

    path: Path | None = None
    identity: str = "{}"


IN_MEMORY = Checkpointing()  # no checkpoint file (library use, tests)


def run_loop(trainable: Trainable, schedule: Schedule, step: Step, evaluate: Evaluate | None,
             settings: LoopSettings, monitor: Monitor, tracker: Tracker, checkpointing: Checkpointing = IN_MEMORY,
             resume: dict[str, Any] | None = None) -> LoopResult:
    """Run ``schedule`` for ``settings.iterations``, checkpointing every ``checkpoint_every`` iterations and
    on SIGINT/SIGTERM; continue from ``resume`` (a checkpoint payload) when given.

    Under torchrun every rank runs this loop on its share of each global batch; losses are averaged over
    ranks before the monitor sees them, so all ranks stop at the same row; rank 0 writes.
    """
    n, every = settings.iterations, settings.eval_every
    device = next(trainable.model.parameters()).device
    columns = TRAIN_COLUMNS + tuple(monitor.columns)
    state = LoopState()
    if resume is not None:
        trainable.load_state_dict(resume)
        restore_rng(resume["rng"])
        state = LoopState.from_checkpoint(resume["loop"])
        monitor.load_state_dict(state.monitor)
        tracker.resend(resume.get("tracking_unconfirmed", []))
    pending: list[tuple[int, float, float, torch.Tensor]] = []
    segment_start = time.perf_counter()

    def checkpoint(next_iteration: int, complete: bool) -> float:
        """Flush MLflow and save; return the clock reading up to which ``state.wall_s`` counts (the save is
        timed into the next segment, or by the caller at the end)."""
        now = time.perf_counter()
        state.iteration, state.monitor = next_iteration, monitor.state_dict()
        state.wall_s += now - segment_start
        unconfirmed = tracker.flush(wait=complete)
        if is_rank0() and checkpointing.path is not None:
            payload = {**trainable.state_dict(), "rng": rng_state(), "loop": state.to_checkpoint(columns),
                       "complete": complete, "identity": checkpointing.identity,
                       "tracking_run_id": tracker.run_id, "tracking_unconfirmed": unconfirmed}
            save_checkpoint(checkpointing.path, payload)
        barrier()  # no rank exits (and has torchrun stop the others) while rank 0 is still writing
        return now

    bar = tqdm(total=n, initial=state.iteration, desc=settings.desc, mininterval=2.0,
               disable=not (settings.progress and is_rank0()), dynamic_ncols=True)
    trainable.step_model.train()
    with stop_signals() as stop:
        for it in range(state.iteration, n):
            lr, momentum = schedule.lr_at(it), schedule.momentum_at(it)
            set_hyperparameters(trainable.optimizer, lr, momentum)
            pending.append((it, lr, momentum, step(it)))
            eval_now = every is not None and ((it + 1) % every == 0 or it == n - 1)
            periodic = settings.checkpoint_every and (it + 1) % settings.checkpoint_every == 0
            if not (eval_now or periodic or len(pending) >= settings.log_every):
                continue
            stopping = any_rank(bool(stop), device)  # at flush points only, the same on every rank
            losses = global_mean(torch.stack([p[3] for p in pending]).float()).tolist()
            for (i, lr_i, m_i, _), loss in zip(pending, losses, strict=True):
                row = {"iteration": i, "epoch": (i + 1) / settings.iterations_per_epoch, "lr": lr_i,
                       "momentum": m_i, "train_loss": loss, **monitor.observe(i, loss)}
                tracker.log_metrics({c: row[c] for c in columns[2:]}, step=i)
                state.rows.append({**row, "test_loss": None, "test_acc": None})
                if monitor.reason:
                    break
            bar.update(len(pending))
            pending = []
            if monitor.reason:
                break
            if eval_now:
                t_eval = time.perf_counter()
                result = evaluate()
                state.eval_s += time.perf_counter() - t_eval
                state.rows[-1].update(test_loss=result.loss, test_acc=result.accuracy)
                state.evaluations.append({"iteration": it, "test_loss": result.loss, "test_acc": result.accuracy})
                tracker.log_metrics({"test_loss": result.loss, "test_acc": result.accuracy}, step=it)
            if periodic or stopping:
                segment_start = checkpoint(it + 1, complete=False)
                if stopping:
                    bar.close()
                    raise StopRequested(stop[0] if stop else signal.SIGTERM, it, checkpointing.path)
            elapsed = state.wall_s + time.perf_counter() - segment_start - state.eval_s
            bar.set_postfix(lr=f"{lr:.4g}", loss=f"{losses[-1]:.4f}",
                            acc=f"{state.evaluations[-1]['test_acc']:.2f}" if state.evaluations else "-",
                            img_s=f"{(it + 1) * settings.batch / max(elapsed, 1e-9):.0f}")
    bar.close()
    saved_from = checkpoint(len(state.rows), complete=True)
    state.wall_s += time.perf_counter() - saved_from  # the final save counts
    return LoopResult(state.rows, state.evaluations, monitor.reason, state.wall_s, state.eval_s)
