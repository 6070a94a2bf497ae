"""Every CIFAR paper preset composes with each of its recipe's policies, validates, builds the published
schedule and instantiates its model (no data needed)."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from superconv.config import compose_stage_config, iterations_per_epoch, validate_train
from superconv.models import count_parameters
from superconv.schedules import Schedule, build_schedule

PRESETS = {
    "paper_cifar10_resnet56": ["triangular", "multistep"],
    "paper_cifar10_resnet56_1cycle": ["one_cycle", "torch_one_cycle", "fastai_one_cycle"],
    "paper_cifar100_resnet56": ["one_cycle", "multistep"],
    "paper_cifar10_wrn": ["one_cycle", "multistep"],
    "paper_cifar10_densenet": ["one_cycle", "multistep"],
}


def _compose(preset: str, policy: str) -> tuple[DictConfig, Schedule]:
    cfg = compose_stage_config("train", [f"experiment={preset}", f"schedule={policy}"])
    validate_train(cfg)
    return cfg, build_schedule(cfg.schedule, iterations_per_epoch(cfg))


def test_every_preset_lists_all_its_recipes() -> None:
    for preset, policies in PRESETS.items():
        cfg = compose_stage_config("train", [f"experiment={preset}"])
        assert sorted(cfg.recipe) == sorted(policies), preset


@pytest.mark.parametrize(("preset", "policy"), [(p, s) for p, policies in PRESETS.items() for s in policies])
def test_preset_composes_and_instantiates_its_model(preset: str, policy: str) -> None:
    cfg, schedule = _compose(preset, policy)
    assert schedule.policy == policy
    model = instantiate(cfg.model)
    assert model.head[-1].out_features == cfg.dataset.num_classes


@pytest.mark.parametrize(("policy", "maf"), [("triangular", 0.95), ("multistep", 0.999)])
def test_fig1a_runs_at_published_iterations_and_bn_maf(policy: str, maf: float) -> None:
    cfg, schedule = _compose("paper_cifar10_resnet56", policy)
    model = instantiate(cfg.model)
    assert count_parameters(model) == 808_682
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(momenta) == 55 and all(m == pytest.approx(1 - maf) for m in momenta)
    assert (cfg.trainer.total_batch, cfg.optimizer.weight_decay, cfg.optimizer.momentum) == (1000, 1e-4, 0.9)
    if policy == "triangular":
        assert schedule.iterations == 10_000
        assert schedule.lr_at(0) == pytest.approx(0.1)
        assert schedule.lr_at(5000) == pytest.approx(3.0)
        assert schedule.lr_at(9900) == pytest.approx(0.158)  # logged in clr3SS5kFig1a
    else:
        assert schedule.iterations == 80_000
        assert (schedule.lr_at(49_999), schedule.lr_at(50_000), schedule.lr_at(70_000)) == pytest.approx(
            (0.35, 0.035, 0.0035))


def test_resnet56_1cycle_matches_the_authors_log() -> None:
    cfg, schedule = _compose("paper_cifar10_resnet56_1cycle", "one_cycle")
    assert schedule.iterations == 9277
    assert schedule.lr_at(4003) == pytest.approx(0.8)
    assert schedule.momentum_at(4003) == pytest.approx(0.85)
    assert schedule.lr_at(9000) == pytest.approx(8e-5)  # logged tail base/1000
    model = instantiate(cfg.model)
    assert count_parameters(model) == 865_578 and not model.stages[0].relu_after_add
    assert (cfg.trainer.total_batch, cfg.optimizer.nesterov) == (512, True)


def test_resnet56_1cycle_torch_variant_peaks_at_the_authors_stepsize() -> None:
    _, schedule = _compose("paper_cifar10_resnet56_1cycle", "torch_one_cycle")
    assert schedule.lr_at(0) == pytest.approx(0.08)
    assert schedule.lr_at(4003) == pytest.approx(0.8, rel=1e-4)
    assert schedule.lr_at(8006) == pytest.approx(0.08, rel=1e-3)
    assert schedule.lr_at(9276) == pytest.approx(8e-5)


def test_cifar100_step_policy_drops_twice_at_fifteen_sixteenths() -> None:
    cfg, schedule = _compose("paper_cifar100_resnet56", "multistep")
    per_epoch = 50000 / 512
    assert schedule.iterations == round(100 * per_epoch)
    assert schedule.lr_at(round(87.5 * per_epoch)) == pytest.approx(0.1 * 0.316**3)
    assert schedule.lr_at(round(93.75 * per_epoch)) == pytest.approx(0.1 * 0.316**5)
    assert cfg.dataset.num_classes == 100


def test_wrn_1cycle_lengths_and_widths() -> None:
    cfg, schedule = _compose("paper_cifar10_wrn", "one_cycle")
    assert schedule.iterations == 4882 and schedule.lr_at(2246) == pytest.approx(1.0)
    assert count_parameters(instantiate(cfg.model)) == 5_903_626


@pytest.mark.parametrize(("policy", "weight_decay"), [("one_cycle", 1e-6), ("multistep", 1e-4)])
def test_densenet_weight_decay_follows_the_run(policy: str, weight_decay: float) -> None:
    cfg, schedule = _compose("paper_cifar10_densenet", policy)
    assert cfg.optimizer.weight_decay == weight_decay
    if policy == "one_cycle":
        assert schedule.iterations == 4882 and schedule.lr_at(2148) == pytest.approx(4.0)
    assert count_parameters(instantiate(cfg.model)) == 1_019_722


def test_range_test_stage_composes_with_the_fig2b_preset() -> None:
    cfg = compose_stage_config("range_test", ["experiment=paper_cifar10_resnet56"])
    assert (cfg.range_test.end_lr, cfg.range_test.iterations) == (3.0, 20000)
    assert cfg.model.bn_momentum.moving_average_fraction == 0.95
