"""Schedules at every boundary, against the authors' logged values and PyTorch's CyclicLR."""

from __future__ import annotations

import pytest
import torch

from superconv.core.schedules import (
    build_schedule,
    caffe_cyclical_momentum,
    clr_lr,
    exp_lr,
    fastai_combined_cos,
    inv_lr,
    multistep_lr,
    one_cycle_lr,
    step_lr,
    torch_one_cycle,
)


@pytest.mark.parametrize(
    ("it", "expected"),
    [(0, 0.01), (293, 0.01 + 0.09 * 293 / 586), (586, 0.1), (879, 0.05), (1171, 0.1 / 586), (1172, 1e-5),
     (1405, 1e-5)],
)
def test_one_cycle_boundaries(it: int, expected: float) -> None:
    assert one_cycle_lr(it, 0.01, 0.1, 586, 1000.0) == pytest.approx(expected)


def test_one_cycle_matches_authors_log() -> None:
    # lnsmith54/hyperParam1 Cifar/results c100Resnet56... log: it 3500, S 3417, max 1.2 -> logged lr 1.17085
    # (docs/sources.md)
    assert one_cycle_lr(3500, 0.1, 1.2, 3417, 1000.0) == pytest.approx(1.17085, abs=1e-5)
    # base 0.08 -> logged tail 8e-5
    assert one_cycle_lr(9000, 0.08, 0.8, 4003, 1000.0) == pytest.approx(8e-5)


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
        clr_lr(0, 0.1, 1.0, 10, "sawtooth", 1.0)


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
    proc = cli(["python", "-m", "superconv.stages.print_schedule", "experiment=paper_mnist_lenet",
                "schedule=one_cycle"])
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "iteration,lr,momentum"
    assert len(lines) == 1 + 1406
    it, lr, momentum = lines[1 + 586].split(",")
    assert (int(it), float(lr), float(momentum)) == (586, pytest.approx(0.1), pytest.approx(0.8))
    inv = cli(["python", "-m", "superconv.stages.print_schedule", "experiment=paper_mnist_lenet", "schedule=inv"])
    assert len(inv.stdout.strip().splitlines()) == 1 + 10000


def test_exp_is_caffe_exp() -> None:
    assert exp_lr(0, 0.01, 0.9999) == 0.01
    assert exp_lr(1000, 0.01, 0.9999) == pytest.approx(0.01 * 0.9999**1000)


TORCH_ONE_CYCLE = {"policy": "torch_one_cycle", "unit": "iteration", "max_lr": 0.8, "pct_start": 0.3,
                   "div_factor": 25.0, "final_div_factor": 1e4, "cycle_momentum": True, "momentum": 0.95,
                   "momentum_min": 0.85}


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
@pytest.mark.parametrize("total", [1000, 997])
def test_torch_one_cycle_equals_onecyclelr_every_iteration(three_phase: bool, anneal: str, total: int) -> None:
    cfg = {**TORCH_ONE_CYCLE, "length": total, "anneal_strategy": anneal, "three_phase": three_phase}
    schedule = build_schedule(cfg, 1.0)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.8, total_steps=total, anneal_strategy=anneal,
                                                three_phase=three_phase)
    for it in range(total):
        group = opt.param_groups[0]
        assert schedule.lr_at(it) == pytest.approx(group["lr"], rel=1e-12, abs=1e-15), it
        assert schedule.momentum_at(it) == pytest.approx(group["momentum"], rel=1e-12), it
        opt.step()
        sched.step()


def test_torch_one_cycle_phase_ends_follow_pytorch_arithmetic() -> None:
    # two phases, 1000 steps, pct 0.3: the peak is at step float(0.3*1000) - 1 = 299, the end at 999
    assert torch_one_cycle(299, 1000, 0.3, 0.032, 0.8, 3.2e-6, "cos", False) == pytest.approx(0.8)
    assert torch_one_cycle(999, 1000, 0.3, 0.032, 0.8, 3.2e-6, "cos", False) == pytest.approx(3.2e-6)
    # three phases: back at the start value at 2*300 - 2 = 598
    assert torch_one_cycle(598, 1000, 0.3, 0.032, 0.8, 3.2e-6, "linear", True) == pytest.approx(0.032)


