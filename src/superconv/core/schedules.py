"""Learning-rate and momentum schedules as pure functions of the iteration.

Each policy is written the way the authors ran it in Caffe, so a schedule can be plotted, printed and
unit-tested without training anything: the 1cycle rule as the lr/momentum lines of lnsmith54/hyperParam1's
logs show it (linear up, linear down to 0, then base/1000) with the cyclical momentum of Smith 2018,
arXiv:1803.09820, Appendix A.2; ``triangular``/``triangular2``/``exp_range`` as in Smith, Cyclical Learning
Rates, arXiv:1506.01186 (Caffe code: lnsmith54/exploring-loss); ``multistep``/``step``/``inv``/``exp`` as
Caffe's solver policies. fastai's ``fit_one_cycle`` and PyTorch's ``OneCycleLR`` are reproduced from their
source (fastai/callback/schedule.py, torch/optim/lr_scheduler.py). Sources: docs/sources.md. The training loop writes
``lr`` and ``momentum`` into the optimizer's param groups each iteration from a :class:`Schedule`.

The LR range test's ramp is a schedule too (:func:`range_ramp`), so training and the range test run the
same loop. ``python -m superconv.stages.print_schedule experiment=... schedule=...`` prints one as CSV.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from superconv.core.choices import POLICIES

LrFn = Callable[[int], float]


def one_cycle_lr(it: int, min_lr: float, max_lr: float, stepsize: int, tail_div: float) -> float:
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
    it: int, min_lr: float, max_lr: float, stepsize: int, mode: str, gamma: float
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


def exp_lr(it: int, base_lr: float, gamma: float) -> float:
    """Caffe ``exp``: base_lr * gamma^it (the CLR paper's exponential baseline)."""
    return base_lr * gamma**it


def range_lr(it: int, iterations: int, start: float, end: float, protocol: str) -> float:
    """The range test's LR at ``it``: linear (Smith) or exponential (fastai) from start to end inclusive."""
    frac = it / max(iterations - 1, 1)
    if protocol == "linear":
        return start + (end - start) * frac
    return start * (end / start) ** frac


def _fastai_cos(start: float, end: float, pos: float) -> float:
    """fastai ``SchedCos``: half a cosine from start (pos 0) to end (pos 1)."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def fastai_combined_cos(it: int, total: int, pct_start: float, start: float, middle: float, end: float) -> float:
    """fastai ``combined_cos``: cosine start->middle over pct_start of the run, then middle->end.

    fastai evaluates it at ``pos = train_iter / n_iter``, so ``end`` is reached at ``it == total``, one
    step after the last training iteration, exactly as ``fit_one_cycle`` does.
    """
    pos = it / total
    if pos < pct_start:
        return _fastai_cos(start, middle, pos / pct_start)
    return _fastai_cos(middle, end, (pos - pct_start) / (1 - pct_start))


def _torch_anneal(start: float, end: float, pct: float, anneal: str) -> float:
    """OneCycleLR's ``_annealing_cos`` / ``_annealing_linear``, with the same float operations."""
    if anneal == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    if anneal == "linear":
        return (end - start) * pct + start
    raise ValueError(f"unknown anneal_strategy {anneal!r}: use cos or linear")


def torch_one_cycle(it: int, total: int, pct_start: float, start: float, peak: float, end: float,
                    anneal: str, three_phase: bool) -> float:
    """``torch.optim.lr_scheduler.OneCycleLR`` at step ``it`` of ``total``, for lr or momentum.

    lr: (start, peak, end) = (max/div_factor, max, max/div_factor/final_div_factor); momentum: (max_m,
    base_m, max_m). Phase ends are PyTorch's: ``pct_start*total - 1``, ``2*pct_start*total - 2`` (three
    phases: back to start, then start->end) and ``total - 1``.
    """
    if three_phase:
        phases = [(float(pct_start * total) - 1, start, peak), (float(2 * pct_start * total) - 2, peak, start),
                  (total - 1, start, end)]
    else:
        phases = [(float(pct_start * total) - 1, start, peak), (total - 1, peak, end)]
    phase_start = 0.0
    for phase_end, a, b in phases[:-1]:
        if it <= phase_end:
            return _torch_anneal(a, b, (it - phase_start) / (phase_end - phase_start), anneal)
        phase_start = phase_end
    phase_end, a, b = phases[-1]
    return _torch_anneal(a, b, (it - phase_start) / (phase_end - phase_start), anneal)


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


def _torch_one_cycle_fns(cfg: Mapping[str, Any], total: int) -> tuple[LrFn, LrFn]:
    """lr and momentum of OneCycleLR; momentum stays at ``momentum`` when cycle_momentum is false."""
    max_lr = float(cfg["max_lr"])
    initial_lr = max_lr / float(cfg["div_factor"])
    common = {"total": total, "pct_start": float(cfg["pct_start"]), "anneal": cfg["anneal_strategy"],
              "three_phase": bool(cfg["three_phase"])}
    lr_fn = partial(torch_one_cycle, start=initial_lr, peak=max_lr, end=initial_lr / float(cfg["final_div_factor"]),
                    **common)
    m_max = float(cfg["momentum"])
    if not cfg["cycle_momentum"]:
        return lr_fn, partial(_constant, value=m_max)
    return lr_fn, partial(torch_one_cycle, start=m_max, peak=float(cfg["momentum_min"]), end=m_max, **common)


def build_schedule(cfg: Mapping[str, Any], iterations_per_epoch: float) -> Schedule:
    """Bind a schedule config (``conf/schedule/*.yaml``) to iteration counts."""
    policy = cfg["policy"]
    unit = cfg["unit"]

    def iters(key: str) -> int:
        return to_iterations(cfg[key], unit, iterations_per_epoch)

    total = iters("length")
    stepsize = iters("stepsize") if cfg.get("stepsize") is not None else None
    lr_fn: LrFn
    momentum_fn: LrFn | None = None
    if policy == "one_cycle":
        lr_fn = partial(one_cycle_lr, min_lr=float(cfg["min_lr"]), max_lr=float(cfg["max_lr"]),
                        stepsize=stepsize, tail_div=float(cfg["tail_div"]))
    elif policy in ("triangular", "triangular2", "exp_range"):
        lr_fn = partial(clr_lr, min_lr=float(cfg["min_lr"]), max_lr=float(cfg["max_lr"]), stepsize=stepsize,
                        mode=policy, gamma=float(cfg["gamma"]))
    elif policy == "inv":
        lr_fn = partial(inv_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]),
                        power=float(cfg["power"]))
    elif policy == "multistep":
        steps = [to_iterations(s, unit, iterations_per_epoch) for s in cfg["steps"]]
        lr_fn = partial(multistep_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]), steps=steps)
    elif policy == "step":
        lr_fn = partial(step_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]), stepsize=stepsize)
    elif policy == "exp":
        lr_fn = partial(exp_lr, base_lr=float(cfg["base_lr"]), gamma=float(cfg["gamma"]))
    elif policy == "fastai_one_cycle":
        lr_max = float(cfg["max_lr"])
        lr_fn = partial(fastai_combined_cos, total=total, pct_start=float(cfg["pct_start"]),
                        start=lr_max / float(cfg["div"]), middle=lr_max, end=lr_max / float(cfg["div_final"]))
        m_max, m_min = float(cfg["momentum"]), float(cfg["momentum_min"])
        momentum_fn = partial(fastai_combined_cos, total=total, pct_start=float(cfg["pct_start"]),
                              start=m_max, middle=m_min, end=m_max)
    elif policy == "torch_one_cycle":
        lr_fn, momentum_fn = _torch_one_cycle_fns(cfg, total)
    elif policy == "constant":
        lr_fn = partial(_constant, value=float(cfg["base_lr"]))
    else:
        raise ValueError(f"schedule.policy={policy!r} is unknown: use one of {', '.join(POLICIES)}")
    if momentum_fn is None:
        period = iters("momentum_period") if cfg.get("momentum_period") is not None else stepsize
        momentum_fn = _momentum_fn(cfg, period)
    return Schedule(policy, total, lr_fn, momentum_fn)


def range_ramp(protocol: str, start_lr: float, end_lr: float, iterations: int, momentum: float) -> Schedule:
    """The LR range test as a schedule: ``range_lr`` over ``iterations`` at constant momentum."""
    return Schedule(f"range_test_{protocol}", iterations,
                    partial(range_lr, iterations=iterations, start=start_lr, end=end_lr, protocol=protocol),
                    partial(_constant, value=momentum))
