"""Every paper preset composes with each of its recipe's policies and each of its rows, validates, builds the
published schedule and instantiates its model with the dataset's classes (no data needed)."""

from __future__ import annotations

import copy
import functools
import re

import pytest
import yaml
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from superconv.core.models import count_parameters
from superconv.core.schedules import Schedule, build_schedule
from superconv.report.reference import load_reference
from superconv.report.tables import matched_row
from superconv.stages.compose import CONF_DIR, PROJECT_ROOT, compose_stage_config, report_names
from superconv.stages.rules import iterations_per_epoch, validate_train

CLR_PC = ["triangular", "multistep"]
PRESETS = {
    "paper_cifar10_resnet56": CLR_PC,
    "paper_cifar10_resnet20": CLR_PC,
    "paper_cifar10_resnet110": CLR_PC,
    "paper_cifar100_resnet56_clr": CLR_PC,
    "paper_cifar10_resnet56_limited": CLR_PC,
    "paper_cifar10_resnet56_stepsize": CLR_PC,
    "paper_cifar10_resnet56_max_lr": CLR_PC,
    "paper_cifar10_resnet56_1cycle": ["one_cycle", "constant", "torch_one_cycle", "fastai_one_cycle"],
    "paper_cifar100_resnet56": ["one_cycle", "multistep"],
    "paper_cifar10_wrn": ["one_cycle", "multistep"],
    "paper_cifar10_densenet": ["one_cycle", "multistep"],
    "paper_mnist_lenet": ["one_cycle", "inv", "step"],
    "paper_mnist_lenet_budgets": ["one_cycle", "inv", "step"],
    "paper_imagenet_resnet50": ["one_cycle", "step"],
    "tiny_digits_lenet": ["one_cycle", "inv", "step"],
}
CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10, "digits": 10, "imagenet_subset": 10}
PER_EPOCH = 50000 / 512  # CIFAR at TBS 512 (paper 2)


@functools.cache
def _composed(preset: str, policy: str | None) -> DictConfig:
    return compose_stage_config("train", [f"experiment={preset}", *([f"schedule={policy}"] if policy else [])])


def _config(preset: str, policy: str | None = None, *overrides: str) -> DictConfig:
    """The composed preset with ``key=value`` overrides set as Hydra sets them (one compose per preset and policy:
    a compose costs ~0.5 s)."""
    cfg = copy.deepcopy(_composed(preset, policy))
    for item in overrides:
        key, value = item.split("=", 1)
        OmegaConf.update(cfg, key, yaml.safe_load(value), merge=True)
    return cfg


def _compose(preset: str, policy: str, *overrides: str) -> tuple[DictConfig, Schedule]:
    cfg = _config(preset, policy, *overrides)
    validate_train(cfg)
    return cfg, build_schedule(cfg.schedule, iterations_per_epoch(cfg))


def _classifier(model: nn.Module) -> nn.Linear:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def test_every_preset_file_is_tested() -> None:
    assert sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")) == sorted(PRESETS)


def test_every_preset_lists_all_its_recipes() -> None:
    for preset, policies in PRESETS.items():
        assert sorted(_config(preset).recipe) == sorted(policies), preset


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.startswith("paper_")])
def test_paper_presets_cite_their_sources_and_set_the_baseline_target(preset: str) -> None:
    text = (CONF_DIR / "experiment" / f"{preset}.yaml").read_text()
    assert re.search(r"arXiv:(1708\.07120|1803\.09820|1506\.01186)", text), "cite the paper (arXiv id)"
    assert re.search(r"\b(Table|Fig) ?\d", text), "cite the table or figure"
    assert "lnsmith54/" in text or "BVLC/caffe" in text, "cite the authors' files"
    assert not re.search(r"published-results|DESIGN\.md|ecosystem\.md|machine\.md|anchors\.md|§", text)
    cfg = _config(preset)
    assert cfg.target_acc is not None, "target_acc: the baseline's published accuracy"
    if cfg.dataset.name.startswith("cifar"):
        # the paper's CIFAR runs used flip only (lnsmith54/super-convergence solvers: mirror: true, crop_size 32
        # on 32x32 images)
        assert cfg.augment.name == "flip", "the paper's CIFAR runs used flip only"