def test_torch_one_cycle_without_cycle_momentum_keeps_momentum() -> None:
    cfg = {**TORCH_ONE_CYCLE, "length": 100, "anneal_strategy": "cos", "three_phase": False, "cycle_momentum": False}
    schedule = build_schedule(cfg, 1.0)
    assert {schedule.momentum_at(it) for it in range(100)} == {0.95}


def test_torch_one_cycle_rejects_unknown_anneal() -> None:
    with pytest.raises(ValueError, match="anneal_strategy"):
        torch_one_cycle(0, 10, 0.3, 0.1, 1.0, 0.01, "step", False)


FASTAI = {"policy": "fastai_one_cycle", "unit": "iteration", "length": 1000, "max_lr": 0.5, "div": 25.0,
          "div_final": 1e5, "pct_start": 0.25, "momentum": 0.95, "momentum_min": 0.85}


def test_fastai_one_cycle_boundaries() -> None:
    schedule = build_schedule(FASTAI, 1.0)
    assert schedule.iterations == 1000
    assert schedule.lr_at(0) == pytest.approx(0.5 / 25)
    assert schedule.momentum_at(0) == pytest.approx(0.95)
    assert schedule.lr_at(250) == pytest.approx(0.5)
    assert schedule.momentum_at(250) == pytest.approx(0.85)
    # fastai's pos = train_iter / n_iter reaches 1 one step after the last iteration
    assert schedule.lr_at(1000) == pytest.approx(0.5 / 1e5)
    assert schedule.momentum_at(1000) == pytest.approx(0.95)
    assert 0.5 / 1e5 < schedule.lr_at(999) < 1e-5
    lrs = [lr for _, lr, _ in schedule.table()]
    assert max(lrs) == lrs[250]
    assert all(a <= b for a, b in zip(lrs[:250], lrs[1:251], strict=True))
    assert all(a >= b for a, b in zip(lrs[250:-1], lrs[251:], strict=True))


def test_fastai_cosine_midpoints() -> None:
    # halfway through each phase the cosine is at the mean of its ends
    assert fastai_combined_cos(125, 1000, 0.25, 0.02, 0.5, 5e-6) == pytest.approx((0.02 + 0.5) / 2)
    assert fastai_combined_cos(625, 1000, 0.25, 0.02, 0.5, 5e-6) == pytest.approx((0.5 + 5e-6) / 2)


@pytest.mark.parametrize("policy", ["fastai_one_cycle", "torch_one_cycle", "exp"])
def test_new_templates_compose_with_recipe_values(policy: str) -> None:
    from superconv.stages.compose import compose_stage_config
    from superconv.stages.rules import iterations_per_epoch, validate_train

    recipe = {"fastai_one_cycle": "{unit: iteration, length: 400, max_lr: 0.5}",
              "torch_one_cycle": "{unit: iteration, length: 400, max_lr: 0.5, three_phase: true}",
              "exp": "{unit: iteration, length: 400, base_lr: 0.1, gamma: 0.999, momentum: 0.9}"}[policy]
    cfg = compose_stage_config("train", ["experiment=paper_mnist_lenet", f"schedule={policy}",
                                         f"++recipe.{policy}={recipe}"])
    validate_train(cfg)
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    assert schedule.iterations == 400
    if policy == "torch_one_cycle":
        assert (cfg.schedule.pct_start, cfg.schedule.div_factor, cfg.schedule.three_phase) == (0.3, 25.0, True)
        assert schedule.lr_at(2 * 120 - 2) == pytest.approx(0.5 / 25)
    if policy == "fastai_one_cycle":
        assert (cfg.schedule.div, cfg.schedule.div_final, cfg.schedule.pct_start) == (25.0, 1e5, 0.25)


@pytest.mark.parametrize(("override", "message"), [("schedule.pct_start=1.5", "pct_start"),
                                                   ("schedule.anneal_strategy=step", "anneal_strategy"),
                                                   ("schedule.div_factor=0", "div_factor")])
def test_torch_one_cycle_bad_values_name_the_key(override: str, message: str) -> None:
    from superconv.common.errors import ConfigError
    from superconv.stages.compose import compose_stage_config
    from superconv.stages.rules import validate_train

    cfg = compose_stage_config("train", ["experiment=paper_mnist_lenet", "schedule=torch_one_cycle",
                                         "++recipe.torch_one_cycle={unit: iteration, length: 400, max_lr: 0.5}",
                                         override])
    with pytest.raises(ConfigError, match=message):
        validate_train(cfg)
