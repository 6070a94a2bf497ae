"""The typed config schema: every preset validates, and a bad value anywhere, of any stage, is one ConfigError line
naming the key, the value and what is expected (composed in-process, as the stages compose them)."""

from __future__ import annotations

import collections
import functools
import re
from typing import get_args

import pytest
import yaml

from superconv.common.errors import ConfigError
from superconv.core.choices import POLICIES
from superconv.stages import schema
from superconv.stages.compose import CONF_DIR, compose_stage_config
from superconv.stages.rules import validate_prepare, validate_range_test, validate_train
from superconv.stages.schema import validate_report

VALIDATE = {"train": validate_train, "range_test": validate_range_test, "prepare": validate_prepare,
            "report": validate_report}
TINY = ["experiment=tiny_digits_lenet"]
TORCH = [*TINY, "schedule=torch_one_cycle", "++recipe.torch_one_cycle={unit: iteration, length: 100, max_lr: 0.5}"]
FASTAI = [*TINY, "schedule=fastai_one_cycle", "++recipe.fastai_one_cycle={unit: iteration, length: 100, max_lr: 0.5}"]
MULTISTEP = [*TINY, "schedule=multistep",
             "++recipe.multistep={unit: iteration, length: 100, base_lr: 0.1, gamma: 0.1, steps: [50], momentum: 0.9}"]
CIFAR = [*TINY, "dataset=cifar10"]
RESNET = [*TINY, "model=cifar_resnet"]