@pytest.mark.parametrize(("preset", "policy"), [(p, s) for p, policies in PRESETS.items() for s in policies])
def test_preset_composes_and_instantiates_its_model(preset: str, policy: str) -> None:
    cfg, schedule = _compose(preset, policy)
    assert schedule.policy == policy
    assert cfg.dataset.num_classes == CLASSES[cfg.dataset.name]
    assert _classifier(instantiate(cfg.model)).out_features == cfg.dataset.num_classes


# (preset, policy, overrides) -> the published (or the log's) iteration count; epoch budgets at TBS 512 are
# Caffe's epochs x 50,000 / 512.
ITERATIONS = [
    *[(p, "triangular", [], 10_000) for p in PRESETS if PRESETS[p] == CLR_PC],
    *[(p, "multistep", [], 80_000) for p in PRESETS if PRESETS[p] == CLR_PC],
    *[("paper_cifar10_resnet56_stepsize", "triangular", [f"row.triangular=ss{ss}"], 2 * ss)
      for ss in (10000, 7500, 5000, 4000, 3000, 2000, 1000)],
    *[("paper_cifar10_resnet56_max_lr", "triangular", [f"recipe.triangular.max_lr={m}"], 10_000)
      for m in (3.5, 2.5, 2.0, 1.5, 1.0)],
    *[("paper_cifar10_resnet56_limited", policy, [f"dataset.train_size={n}"], its)
      for n in (50000, 30000, 20000, 10000) for policy, its in (("triangular", 10_000), ("multistep", 80_000))],
    *[("paper_cifar10_resnet56_1cycle", "one_cycle", [f"row.one_cycle={r}"], 9277)
      for r in ("cm9585", "m95", "m90", "m85")],
    *[("paper_cifar10_resnet56_1cycle", "constant", [f"row.constant={r}"], 9277)
      for r in ("cm9585", "m95", "m90", "m85")],
    ("paper_cifar10_wrn", "one_cycle", ["row.one_cycle=25ep"], round(25 * PER_EPOCH)),
    ("paper_cifar10_wrn", "one_cycle", ["row.one_cycle=50ep"], 4882),
    ("paper_cifar10_wrn", "one_cycle", ["row.one_cycle=100ep"], round(100 * PER_EPOCH)),
    *[("paper_cifar10_wrn", "multistep", [f"row.multistep={e}ep"], round(e * PER_EPOCH)) for e in (100, 200, 400, 800)],
    ("paper_cifar10_densenet", "one_cycle", ["row.one_cycle=50ep"], 4882),
    ("paper_cifar10_densenet", "one_cycle", ["row.one_cycle=75ep"], round(75 * PER_EPOCH)),
    ("paper_cifar10_densenet", "one_cycle", ["row.one_cycle=100ep"], round(100 * PER_EPOCH)),
    ("paper_cifar10_densenet", "one_cycle", ["row.one_cycle=150ep"], 14_648),  # the text's count (line 454)
    *[("paper_cifar10_densenet", "multistep", [f"row.multistep={e}ep"], round(e * PER_EPOCH)) for e in (100, 200, 400)],
    *[("paper_cifar100_resnet56", policy, [f"row.{policy}={e}ep"], round(e * PER_EPOCH))
      for policy, budgets in (("one_cycle", (25, 50, 100)), ("multistep", (100, 200, 400))) for e in budgets],
    ("paper_mnist_lenet", "inv", [], 10_000),
    ("paper_mnist_lenet_budgets", "inv", [], 10_000),
    ("paper_mnist_lenet_budgets", "step", [], 10_000),
    *[("paper_mnist_lenet_budgets", "one_cycle", [f"row.one_cycle={e}ep"], round(e * 60000 / 512))
      for e in (12, 25, 50, 85)],
]


@pytest.mark.parametrize(("preset", "policy", "overrides", "iterations"), ITERATIONS)
def test_rows_run_their_published_iterations(preset: str, policy: str, overrides: list[str], iterations: int) -> None:
    _, schedule = _compose(preset, policy, *overrides)
    assert schedule.iterations == iterations


