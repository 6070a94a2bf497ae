"""Schedules at every boundary, against the authors' logged values and PyTorch's CyclicLR."""

from __future__ import annotations

import pytest
import torch

from superconv.schedules import (
    build_schedule,
    caffe_cyclical_momentum,
    clr_lr,
    inv_lr,
    multistep_lr,
    one_cycle_lr,
    step_lr,
)


@pytest.mark.parametrize(
    ("it", "expected"),
    [(0, 0.01), (293, 0.01 + 0.09 * 293 / 586), (586, 0.1), (879, 0.05), (1171, 0.1 / 586), (1172, 1e-5),
     (1405, 1e-5)],
)
def test_one_cycle_boundaries(it: int, expected: float) -> None:
    assert one_cycle_lr(it, 0.01, 0.1, 586) == pytest.approx(expected)


def test_one_cycle_matches_authors_log() -> None:
    # c100Resnet56...: it 3500, S 3417, max 1.2 -> logged lr 1.17085 (published-results.md §2.3)
    assert one_cycle_lr(3500, 0.1, 1.2, 3417) == pytest.approx(1.17085, abs=1e-5)
    # base 0.08 -> logged tail 8e-5
    assert one_cycle_lr(9000, 0.08, 0.8, 4003) == pytest.approx(8e-5)


@pytest.mark.parametrize(
    ("it", "expected"),
    [(0, 0.95), (50, 0.875), (100, 0.8), (150, 0.875), (200, 0.95), (300, 0.875), (400, 0.95),
     (500, 0.95 - 0.15 / 4)],
)
def test_caffe_cyclical_momentum_half_amplitude_repeats(it: int, expected: float) -> None:
    assert caffe_cyclical_momentum(it, 0.95, 0.8, 100) == pytest.approx(expected)


def test_inv_matches_caffe_formula() -> None:
    assert inv_lr(0, 0.01, 1e-4, 0.75) == 0.01
    assert inv_lr(10000, 0.01, 1e-4, 0.75) == pytest.approx(0.01 * 2**-0.75)


def test_multistep_and_step() -> None:
    steps = [50000, 70000]
    assert multistep_lr(49999, 0.35, 0.1, steps) == 0.35
    assert multistep_lr(50000, 0.35, 0.1, steps) == pytest.approx(0.035)
    assert multistep_lr(70000, 0.35, 0.1, steps) == pytest.approx(0.0035)
    assert step_lr(2499, 0.01, 0.316, 2500) == 0.01
    assert step_lr(5000, 0.01, 0.316, 2500) == pytest.approx(0.01 * 0.316**2)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_clr_equals_torch_cycliclr_every_iteration(mode: str) -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    gamma = 0.999
    sched = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.1, max_lr=3.0, step_size_up=50, mode=mode,
                                              gamma=gamma, cycle_momentum=False)
    for it in range(400):
        assert clr_lr(it, 0.1, 3.0, 50, mode, gamma) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_clr_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown CLR mode"):
        clr_lr(0, 0.1, 1.0, 10, "sawtooth")


def test_build_mnist_one_cycle_in_iterations() -> None:
    cfg = {"policy": "one_cycle", "unit": "epoch", "length": 12, "min_lr": 0.01, "max_lr": 0.1, "stepsize": 5,
           "tail_div": 1000, "momentum": 0.95, "momentum_min": 0.8, "momentum_period": None}
    schedule = build_schedule(cfg, 60000 / 512)
    assert schedule.iterations == 1406
    assert schedule.lr_at(586) == pytest.approx(0.1)
    assert schedule.momentum_at(586) == pytest.approx(0.8)
    assert schedule.momentum_at(1172) == pytest.approx(0.95)
    assert schedule.lr_at(1300) == pytest.approx(1e-5)
    assert len(schedule.table()) == 1406


def test_unknown_policy_names_the_choices() -> None:
    with pytest.raises(ValueError, match="one_cycle"):
        build_schedule({"policy": "cosine", "unit": "iteration", "length": 10, "momentum": 0.9}, 1.0)


def test_schedule_cli_prints_the_whole_schedule(cli) -> None:
    proc = cli(["python", "-m", "superconv.schedules", "experiment=paper_mnist_lenet", "schedule=one_cycle"])
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "iteration,lr,momentum"
    assert len(lines) == 1 + 1406
    it, lr, momentum = lines[1 + 586].split(",")
    assert (int(it), float(lr), float(momentum)) == (586, pytest.approx(0.1), pytest.approx(0.8))
    inv = cli(["python", "-m", "superconv.schedules", "experiment=paper_mnist_lenet", "schedule=inv"])
    assert len(inv.stdout.strip().splitlines()) == 1 + 10000