# (stage, overrides, what the one line must contain: the key and the value, and what is expected where it says it)
BAD = [
    # trainer
    ("train", [*TINY, "trainer.log_every=abc"], "trainer.log_every='abc' must be an integer > 0"),
    ("train", [*TINY, "trainer.threads=-3"], "trainer.threads=-3 must be null or an integer > 0"),
    ("train", [*TINY, "trainer.channels_last=maybe"], "trainer.channels_last='maybe' must be true or false"),
    ("train", [*TINY, "trainer.total_batch=128.0"], "trainer.total_batch=128.0 must be an integer > 0"),
    ("train", [*TINY, "trainer.total_batch=0"], "trainer.total_batch=0 must be an integer > 0"),
    ("train", [*TINY, "trainer.eval_batch=-1"], "trainer.eval_batch=-1 must be an integer > 0"),
    ("train", [*TINY, "trainer.eval_every=0"], "trainer.eval_every=0 must be an integer > 0"),
    ("train", [*TINY, "trainer.eval_every=1000"], "trainer.eval_every=1000 is longer than the run"),
    ("train", [*TINY, "trainer.max_iterations=0"], "trainer.max_iterations=0 must be null or an integer > 0"),
    ("train", [*TINY, "trainer.checkpoint_every=-5"], "trainer.checkpoint_every=-5 must be null or an integer >= 0"),
    ("train", [*TINY, "trainer.divergence_factor=1"], "trainer.divergence_factor=1 must be null or a number > 1"),
    ("train", [*TINY, "trainer.fail_on_divergence=sometimes"], "trainer.fail_on_divergence='sometimes' must be true"),
    ("train", [*TINY, "trainer.device=gpu"], "trainer.device='gpu' must be auto, cpu, mps, cuda or cuda:<index>"),
    ("train", [*TINY, "trainer.progress=2"], "trainer.progress=2 must be true or false"),
    ("train", [*TINY, "trainer.amp=fp8"], "trainer.amp='fp8' must be null or one of 'bf16', 'fp16'"),
    ("train", [*TINY, "trainer.compile=yes"], "trainer.compile='yes' must be true or false"),
    ("train", [*TINY, "trainer.cudnn_benchmark=1"], "trainer.cudnn_benchmark=1 must be true or false"),
    ("train", [*TINY, "trainer.sync_bn=on"], "trainer.sync_bn='on' must be true or false"),
    ("train", [*TINY, "++trainer.workers=4"], "trainer.workers=4 is not a setting of trainer"),
    ("train", [*TINY, "~trainer.log_every"], "trainer.log_every is not set: it must be an integer > 0"),
    # dataset
    ("train", [*TINY, "dataset.input_scale=foo"], "dataset.input_scale='foo' must be null or a number > 0"),
    ("train", [*TINY, "dataset.input_scale=0"], "dataset.input_scale=0 must be null or a number > 0"),
    ("train", [*TINY, "dataset.train_size=abc"], "dataset.train_size='abc' must be an integer > 0"),
    ("train", [*TINY, "dataset.test_size=-1"], "dataset.test_size=-1 must be an integer > 0"),
    ("train", [*TINY, "dataset.num_classes=1"], "dataset.num_classes=1 must be 10"),
    ("train", [*TINY, "dataset.channels=3"], "dataset.channels=3 must be 1"),
    ("train", [*TINY, "dataset.download=maybe"], "dataset.download='maybe' must be true or false"),
    ("train", [*TINY, "dataset.sources=[web]"], "dataset.sources[0]='web' must be 'sklearn'"),
    ("train", [*TINY, "dataset.sources=[]"], "dataset.sources=[] must be a list (not empty)"),
    ("train", [*TINY, "dataset.name=svhn"], "dataset.name='svhn' must be one of 'mnist', 'digits'"),
    ("train", [*TINY, "++dataset.split=0.9"], "dataset.split=0.9 is not a setting of dataset"),
    ("train", [*TINY, "dataset.mean=[0.5]", "dataset.std=[0.2]"], "dataset.input_scale=0.00390625 and dataset.mean"),
    ("train", [*CIFAR, "dataset.train_size=12345"], "dataset.train_size=12345 is not a multiple of dataset.num_cl"),
    ("train", [*CIFAR, "dataset.train_size=60000"], "dataset.train_size=60000 is above dataset.full_train_size=50000"),
    ("train", [*CIFAR, "dataset.std=[0.2,0.2]"], "dataset.std=[0.2, 0.2] has 2 values for the 3 channels"),
    ("train", [*CIFAR, "dataset.std=null"], "dataset.std=None: set both"),
    ("train", [*CIFAR, "dataset.mean=[0.5,0.5,x]"], "dataset.mean[2]='x' must be a number"),
    ("train", [*CIFAR, "dataset.root=null"], "dataset.root=None, but the sources local, download"),
    # model
    ("train", [*RESNET, "model.depth=x"], "model.depth='x' must be an integer 6n+2 >= 8"),
    ("train", [*RESNET, "model.depth=21"], "model.depth=21 must be an integer 6n+2 >= 8"),
    ("train", [*RESNET, "model.widths=[16,32]"], "model.widths=[16, 32] must be a list of 3 values, each an integer"),
    ("train", [*RESNET, "model.shortcut=C"], "model.shortcut='C' must be one of 'avgpool', 'A', 'B'"),
    ("train", [*RESNET, "model.conv_bias=maybe"], "model.conv_bias='maybe' must be true or false"),
    ("train", [*RESNET, "model.projection_kernel=0"], "model.projection_kernel=0 must be an integer > 0"),
    ("train", [*RESNET, "model.bn_momentum.moving_average_fraction=1.5"],
     "model.bn_momentum.moving_average_fraction=1.5 must be a number in [0, 1)"),
    ("train", [*RESNET, "model.bn_momentum=2.0"], "model.bn_momentum=2.0 must be a number in [0, 1]."),
    ("train", [*TINY, "model=densenet40", "model.dropout=1.0"], "model.dropout=1.0 must be a number in [0, 1)"),
    ("train", [*TINY, "model=densenet40", "model.depth=41"], "model.depth=41 must be an integer 3n+4 >= 7"),
    ("train", [*TINY, "model=densenet40", "model.growth_rate=0"], "model.growth_rate=0 must be an integer > 0"),
    ("train", [*TINY, "model.init=caffe"], "model.init='caffe' must be one of 'xavier', 'msra', 'torch'"),
    ("train", [*TINY, "model._target_=foo.Bar"], "model._target_='foo.Bar' must be one of"),
    ("train", [*TINY, "++model.width=2"], "model.width=2 is not a setting of model"),
    ("train", [*TINY, "model.num_classes=5"], "model.num_classes=5 differs from dataset.num_classes=10"),
    ("train", [*TINY, "dataset.image_size=12"],
     "model.image_size=12 (from ${dataset.image_size}) must be an integer >= 16"),
    ("train", [*TINY, "model=resnet50"], "model.image_size=28 (from ${dataset.image_size}) must be an integer >= 32"),
    # optimizer
    ("train", [*TINY, "optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1 must be a number >= 0"),
    ("train", [*TINY, "optimizer.weight_decay=abc"], "optimizer.weight_decay='abc' must be a number >= 0"),
    ("train", [*TINY, "optimizer.nesterov=maybe"], "optimizer.nesterov='maybe' must be true or false"),
    ("train", [*TINY, "optimizer.decay_bn_and_bias=0"], "optimizer.decay_bn_and_bias=0 must be true or false"),
    ("train", [*TINY, "++optimizer.lr=0.1"], "optimizer.lr=0.1 is not a setting of optimizer: the learning rate and "
                                             "momentum come from the schedule now: set schedule.* or recipe."),
    ("train", [*TINY, "++optimizer.momentum=0.9"], "optimizer.momentum=0.9 is not a setting of optimizer: the"),
    ("train", [*TINY, "optimizer._target_=torch.optim.Adam"],
     "optimizer._target_='torch.optim.Adam' must be one of 'torch.optim.SGD', 'superconv.core.optim.CaffeSGD'"),
    ("train", [*TINY, "optimizer.nesterov=true", "schedule.momentum=0.0", "schedule.momentum_min=0.0"],
     "optimizer.nesterov=true needs a momentum above 0"),
    # schedule
    ("train", [*TINY, "schedule.max_lr=-1"], "schedule.max_lr=-1 must be a number > 0"),
    ("train", [*TINY, "schedule.max_lr=nan"], "schedule.max_lr=nan must be a number > 0"),
    ("train", [*TINY, "schedule.min_lr=abc"], "schedule.min_lr='abc' must be a number > 0"),
    ("train", [*TINY, "schedule.min_lr=0.5"], "schedule.min_lr=0.5 is above schedule.max_lr=0.05"),
    ("train", [*TINY, "schedule.momentum=1.2"], "schedule.momentum=1.2 must be a number in [0, 1)"),
    ("train", [*TINY, "schedule.momentum=high"], "schedule.momentum='high' must be a number in [0, 1)"),
    ("train", [*TINY, "schedule.momentum_min=1.0"], "schedule.momentum_min=1.0 must be null or a number in [0, 1)"),
    ("train", [*TINY, "schedule.momentum_min=-0.1"], "schedule.momentum_min=-0.1 must be null or a number in [0, 1)"),
    ("train", [*TINY, "schedule.unit=epochs"], "schedule.unit='epochs' must be one of 'epoch', 'iteration'"),
    ("train", [*TINY, "schedule.length=0"], "schedule.length=0 must be a number > 0"),
    ("train", [*TINY, "schedule.stepsize=4"], "schedule.stepsize=4 (epochs) makes the cycle"),
    ("train", [*TINY, "schedule.stepsize=0.001"], "schedule.stepsize=0.001 (epochs) is under one iteration"),
    ("train", [*TINY, "schedule.tail_div=0"], "schedule.tail_div=0 must be a number > 0"),
    ("train", [*TINY, "schedule.policy=cosine"], "schedule.policy='cosine' must be one of 'one_cycle'"),
    ("train", [*TINY, "++schedule.warmup=5"], "schedule.warmup=5 is not a setting of schedule"),
    ("train", [*TINY, "recipe.one_cycle.max_lr=big"], "recipe.one_cycle.max_lr='big' must be a number > 0"),
    ("train", [*TINY, "recipe.one_cycle.max_lr=null"], "recipe.one_cycle.max_lr=None must be a number > 0"),
    ("train", [*TINY, "trainer.eval_batch=${trainer.device}"],
     "trainer.eval_batch='auto' (from ${trainer.device}) must be an integer > 0"),
    ("train", [*TINY, "schedule=triangular"], "schedule cannot be resolved (Interpolation key 'recipe.triangular"),
    ("train", [*TINY, "schedule=inv", "schedule.power=-1"], "schedule.power=-1 must be a number >= 0"),
    ("train", [*TINY, "schedule=inv", "schedule.length=120.5"], "schedule.length=120.5 is not a whole number"),
    ("train", [*TINY, "schedule=inv", "schedule.momentum_min=0.8"], "schedule.momentum_min=0.8 cycles momentum"),
    ("train", [*TINY, "schedule=step", "schedule.gamma=0"], "schedule.gamma=0 must be a number > 0"),
    ("train", [*MULTISTEP, "schedule.steps=[a]"], "schedule.steps[0]='a' must be a number >= 0"),
    ("train", [*TORCH, "schedule.pct_start=1.5"], "schedule.pct_start=1.5 must be a number in (0, 1)"),
    ("train", [*TORCH, "schedule.anneal_strategy=step"], "schedule.anneal_strategy='step' must be one of 'cos'"),
    ("train", [*TORCH, "schedule.three_phase=maybe"], "schedule.three_phase='maybe' must be true or false"),
    ("train", [*TORCH, "schedule.div_factor=0"], "schedule.div_factor=0 must be a number > 0"),
    ("train", [*TORCH, "schedule.momentum_min=null"], "schedule.cycle_momentum=true needs schedule.momentum_min"),
    ("train", [*FASTAI, "schedule.div_final=-1"], "schedule.div_final=-1 must be a number > 0"),
    ("train", [*FASTAI, "schedule.momentum_min=null"], "schedule.momentum_min=None must be a number in [0, 1)"),
    # augment
    ("train", [*TINY, "augment.flip=maybe"], "augment.flip='maybe' must be true or false"),
    ("train", [*TINY, "augment.crop_padding=-1"], "augment.crop_padding=-1 must be an integer >= 0"),
    ("train", [*TINY, "augment.crop_padding=two"], "augment.crop_padding='two' must be an integer >= 0"),
    ("train", [*TINY, "augment.pad_mode=wrap"], "augment.pad_mode='wrap' must be one of 'zero', 'reflect'"),
    ("train", [*TINY, "++augment.scale=2"], "augment.scale=2 is not a setting of augment"),
    ("train", [*TINY, "augment=crop_flip", "augment.pad_mode=reflect", "augment.crop_padding=28"],
     "augment.crop_padding=28 must be below dataset.image_size=28"),
    # tracking
    ("train", [*TINY, "tracking.enabled=sometimes"], "tracking.enabled='sometimes' must be true or false"),
    ("train", [*TINY, "tracking.experiment=''"], "tracking.experiment='' must be a non-empty string"),
    ("train", [*TINY, "tracking.system_metrics=2"], "tracking.system_metrics=2 must be true or false"),
    ("train", [*TINY, "++tracking.token=x"], "tracking.token='x' is not a setting of tracking"),
    # the train config's own keys, and a preset's range-test block it carries
    ("train", [*TINY, "target_acc=101"], "target_acc=101 must be null or a number in (0, 100]"),
    ("train", [*TINY, "target_acc=abc"], "target_acc='abc' must be null or a number in (0, 100]"),
    ("train", [*TINY, "seed=-1"], "seed=-1 must be an integer in [0, 4294967296)"),
    ("train", [*TINY, "seed=1.5"], "seed=1.5 must be an integer in [0, 4294967296)"),
    ("train", [*TINY, "++epochs=3"], "epochs=3 is not a setting of the train config"),
    ("train", [*TINY, "out=''"], "out='' must be a non-empty string"),
    ("train", [*TINY, "lr_from=5"], "lr_from=5 must be null or a non-empty string"),
    ("train", [*TINY, "++run_names.one_cycle=5"], "run_names.one_cycle=5 must be a non-empty string"),
    ("train", [*TINY, "data_root=null"], "data_root=None must be a non-empty string"),
    ("train", [*TINY, "study=3"], "study=3 must be null or a non-empty string"),
    ("train", [*TINY, "range_test.linear.end_lr=abc"], "range_test.linear.end_lr='abc' must be a number > 0"),
    # range_test
    ("range_test", [*TINY, "range_test.rule=median"], "range_test.rule='median' must be one of 'accuracy_peak'"),
    ("range_test", [*TINY, "range_test.protocol=cubic"], "range_test.protocol='cubic' must be one of 'linear'"),
    ("range_test", [*TINY, "range_test.start_lr=-1"], "range_test.start_lr=-1 must be a number >= 0"),
    ("range_test", [*TINY, "range_test.end_lr=0.0"], "range_test.end_lr=0.0 must be a number > 0"),
    ("range_test", [*TINY, "range_test.iterations=1"], "range_test.iterations=1 must be an integer >= 2"),
    ("range_test", [*TINY, "range_test.iterations=10.5"], "range_test.iterations=10.5 must be an integer >= 2"),
    ("range_test", [*TINY, "range_test.eval_every=0"], "range_test.eval_every=0 must be null or an integer > 0"),
    ("range_test", [*TINY, "range_test.eval_size=0"], "range_test.eval_size=0 must be an integer > 0"),
    ("range_test", [*TINY, "range_test.momentum=1.0"], "range_test.momentum=1.0 must be a number in [0, 1)"),
    ("range_test", [*TINY, "range_test.smooth_beta=1.0"], "range_test.smooth_beta=1.0 must be a number in [0, 1)"),
    ("range_test", [*TINY, "range_test.stop_factor=0.5"], "range_test.stop_factor=0.5 must be null or a number > 1"),
    ("range_test", [*TINY, "range_test.diverge_factor=abc"], "range_test.diverge_factor='abc' must be null or a"),
    ("range_test", [*TINY, "range_test.min_lr_divisor=0.5"], "range_test.min_lr_divisor=0.5 must be a number >= 1"),
    ("range_test", [*TINY, "range_test=exponential", "range_test.end_lr=1e-5"],
     "range_test.end_lr=1e-05 must be above range_test.start_lr=0.0001"),
    ("range_test", [*TINY, "range_test=exponential", "range_test.start_lr=0.0"],
     "range_test.start_lr=0.0 must be > 0 for exponential"),
    ("range_test", [*TINY, "range_test.eval_every=100"], "range_test.eval_every=100 is longer than range_test.it"),
    ("range_test", [*TINY, "range_test.eval_every=null"], "range_test.rule=accuracy_peak needs held-out evaluations"),
    ("range_test", [*TINY, "++range_test.warmup=5"], "range_test.warmup=5 is not a setting of range_test"),
    ("range_test", [*TINY, "range_test.linear.iterations=abc"], "range_test.linear.iterations='abc' must be an int"),
    ("range_test", [*TINY, "trainer.total_batch=-1"], "trainer.total_batch=-1 must be an integer > 0"),
    ("range_test", [*TINY, "model.init=he"], "model.init='he' must be one of 'xavier', 'msra', 'torch'"),
    ("range_test", [*TINY, "optimizer.nesterov=true", "range_test.momentum=0.0"],
     "optimizer.nesterov=true needs a momentum above 0"),
    ("range_test", [*TINY, "++lr_from=x.json"], "lr_from='x.json' is not a setting of the range_test config"),
    # prepare
    ("prepare", ["dataset=cifar10", "dataset.image_size=28"], "dataset.image_size=28 must be 32"),
    ("prepare", ["dataset=imagenette", "dataset.archive_size=80px"], "dataset.archive_size='80px' must be one of"),
    ("prepare", ["raw_root=''"], "raw_root='' must be a non-empty string"),
    ("prepare", ["dataset.sources=[local,web]"], "dataset.sources[1]='web' must be one of 'local', 'download'"),
    ("prepare", ["dataset=imagenet_subset", "dataset.train_size=2601"], "dataset.train_size=2601 must be a multiple"),
    ("prepare", ["dataset=imagenet_subset", "dataset.num_classes=5"], "dataset.num_classes=5 differs from dataset.cl"),
    ("prepare", ["dataset=imagenet_subset", "dataset.images_per_class=0"],
     "dataset.images_per_class=0 must be an integer > 0"),
    ("prepare", ["dataset=cifar100", "dataset.subset_seed=-1"], "dataset.subset_seed=-1 must be an integer >= 0"),
    ("prepare", ["dataset=cifar10", "dataset.prepared_name=''"], "dataset.prepared_name='' must be a non-empty str"),
    ("prepare", ["dataset=cifar10", "dataset.full_train_size=0"],
     "dataset.train_size=0 (from ${.full_train_size}) must be an integer > 0"),
    ("prepare", ["dataset=mnist", "dataset.download=1"], "dataset.download=1 must be true or false"),
    ("prepare", ["++dataset.mirror=x"], "dataset.mirror='x' is not a setting of dataset"),
    ("prepare", ["++seed=1"], "seed=1 is not a setting of the prepare config"),
    # report
    ("report", ["compare.baseline=one_cycle"], "compare.policy='one_cycle' is also compare.baseline"),
    ("report", ["++compare.metric=acc"], "compare.metric='acc' is not a setting of compare"),
    ("report", ["compare.policy=''"], "compare.policy='' must be a non-empty string"),
    ("report", ["tracking.enabled=sometimes"], "tracking.enabled='sometimes' must be true or false"),
    ("report", ["results=null"], "results=None must be a non-empty string"),
    ("report", ["range_test_dir=5"], "range_test_dir=5 must be null or a non-empty string"),
    ("report", ["++seed=1"], "seed=1 is not a setting of the report config"),
]


GROUPS = {"dataset", "model", "optimizer", "schedule", "trainer", "augment", "tracking", "range_test", "compare"}


def _group(stage: str, message: str) -> str:
    """The config group a bad value belongs to (the key the message starts with), e.g. train/schedule."""
    head = message.split("=")[0].split(" ")[0].split(".")[0].split("[")[0]
    return f"{stage}/{head if head in GROUPS else 'top'}"


@pytest.mark.parametrize(("stage", "overrides", "message"), BAD, ids=[f"{s}:{' '.join(o[-1:])}" for s, o, _ in BAD])
def test_a_bad_value_is_one_line_naming_key_value_and_what_is_expected(stage, overrides, message) -> None:
    cfg = compose_stage_config(stage, overrides)
    with pytest.raises(ConfigError) as err:
        VALIDATE[stage](cfg)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_the_bad_value_table_covers_every_group_of_every_stage(capsys) -> None:
    assert len({(s, tuple(o)) for s, o, _ in BAD}) == len(BAD), "no case twice"
    counts = collections.Counter(_group(stage, message) for stage, _, message in BAD)
    with capsys.disabled():
        print(f"\n{len(BAD)} bad values rejected:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    assert len(BAD) >= 60
    for group in ("dataset", "model", "optimizer", "schedule", "trainer", "augment", "tracking", "range_test", "top"):
        assert counts[f"train/{group}"] or counts[f"range_test/{group}"], group
    assert all(counts[f"{stage}/top"] for stage in VALIDATE) and counts["prepare/dataset"] and counts["report/compare"]


@functools.cache
def _presets() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _preset_schedules() -> list[tuple[str, str]]:
    return [(preset, policy) for preset in _presets()
            for policy in compose_stage_config("train", [f"experiment={preset}"]).recipe]


@pytest.mark.parametrize(("preset", "policy"), _preset_schedules())
def test_every_preset_validates_with_each_of_its_schedules(preset: str, policy: str) -> None:
    checked = validate_train(compose_stage_config("train", [f"experiment={preset}", f"schedule={policy}"]))
    assert checked.schedule is not None and checked.schedule.iterations > 0


@pytest.mark.parametrize("preset", _presets())
def test_every_preset_validates_as_a_range_test_with_each_protocol(preset: str) -> None:
    for protocol in ("linear", "exponential"):
        checked = validate_range_test(compose_stage_config("range_test", [f"experiment={preset}",
                                                                          f"range_test={protocol}"]))
        assert checked.schedule is None


@pytest.mark.parametrize("overrides", [
    ["schedule=exp", "++recipe.exp={unit: iteration, length: 400, base_lr: 0.1, gamma: 0.999, momentum: 0.9}"],
    ["augment=crop_flip"], ["augment=crop_flip", "augment.pad_mode=reflect"], ["trainer.amp=bf16"],
    ["trainer.device=cuda:1", "trainer.threads=2", "trainer.max_iterations=5", "trainer.checkpoint_every=null"],
    ["schedule=triangular", "schedule.policy=exp_range", "++schedule.gamma=0.99",
     "++recipe.triangular={unit: iteration, length: 100, min_lr: 0.01, max_lr: 0.1, stepsize: 25, momentum: 0.9}"],
])
def test_other_good_values_pass(overrides: list[str]) -> None:
    validate_train(compose_stage_config("train", [*TINY, *overrides]))


def test_every_dataset_and_the_report_validate() -> None:
    for dataset in sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml")):
        validate_prepare(compose_stage_config("prepare", [f"dataset={dataset}"]))
    validate_report(compose_stage_config("report", []))


def test_the_schema_has_one_model_per_policy_and_per_model_target() -> None:
    policies = [p for s in schema.SCHEDULES for p in get_args(s.model_fields["policy"].annotation)]
    assert sorted(policies) == sorted(POLICIES)
    targets = {yaml.safe_load(p.read_text())["_target_"] for p in (CONF_DIR / "model").glob("*.yaml")}
    members = get_args(get_args(schema.Model)[0])
    assert targets <= {get_args(m.model_fields["target"].annotation)[0] for m in members}


def _groups() -> list[type[schema.Group]]:
    found, todo = [], [schema.Group]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def test_the_schema_holds_no_value_only_where_a_key_may_be_left_out() -> None:
    """Every value lives in one place, the shipped YAML: a schema default may only mean "not given"."""
    valued = [f"{cls.__name__}.{name}={info.default!r}" for cls in _groups()
              for name, info in cls.model_fields.items()
              if not info.is_required() and info.default not in (None, {})]
    assert not valued, f"schema defaults that are values (set them in conf/ instead): {valued}"


@pytest.mark.parametrize("policy", sorted(schema.RECIPE_KEYS))
def test_a_recipe_takes_exactly_the_keys_its_schedule_file_reads(policy: str) -> None:
    """recipe.<policy> is typed from the schedule: the keys it accepts are those conf/schedule/<policy>.yaml takes
    from it (directly or through oc.select), so a misspelt recipe key is an error, and no accepted key is unread."""
    text = (CONF_DIR / "schedule" / f"{policy}.yaml").read_text()
    read = set(re.findall(rf"recipe\.{policy}\.(\w+)", text))
    assert read == set(schema.RECIPE_KEYS[policy])


def test_a_misspelt_recipe_key_is_refused_with_its_settings() -> None:
    with pytest.raises(ConfigError) as err:
        validate_train(compose_stage_config("train", [*TORCH, "++recipe.torch_one_cycle.pct_strat=0.4"]))
    assert str(err.value).startswith("recipe.torch_one_cycle.pct_strat=0.4 is not a setting of "
                                     "recipe.torch_one_cycle (did you mean 'pct_start'?) (its settings: unit, ")


def test_validation_hands_the_stages_typed_settings() -> None:
    checked = validate_train(compose_stage_config("train", TINY))
    assert isinstance(checked.run, schema.TrainConfig) and isinstance(checked.run.trainer, schema.Trainer)
    assert isinstance(checked.run.recipe.one_cycle.max_lr, float)