@functools.cache
def _published_rows() -> tuple[dict, ...]:
    return tuple(yaml.safe_load((PROJECT_ROOT / "src/superconv/report/published.yaml").read_text())["rows"])


def _published(group: str, run: str, train_size: int | None = None, experiment: str | None = None) -> float | None:
    """The published mean of the one row of src/superconv/report/published.yaml that matches."""
    [row] = [r for r in _published_rows() if (r["group"], r["run"], r.get("train_size")) == (group, run, train_size)
             and experiment in (None, r.get("experiment"))]
    return row["mean"]


# (preset, policy, row) -> the report's published row (group, run[, experiment]): the presets' numbers are the report's.
P2 = "paper_cifar10_resnet56_1cycle"  # the report's experiment for paper 2 Table 1's ResNet-56 rows
REPORT_ROWS = {
    **{("paper_cifar10_wrn", "one_cycle", f"{e}ep"): ("table2_wrn", f"one_cycle_{e}ep") for e in (25, 50, 100)},
    **{("paper_cifar10_wrn", "multistep", f"{e}ep"): ("table2_wrn", f"step_{e}ep") for e in (100, 200, 400, 800)},
    **{("paper_cifar10_densenet", "one_cycle", f"{e}ep"): ("table2_densenet", f"one_cycle_{e}ep")
       for e in (50, 75, 100, 150)},
    **{("paper_cifar10_densenet", "multistep", f"{e}ep"): ("table2_densenet", f"step_{e}ep") for e in (100, 200, 400)},
    **{("paper_cifar100_resnet56", "one_cycle", f"{e}ep"): ("table2_cifar100", f"one_cycle_{e}ep")
       for e in (25, 50, 100)},
    **{("paper_cifar100_resnet56", "multistep", f"{e}ep"): ("table2_cifar100", f"step_{e}ep") for e in (100, 200, 400)},
    ("paper_mnist_lenet_budgets", "one_cycle", "12ep"): ("table2_mnist", "one_cycle"),
    **{("paper_mnist_lenet_budgets", "one_cycle", f"{e}ep"): ("table2_mnist", f"one_cycle_{e}ep")
       for e in (25, 50, 85)},
    ("paper_cifar10_resnet56_1cycle", "one_cycle", "cm9585"): ("p2_table1_cm", "one_cycle_cm9585", P2),
    **{("paper_cifar10_resnet56_1cycle", "one_cycle", m): ("p2_table1_cm", f"one_cycle_{m}", P2)
       for m in ("m95", "m90", "m85")},
    **{("paper_cifar10_resnet56_1cycle", "constant", m): ("p2_table1_cm", f"const_{m}", P2)
       for m in ("cm9585", "m95", "m90", "m85")},
}


def test_every_row_maps_to_the_reports_published_value() -> None:
    found = set()
    for preset in PRESETS:
        cfg = _config(preset)
        for policy, rows in cfg.get("rows", {}).items():
            for name, row in rows.items():
                if "published_acc" in row:
                    found.add((preset, policy, name))
                    group, run, *experiment = REPORT_ROWS[(preset, policy, name)]
                    assert row.published_acc == _published(group, run, None, *experiment), (preset, policy, name)
    assert found == set(REPORT_ROWS)


# (preset, policy) with no published row on purpose: sweeps whose values are UNVERIFIED, other libraries' readings
# of a row, the tiny profile. Every other preset, policy and row must land on a row of published.yaml.
NO_PUBLISHED_ROW = {
    *[(p, s) for p in ("paper_cifar10_resnet56_stepsize", "paper_cifar10_resnet56_max_lr") for s in CLR_PC],
    ("paper_cifar10_resnet56_1cycle", "torch_one_cycle"), ("paper_cifar10_resnet56_1cycle", "fastai_one_cycle"),
    *[("tiny_digits_lenet", s) for s in PRESETS["tiny_digits_lenet"]],
}
LIMITED_SIZES = (50000, 40000, 30000, 20000, 10000)


def _named_points() -> list[tuple[str, str, list[str]]]:
    """Every (preset, policy, overrides) a study runs: each row of the preset's rows table, each limited size."""
    points = []
    for preset, policies in PRESETS.items():
        for policy in policies:
            rows = _config(preset).get("rows", {}).get(policy, {})
            variants = [[f"row.{policy}={r}"] for r in rows] or [[]]
            if preset == "paper_cifar10_resnet56_limited":
                variants = [[f"dataset.train_size={n}"] for n in LIMITED_SIZES]
            points += [(preset, policy, v) for v in variants]
    return points


