"""Learning-rate and momentum schedules as pure functions of the iteration.

Each policy is written the way the authors ran it in Caffe (published-results.md §2.3, §2.4, §4), so a
schedule can be plotted, printed and unit-tested without training anything. The training loop writes
``lr`` and ``momentum`` into the optimizer's param groups each iteration from a :class:`Schedule`.

``python -m superconv.schedules experiment=... schedule=...`` prints a composed schedule as CSV.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

LrFn = Callable[[int], float]


def one_cycle_lr(it: int, min_lr: float, max_lr: float, stepsize: int, tail_div: float = 1000.0) -> float:
    """Smith's Caffe 1cycle: linear min->max over S, linear max->0 over S, then min/tail_div."""
    if it <= stepsize:
        return min_lr + (max_lr - min_lr) * it / stepsize
    if it < 2 * stepsize:
        return max_lr * (2 * stepsize - it) / stepsize
    return min_lr / tail_div


def caffe_cyclical_momentum(it: int, momentum_max: float, momentum_min: float, period: int) -> float:
    """Caffe ``cyclical_momentum``: max->min->max over 2P, each later cycle at half the amplitude."""
    cycle = it // (2 * period)
    x = (it - (2 * cycle + 1) * period) / period
    fraction = min(max((1.0 - abs(x)) / 2**cycle, 0.0), 1.0)
    return momentum_max + (momentum_min - momentum_max) * fraction


def clr_lr(
    it: int, min_lr: float, max_lr: float, stepsize: int, mode: str = "triangular", gamma: float = 1.0
) -> float:
    """CLR paper policies: ``triangular``, ``triangular2`` (amplitude halves per cycle), ``exp_range``."""
    cycle = math.floor(1 + it / (2 * stepsize))
    x = abs(it / stepsize - 2 * cycle + 1)
    amplitude = (max_lr - min_lr) * max(0.0, 1.0 - x)
    if mode == "triangular":
        scale = 1.0
    elif mode == "triangular2":
        scale = 1.0 / 2 ** (cycle - 1)
    elif mode == "exp_range":
        scale = gamma**it
    else:
        raise ValueError(f"unknown CLR mode {mode!r}: use triangular, triangular2 or exp_range")
    return min_lr + amplitude * scale


def inv_lr(it: int, base_lr: float, gamma: float, power: float) -> float:
    """Caffe ``inv``: base_lr * (1 + gamma*it)^-power (the stock LeNet solver)."""
    return base_lr * (1.0 + gamma * it) ** (-power)


def multistep_lr(it: int, base_lr: float, gamma: float, steps: Sequence[int]) -> float:
    """Caffe ``multistep``: multiply by gamma at every listed iteration already reached."""
    return base_lr * gamma ** sum(1 for s in steps if it >= s)


def step_lr(it: int, base_lr: float, gamma: float, stepsize: int) -> float:
    """Caffe ``step``: multiply by gamma every ``stepsize`` iterations."""
    return base_lr * gamma ** (it // stepsize)


@dataclass(frozen=True)
class Schedule:
    """A policy bound to its values: lr and momentum for any iteration of a fixed budget."""

    policy: str
    iterations: int
    lr_at: LrFn
    momentum_at: LrFn

    def table(self, iterations: int | None = None) -> list[tuple[int, float, float]]:
        """(iteration, lr, momentum) for every iteration of the budget (or the first ``iterations``)."""
        n = self.iterations if iterations is None else min(iterations, self.iterations)
        return [(it, self.lr_at(it), self.momentum_at(it)) for it in range(n)]


def to_iterations(value: float, unit: str, iterations_per_epoch: float) -> int:
    """Convert a length given in epochs or iterations to whole iterations (Caffe rounds to int)."""
    if unit == "iteration":
        return int(value)
    if unit == "epoch":
        return int(round(value * iterations_per_epoch))
    raise ValueError(f"schedule.unit={unit!r} is not valid: use 'epoch' or 'iteration'")


def _momentum_fn(cfg: Mapping[str, Any], period: int | None) -> LrFn:
    """Constant momentum, or Caffe's cyclical momentum when momentum_min is set."""
    m_max = float(cfg["momentum"])
    m_min = cfg.get("momentum_min")
    if m_min is None:
        return partial(_constant, value=m_max)
    if period is None:
        raise ValueError(f"schedule.policy={cfg['policy']!r} has no stepsize to cycle momentum over")
    return partial(caffe_cyclical_momentum, momentum_max=m_max, momentum_min=float(m_min), period=period)


def _constant(it: int, value: float) -> float:
    return value


POLICIES = ("one_cycle", "triangular", "triangular2", "exp_range", "inv", "multistep", "step", "constant")


def build_schedule(cfg: Mapping[str, Any], iterations_per_epoch: float) -> Schedule:
    """Bind a schedule config (``conf/schedule/*.yaml``) to iteration counts."""
    policy = cfg["policy"]
    unit = cfg["unit"]

    def iters(key: str) -> int:
        return to_iterations(cfg[key], unit, iterations_per_epoch)

    total = iters("length")
    stepsize = iters("stepsize") if cfg.get("stepsize") is not None else None
    lr_fn: LrFn
    if policy == "one_cycle":
        lr_fn = partial(one_cycle_lr, min_lr=float(cfg["min_lr"]), max_lr=float(cfg["max_lr"]),
                        stepsize=stepsize, tail_div=float(cfg["tail_div"]))
    elif policy in ("triangular", "triangular2", "exp_range"):
        lr_fn = partial(clr_lr, min_lr=float(cfg["min_lr"]), max_lr=float(cfg["max_lr"]), stepsize=stepsize,
                        mode=policy, gamma=float(cfg.get("gamma", 1.0)))
    elif policy == "inv":
        lr_fn = partial(inv_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]),
                        power=float(cfg["power"]))
    elif policy == "multistep":
        steps = [to_iterations(s, unit, iterations_per_epoch) for s in cfg["steps"]]
        lr_fn = partial(multistep_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]), steps=steps)
    elif policy == "step":
        lr_fn = partial(step_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]), stepsize=stepsize)
    elif policy == "constant":
        lr_fn = partial(_constant, value=float(cfg["base_lr"]))
    else:
        raise ValueError(f"schedule.policy={policy!r} is unknown: use one of {', '.join(POLICIES)}")
    period = iters("momentum_period") if cfg.get("momentum_period") is not None else stepsize
    return Schedule(policy, total, lr_fn, _momentum_fn(cfg, period))


def main(argv: list[str] | None = None) -> None:
    """Print the composed schedule as CSV: iteration,lr,momentum (no training, no data)."""
    from superconv.config import compose_stage_config, iterations_per_epoch

    cfg = compose_stage_config("train", sys.argv[1:] if argv is None else argv)
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    out = sys.stdout
    out.write("iteration,lr,momentum\n")
    for it, lr, momentum in schedule.table():
        out.write(f"{it},{lr:.10g},{momentum:.10g}\n")


if __name__ == "__main__":
    main()