def test_every_preset_run_lands_on_its_published_row() -> None:
    """summary.json's experiment/run (and train_size) find the published row: renaming a preset, a row or a run
    name without published.yaml fails here."""
    ref, keys = load_reference(), set()
    for preset, policy, overrides in _named_points():
        cfg = _config(preset, policy, *overrides)
        experiment, run = report_names(cfg, preset, policy)
        size = cfg.dataset.train_size
        summary = {"experiment": experiment, "base_run": run,
                   "train_size": size if size < cfg.dataset.get("full_train_size", size) else None}
        row = matched_row(ref, summary)
        if (preset, policy) in NO_PUBLISHED_ROW:
            assert row is None, (preset, policy, overrides, row and row["key"])
            continue
        assert row is not None, f"{preset} {policy} {overrides}: no published row {experiment}/{run} @{size}"
        keys.add(row["key"])
    assert len(keys) >= 50  # distinct rows: budgets, momenta and sizes are told apart


def test_baseline_targets_are_the_published_rows() -> None:
    targets = {"paper_cifar10_resnet56": ("p1_fig1a", "pc", None),
               "paper_cifar100_resnet56_clr": ("p1_other_nets", "pc", "paper_cifar100_resnet56_clr"),
               "paper_imagenet_resnet50": ("imagenet", "standard", "paper_imagenet_resnet50"),
               "paper_mnist_lenet_budgets": ("table2_mnist", "inv", None)}
    for preset, (group, run, experiment) in targets.items():
        cfg = _config(preset)
        assert cfg.target_acc == _published(group, run, experiment=experiment), preset
    for size in (40000, 30000, 20000, 10000):
        cfg = _config("paper_cifar10_resnet56_limited", None, f"dataset.train_size={size}")
        assert cfg.target_acc == _published("p1_table1_limited", "pc", size)
    # no verified published value for ResNet-20/110 (paper 1 v1/v2 runs; only the authors' logs Results/*Res20Tab1,
    # *Res110Tab1): the target is the PC run's log
    for preset, log in (("paper_cifar10_resnet20", 88.64), ("paper_cifar10_resnet110", 91.21)):
        assert _config(preset).target_acc == log


@pytest.mark.parametrize(("policy", "maf"), [("triangular", 0.95), ("multistep", 0.999)])
def test_fig1a_runs_at_published_iterations_and_bn_maf(policy: str, maf: float) -> None:
    cfg, schedule = _compose("paper_cifar10_resnet56", policy)
    model = instantiate(cfg.model)
    assert count_parameters(model) == 808_682
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(momenta) == 55 and all(m == pytest.approx(1 - maf) for m in momenta)
    assert (cfg.trainer.total_batch, cfg.optimizer.weight_decay, schedule.momentum_at(0)) == (1000, 1e-4, 0.9)
    if policy == "triangular":
        assert schedule.iterations == 10_000
        assert schedule.lr_at(0) == pytest.approx(0.1)
        assert schedule.lr_at(5000) == pytest.approx(3.0)
        assert schedule.lr_at(9900) == pytest.approx(0.158)  # logged in clr3SS5kFig1a
    else:
        assert schedule.iterations == 80_000
        assert (schedule.lr_at(49_999), schedule.lr_at(50_000), schedule.lr_at(70_000)) == pytest.approx(
            (0.35, 0.035, 0.0035))


@pytest.mark.parametrize(("preset", "parameters", "total_batch"), [
    ("paper_cifar10_resnet20", 224_042, 1000), ("paper_cifar10_resnet110", 1_685_642, 800),
    ("paper_cifar100_resnet56_clr", 808_682 + 90 * 65, 1000)])  # 90 more outputs of 64 weights and a bias
def test_other_paper1_nets_keep_the_fig1a_solvers(preset: str, parameters: int, total_batch: int) -> None:
    cfg, schedule = _compose(preset, "triangular")
    assert count_parameters(instantiate(cfg.model)) == parameters
    assert cfg.trainer.total_batch == total_batch
    assert (schedule.lr_at(5000), cfg.model.bn_momentum.moving_average_fraction) == (pytest.approx(3.0), 0.95)


@pytest.mark.parametrize(("row", "stepsize", "maf"), [("ss10000", 10000, 0.97), ("ss7500", 7500, 0.96),
                                                     ("ss4000", 4000, 0.93), ("ss1000", 1000, 0.80)])
def test_stepsize_rows_shorten_the_bn_average_with_the_cycle(row: str, stepsize: int, maf: float) -> None:
    cfg, schedule = _compose("paper_cifar10_resnet56_stepsize", "triangular", f"row.triangular={row}")
    assert schedule.lr_at(stepsize) == pytest.approx(3.0) and schedule.lr_at(2 * stepsize - 1) < 0.11
    assert cfg.model.bn_momentum.moving_average_fraction == maf
    fixed, _ = _compose("paper_cifar10_resnet56_stepsize", "triangular", f"row.triangular={row}",
                        "recipe.triangular.bn_maf=0.95")  # README Fig 1b: fixed MAF
    assert fixed.model.bn_momentum.moving_average_fraction == 0.95


@pytest.mark.parametrize(("preset", "overrides"), [
    ("paper_cifar10_resnet56_stepsize",
     ["schedule=triangular", "row.triangular=ss2000", "recipe.triangular.bn_maf=0.95"]),
    ("paper_cifar10_resnet56_limited", ["dataset.train_size=10000"]),
    ("paper_cifar10_wrn", ["schedule=multistep", "row.multistep=800ep", "recipe.multistep.base_lr=0.05"])])
def test_command_line_overrides_give_the_tested_configs(preset: str, overrides: list[str]) -> None:
    fixed_out = "out=outputs/train/run"  # the default out= is a timestamp, which may tick between the two composes
    on_the_command_line = compose_stage_config("train", [f"experiment={preset}", *overrides, fixed_out])
    policy = next((o.split("=")[1] for o in overrides if o.startswith("schedule=")), None)
    tested = _config(preset, policy, *[o for o in overrides if not o.startswith("schedule=")], fixed_out)
    assert OmegaConf.to_container(on_the_command_line, resolve=True) == OmegaConf.to_container(tested, resolve=True)


def test_max_lr_sweep_changes_only_the_peak() -> None:
    _, schedule = _compose("paper_cifar10_resnet56_max_lr", "triangular", "recipe.triangular.max_lr=1.5")
    assert (schedule.lr_at(0), schedule.lr_at(5000), schedule.iterations) == (pytest.approx(0.1), 1.5, 10_000)


def test_limited_data_uses_its_own_prepared_subset() -> None:
    cfg, _ = _compose("paper_cifar10_resnet56_limited", "triangular")
    assert (cfg.dataset.train_size, cfg.dataset.prepared_name, cfg.target_acc) == (40000, "cifar10-40000", 89.1)
    full, _ = _compose("paper_cifar10_resnet56_limited", "multistep", "dataset.train_size=50000")
    assert (full.dataset.prepared_name, full.target_acc) == ("cifar10", 91.2)


def test_resnet56_1cycle_matches_the_authors_log() -> None:
    cfg, schedule = _compose("paper_cifar10_resnet56_1cycle", "one_cycle")
    assert schedule.iterations == 9277
    assert schedule.lr_at(4003) == pytest.approx(0.8)
    assert schedule.momentum_at(4003) == pytest.approx(0.85)
    assert schedule.lr_at(9000) == pytest.approx(8e-5)  # logged tail base/1000
    model = instantiate(cfg.model)
    assert count_parameters(model) == 865_578 and not model.stages[0].relu_after_add
    assert (cfg.trainer.total_batch, cfg.optimizer.nesterov) == (512, True)


@pytest.mark.parametrize(("policy", "row", "momentum_at_peak", "lr_at_peak"), [
    ("one_cycle", "m95", 0.95, 0.8), ("one_cycle", "m85", 0.85, 0.8), ("constant", "m90", 0.90, 0.1)])
def test_paper2_table1_momentum_rows(policy: str, row: str, momentum_at_peak: float, lr_at_peak: float) -> None:
    _, schedule = _compose("paper_cifar10_resnet56_1cycle", policy, f"row.{policy}={row}")
    assert (schedule.momentum_at(0), schedule.momentum_at(4003)) == pytest.approx((momentum_at_peak,) * 2)
    assert schedule.lr_at(4003) == pytest.approx(lr_at_peak)


def test_resnet56_1cycle_torch_variant_peaks_at_the_authors_stepsize() -> None:
    _, schedule = _compose("paper_cifar10_resnet56_1cycle", "torch_one_cycle")
    assert schedule.lr_at(0) == pytest.approx(0.08)
    assert schedule.lr_at(4003) == pytest.approx(0.8, rel=1e-4)
    assert schedule.lr_at(8006) == pytest.approx(0.08, rel=1e-3)
    assert schedule.lr_at(9276) == pytest.approx(8e-5)


def test_cifar100_step_policy_drops_twice_at_fifteen_sixteenths() -> None:
    cfg, schedule = _compose("paper_cifar100_resnet56", "multistep")
    assert schedule.iterations == round(100 * PER_EPOCH)
    assert schedule.lr_at(round(87.5 * PER_EPOCH)) == pytest.approx(0.1 * 0.316**3)
    assert schedule.lr_at(round(93.75 * PER_EPOCH)) == pytest.approx(0.1 * 0.316**5)
    assert cfg.dataset.num_classes == 100


def test_densenet_400_epoch_step_drops_where_the_log_does() -> None:
    _, schedule = _compose("paper_cifar10_densenet", "multistep", "row.multistep=400ep")
    # the log's LR changes (line 297): 19,531, 29,296, 34,178, 36,619 (twice); ours round epochs, Caffe truncates
    drops = [it for it in range(1, schedule.iterations) if schedule.lr_at(it) < schedule.lr_at(it - 1)]
    assert [abs(a - b) <= 2 for a, b in zip(drops, (19_531, 29_296, 34_178, 36_619), strict=True)] == [True] * 4
    assert schedule.lr_at(schedule.iterations - 1) == pytest.approx(0.1 * 0.316**5)


def test_wrn_1cycle_lengths_and_widths() -> None:
    cfg, schedule = _compose("paper_cifar10_wrn", "one_cycle")
    assert schedule.iterations == 4882 and schedule.lr_at(2246) == pytest.approx(1.0)
    assert count_parameters(instantiate(cfg.model)) == 5_903_626
    _, short = _compose("paper_cifar10_wrn", "one_cycle", "row.one_cycle=25ep")
    assert short.lr_at(round(12 * PER_EPOCH)) == pytest.approx(0.5)
    typo, _ = _compose("paper_cifar10_wrn", "multistep", "row.multistep=400ep")
    assert typo.target_acc is None, "the 400-epoch cell is a transcription typo (line 267)"


@pytest.mark.parametrize(("policy", "weight_decay"), [("one_cycle", 1e-6), ("multistep", 1e-4)])
def test_densenet_weight_decay_follows_the_run(policy: str, weight_decay: float) -> None:
    cfg, schedule = _compose("paper_cifar10_densenet", policy)
    assert cfg.optimizer.weight_decay == weight_decay
    if policy == "one_cycle":
        assert schedule.iterations == 4882 and schedule.lr_at(2148) == pytest.approx(4.0)
    assert count_parameters(instantiate(cfg.model)) == 1_019_722


def test_mnist_85_epoch_row_doubles_the_lr_range() -> None:
    cfg, schedule = _compose("paper_mnist_lenet_budgets", "one_cycle")
    stepsize = round(40 * 60000 / 512)
    assert (schedule.lr_at(0), schedule.lr_at(stepsize)) == pytest.approx((0.02, 0.2))
    assert schedule.momentum_at(stepsize) == pytest.approx(0.8) and cfg.optimizer.weight_decay == 5e-4


# At TBS 128 an ImageNet epoch is 10,000 iterations (line 336): a training set of 1,280,000 images.
IMAGENET = ["dataset.classes=1000", "dataset.images_per_class=1280", "dataset.train_size=1280000"]


def test_imagenet_resnet50_1cycle_matches_the_solver() -> None:
    cfg, schedule = _compose("paper_imagenet_resnet50", "one_cycle", *IMAGENET)
    assert (schedule.iterations, schedule.lr_at(0), schedule.lr_at(95_000)) == (200_000, 0.05, pytest.approx(1.0))
    assert schedule.momentum_at(95_000) == pytest.approx(0.85)
    assert schedule.lr_at(199_999) == pytest.approx(5e-5)  # logged tail base/1000 (line 151)
    assert (cfg.optimizer.weight_decay, cfg.optimizer.nesterov, cfg.trainer.total_batch) == (3e-6, True, 128)
    assert _classifier(instantiate(cfg.model)).out_features == 1000


def test_imagenet_resnet50_standard_decays_every_two_epochs() -> None:
    cfg, schedule = _compose("paper_imagenet_resnet50", "step", *IMAGENET)
    assert (schedule.lr_at(19_999), schedule.lr_at(20_000)) == pytest.approx((0.1, 0.094))
    assert schedule.iterations == 1_300_000 and cfg.optimizer.weight_decay == 1e-4
    assert schedule.momentum_at(0) == 0.9


def test_range_test_stage_composes_with_the_fig2b_preset() -> None:
    cfg = compose_stage_config("range_test", ["experiment=paper_cifar10_resnet56"])
    assert (cfg.range_test.end_lr, cfg.range_test.iterations) == (3.0, 20000)
    assert cfg.model.bn_momentum.moving_average_fraction == 0.95


@pytest.mark.parametrize(("preset", "end_lr", "iterations"), [
    ("paper_cifar10_resnet20", 2.0, 80_000), ("paper_cifar10_resnet110", 2.0, 80_000),
    ("paper_cifar100_resnet56_clr", 3.0, 20_000)])
def test_range_tests_of_the_other_paper1_nets(preset: str, end_lr: float, iterations: int) -> None:
    rt = compose_stage_config("range_test", [f"experiment={preset}"]).range_test
    assert (rt.start_lr, rt.end_lr, rt.iterations) == (0.0, end_lr, iterations)


def test_constant_lr_with_cyclical_momentum_row() -> None:
    """Paper 2 Table 1's LR 0.1 with CM 0.95-0.85/41: Caffe's momentum cycle over P = 4,003 iterations under a flat LR,
    the later half-amplitude cycle included; the constant-momentum rows stay flat."""
    _, schedule = _compose("paper_cifar10_resnet56_1cycle", "constant", "row.constant=cm9585")
    momenta = [schedule.momentum_at(it) for it in (0, 2001, 4003, 6004, 8006, 9277 - 1)]
    assert momenta == pytest.approx([0.95, 0.95 - 0.1 * 2001 / 4003, 0.85, 0.95 - 0.1 * 2002 / 4003, 0.95,
                                     0.95 - 0.05 * 1270 / 4003])
    assert {schedule.lr_at(it) for it in (0, 4003, 9276)} == {0.1}
    _, flat = _compose("paper_cifar10_resnet56_1cycle", "constant", "row.constant=m90")
    assert {flat.momentum_at(it) for it in (0, 4003, 9276)} == {0.9}


@pytest.mark.parametrize("policy", ["one_cycle", "step"])
def test_imagenet_preset_runs_on_the_full_set(policy: str) -> None:
    """dataset=imagenet: 1000 classes, the full training set (no subset folder), the published ImageNet rows."""
    cfg = compose_stage_config("train", ["experiment=paper_imagenet_resnet50", f"schedule={policy}",
                                         "dataset=imagenet"])
    validate_train(cfg)
    assert (cfg.dataset.num_classes, cfg.dataset.train_size, cfg.dataset.prepared_name) == (
        1000, 1_281_167, "imagenet-64px")
    assert _classifier(instantiate(cfg.model)).out_features == 1000
    experiment, run = report_names(cfg, "paper_imagenet_resnet50", policy)
    row = matched_row(load_reference(), {"experiment": experiment, "base_run": run, "train_size": None})
    assert row is not None and row["dataset"] == "ImageNet"
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    assert schedule.iterations == {"one_cycle": 200_000, "step": 1_300_000}[policy] * 1_281_167 // 1_280_000
