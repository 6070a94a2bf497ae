"""The typed schema of every stage's composed config: one pydantic model per config group, checked before any data
is read.

Each group of ``conf/`` has a model here (``dataset``, ``model`` and ``schedule`` one per kind, told apart by
``name``, ``_target_`` and ``policy``), and each entry config (``conf/{train,range_test,prepare,report}.yaml``) one
that holds them. Every model forbids keys it does not know, and every value is checked strictly for its type (no
``"5"`` for 5: the stages read the config, not this model) and domain. Rules between the fields of one group are
model validators here; rules between groups are in :mod:`superconv.stages.rules`. :func:`validated` resolves a
composed config and checks it; :func:`explain` turns the first error into one line that names the key, the value
and what is expected (:mod:`superconv.common.explain`). The choices (policies, rules, sources, ...) are core's
own (:mod:`superconv.core.choices`), so this module loads no torch.

``recipe.<policy>`` is typed per policy (the keys its schedule file reads, typed as the schedule types them), so a
misspelt recipe key is an error, not a silently ignored value. A preset's helper keys (``row``, ``rows``,
``pc_published_acc``) are loosely typed mappings: they only feed other values by interpolation, and those values are
checked where they land.

A field has a default only where a config may leave the key out, and the default then means "not given" (``None``,
or an empty mapping): every value lives in exactly one place, the shipped YAML (tests/unit/test_config_schema.py).
"""

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
    model_validator,
)

from superconv.common.errors import ConfigError
from superconv.common.explain import Expect, cross_field, explain
from superconv.core import choices

# The choices core implements (core.choices, which loads nothing), as Literal arguments.
POLICIES = choices.POLICIES
RULES = choices.RULES
SOURCES = {name: tuple(found) for name, found in choices.SOURCES.items()}
ARCHIVE_SIZES = tuple(choices.ARCHIVE_SUFFIX)
AMP_DTYPES = tuple(choices.AMP_DTYPES)


# --- value types ------------------------------------------------------------------------------------------------------

PositiveInt = Annotated[int, Gt(0)]
NonNegativeInt = Annotated[int, Ge(0)]
PositiveFloat = Annotated[float, Gt(0)]
NonNegativeFloat = Annotated[float, Ge(0)]
Fraction = Annotated[float, Ge(0), Lt(1)]  # [0, 1): SGD momentum, an EMA's beta, a dropout rate
OpenFraction = Annotated[float, Gt(0), Lt(1)]  # (0, 1): pct_start
Factor = Annotated[float, Gt(1)]  # a multiple of a loss: above 1, else it fires at once
Text = Annotated[str, MinLen(1)]
Seed = Annotated[int, Ge(0), Lt(2**32)]  # numpy's seed range
Accuracy = Annotated[float, Gt(0), Le(100)]  # percent
Momentum = Fraction  # 1 never forgets a gradient; above 1 or below 0 diverges
Unit = Literal["epoch", "iteration"]
Device = Annotated[str, AfterValidator(lambda v: _match(r"auto|cpu|mps|cuda(:\d+)?", v)),
                   Expect("auto, cpu, mps, cuda or cuda:<index>")]
AnyMapping = dict[str, Any]


def _match(pattern: str, value: str) -> str:
    if not re.fullmatch(pattern, value):
        raise ValueError(pattern)
    return value


def _depth(step: int, offset: int) -> Callable[[int], int]:
    def check(depth: int) -> int:
        if (depth - offset) % step:
            raise ValueError(f"{step}n+{offset}")
        return depth

    return check


class Group(BaseModel):
    """A config group: strict types, no unknown keys, no NaN or infinity."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)
    # Keys that moved elsewhere: named in the unknown-key message.
    moved: ClassVar[dict[str, str]] = {}


# --- dataset: one model per dataset name (conf/dataset/*.yaml), its sources those of core.data.sources ----------------

def _sources(name: str) -> Any:
    return Annotated[list[Literal[SOURCES[name]]], MinLen(1)]  # type: ignore[valid-type]


class _Dataset(Group):
    root: Text | None
    download: bool
    num_classes: Annotated[int, Ge(2)]
    channels: PositiveInt
    image_size: PositiveInt
    train_size: PositiveInt
    test_size: PositiveInt
    input_scale: PositiveFloat | None
    mean: list[float] | None
    std: list[PositiveFloat] | None
    # Absent from some datasets; never null where set (the stages read them with a default when absent).
    full_train_size: PositiveInt = None  # type: ignore[assignment]
    subset_seed: NonNegativeInt = None  # type: ignore[assignment]
    prepared_name: Text = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for key in ("mean", "std"):
            value = getattr(self, key)
            if value is not None and len(value) != self.channels:
                raise cross_field(f"dataset.{key}={value!r} has {len(value)} values for the {self.channels} "
                                  f"channels of dataset.channels: give one per channel.")
        if (self.mean is None) != (self.std is None):
            raise cross_field(f"dataset.mean={self.mean!r} and dataset.std={self.std!r}: set both (normalise) or "
                              "neither (scale by dataset.input_scale).")
        if self.mean is not None and self.input_scale is not None:
            raise cross_field(f"dataset.input_scale={self.input_scale!r} and dataset.mean are both set, but mean/std "
                              "normalisation ignores input_scale: set dataset.input_scale=null or the mean/std to "
                              "null.")
        full = self.full_train_size
        if full is not None and self.train_size != full:
            if self.train_size > full:
                raise cross_field(f"dataset.train_size={self.train_size} is above dataset.full_train_size={full}: "
                                  f"at most {full} training images exist.")
            if self.train_size % self.num_classes:
                raise cross_field(f"dataset.train_size={self.train_size} is not a multiple of dataset.num_classes="
                                  f"{self.num_classes}: a training subset keeps as many images of every class.")
        needs_root = [s for s in getattr(self, "sources", []) if s in ("local", "download")]
        if needs_root and self.root is None:
            raise cross_field(f"dataset.root=None, but the sources {', '.join(needs_root)} read or write there: set "
                              "dataset.root to a folder.")
        return self


class Mnist(_Dataset):
    name: Literal["mnist"]
    sources: _sources("mnist")
    num_classes: Literal[10]
    channels: Literal[1]
    image_size: Literal[28]


class Digits(_Dataset):
    name: Literal["digits"]
    sources: _sources("digits")
    num_classes: Literal[10]
    channels: Literal[1]


class Cifar10(_Dataset):
    name: Literal["cifar10"]
    sources: _sources("cifar10")
    num_classes: Literal[10]
    channels: Literal[3]
    image_size: Literal[32]


class Cifar100(_Dataset):
    name: Literal["cifar100"]
    sources: _sources("cifar100")
    num_classes: Literal[100]
    channels: Literal[3]
    image_size: Literal[32]


class Imagenette(_Dataset):
    name: Literal["imagenette"]
    sources: _sources("imagenette")
    channels: Literal[3]
    archive_size: Literal[ARCHIVE_SIZES]  # type: ignore[valid-type]


class Imagewoof(Imagenette):
    name: Literal["imagewoof"]  # type: ignore[assignment]
    sources: _sources("imagewoof")


class Imagenet(_Dataset):
    name: Literal["imagenet"]
    sources: _sources("imagenet")
    channels: Literal[3]


class ImagenetSubset(_Dataset):
    name: Literal["imagenet_subset"]
    sources: _sources("imagenet_subset")
    channels: Literal[3]
    classes: Annotated[int, Ge(2)]
    images_per_class: PositiveInt

    @model_validator(mode="after")
    def _subset(self) -> Self:
        if self.num_classes != self.classes:
            raise cross_field(f"dataset.num_classes={self.num_classes} differs from dataset.classes={self.classes}: "
                              "the subset's labels are its classes.")
        most = self.classes * self.images_per_class
        if self.train_size > most or self.train_size % self.classes:
            raise cross_field(f"dataset.train_size={self.train_size} must be a multiple of dataset.classes="
                              f"{self.classes} and at most classes x images_per_class = {most}.")
        return self


Dataset = Annotated[Mnist | Digits | Cifar10 | Cifar100 | Imagenette | Imagewoof | Imagenet | ImagenetSubset,
                    Field(discriminator="name")]


# --- model: one per _target_ in conf/model/*.yaml, kwargs as the constructors in core.models take them ----------------

class BnMomentumFromMaf(Group):
    """``superconv.core.models.caffe.bn_momentum_from_maf``: PyTorch's BN momentum from Caffe's MAF."""

    target: Literal["superconv.core.models.caffe.bn_momentum_from_maf"] = Field(alias="_target_")
    moving_average_fraction: Fraction


BnMomentum = Annotated[
    Annotated[BnMomentumFromMaf, Tag("maf")] | Annotated[Annotated[float, Ge(0), Le(1)], Tag("value")],
    Discriminator(lambda v: "maf" if isinstance(v, dict) else "value"),
    Expect("a number in [0, 1] or {_target_: superconv.core.models.caffe.bn_momentum_from_maf, "
           "moving_average_fraction: ...}"),
]


class _Model(Group):
    in_channels: PositiveInt
    image_size: PositiveInt
    num_classes: Annotated[int, Ge(2)]


class LeNet(_Model):
    target: Literal["superconv.core.models.lenet.LeNet"] = Field(alias="_target_")
    image_size: Annotated[int, Ge(16), Expect("an integer >= 16 (LeNet's two 5x5 convs and pools)")]
    init: Literal["xavier", "msra", "torch"]


class CifarResNet(_Model):
    target: Literal["superconv.core.models.cifar_resnet.CifarResNet"] = Field(alias="_target_")
    image_size: Annotated[int, Ge(8), Expect("an integer >= 8 (the ResNet downsamples twice)")]
    depth: Annotated[int, Ge(8), AfterValidator(_depth(6, 2)), Expect("an integer 6n+2 >= 8 (20, 32, 56, 110, ...)")]
    widths: Annotated[list[PositiveInt], MinLen(3), MaxLen(3)]
    shortcut: Literal[choices.SHORTCUTS]  # type: ignore[valid-type]
    bn_momentum: BnMomentum
    conv_bias: bool
    relu_after_add: bool
    projection_kernel: PositiveInt
    init: Literal["caffe", "torch"]


class DenseNet(_Model):
    target: Literal["superconv.core.models.densenet.DenseNet"] = Field(alias="_target_")
    image_size: Annotated[int, Ge(4), Expect("an integer >= 4 (DenseNet pools twice by 2)")]
    depth: Annotated[int, Ge(7), AfterValidator(_depth(3, 4)), Expect("an integer 3n+4 >= 7 (40, 100, ...)")]
    growth_rate: PositiveInt
    first_output: PositiveInt
    dropout: Fraction
    bn_momentum: BnMomentum
    init: Literal["caffe", "torch"]


class ResNet50(_Model):
    target: Literal["superconv.core.models.resnet50.ResNet50"] = Field(alias="_target_")
    image_size: Annotated[int, Ge(32), Expect("an integer >= 32 (ResNet-50 downsamples by 32)")]
    bn_momentum: BnMomentum


Model = Annotated[LeNet | CifarResNet | DenseNet | ResNet50, Field(discriminator="target")]


# --- optimizer --------------------------------------------------------------------------------------------------------

class _Optimizer(Group):
    moved: ClassVar[dict[str, str]] = {
        k: "the learning rate and momentum come from the schedule now: set schedule.* or recipe.<policy>.*"
        for k in ("lr", "momentum")}
    partial: Literal[True] = Field(alias="_partial_")
    weight_decay: NonNegativeFloat
    decay_bn_and_bias: bool


class TorchSGD(_Optimizer):
    """conf/optimizer/sgd.yaml; lr and momentum are the schedule's."""

    target: Literal["torch.optim.SGD"] = Field(alias="_target_")
    nesterov: bool


class CaffeSGD(_Optimizer):
    """conf/optimizer/caffe_sgd.yaml: Caffe's update (lr inside the velocity), with the biases' lr_mult."""

    target: Literal["superconv.core.optim.CaffeSGD"] = Field(alias="_target_")
    bias_lr_mult: PositiveFloat


Optimizer = Annotated[TorchSGD | CaffeSGD, Field(discriminator="target")]


# --- schedule: one per policy (core.schedules.POLICIES, conf/schedule/*.yaml) -----------------------------------------

class _Schedule(Group):
    unit: Unit
    length: PositiveFloat
    momentum: Momentum
    momentum_min: Momentum | None = None
    momentum_period: PositiveFloat | None = None

    def lengths(self) -> dict[str, float]:
        """The values counted in ``unit`` (whole iterations when the unit is iteration)."""
        names = ("length", "stepsize", "momentum_period")
        return {k: getattr(self, k) for k in names if getattr(self, k, None) is not None}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.unit == "iteration":
            for key, value in self.lengths().items():
                if not float(value).is_integer():
                    raise cross_field(f"schedule.{key}={value!r} is not a whole number of iterations "
                                      "(schedule.unit=iteration): round it, or use schedule.unit=epoch.")
        min_lr, max_lr = getattr(self, "min_lr", None), getattr(self, "max_lr", None)
        if min_lr is not None and max_lr is not None and min_lr > max_lr:
            raise cross_field(f"schedule.min_lr={min_lr} is above schedule.max_lr={max_lr}: swap them.")
        return self


class _Cycled(_Schedule):
    """A momentum_min cycles momentum over stepsize (or momentum_period)."""

    min_lr: PositiveFloat
    max_lr: PositiveFloat
    stepsize: PositiveFloat


class OneCycle(_Cycled):
    policy: Literal["one_cycle"]
    tail_div: PositiveFloat


class Clr(_Cycled):
    policy: Literal["triangular", "triangular2", "exp_range"]
    gamma: PositiveFloat  # exp_range's per-iteration amplitude decay (triangular and triangular2 ignore it)


class _Fixed(_Schedule):
    """Policies without a stepsize: cyclical momentum needs a momentum_period."""

    base_lr: PositiveFloat

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.momentum_min is not None and self.momentum_period is None and getattr(self, "stepsize", None) is None:
            raise cross_field(f"schedule.momentum_min={self.momentum_min} cycles momentum, but schedule.policy="
                              f"{self.policy!r} has no stepsize to cycle over: set schedule.momentum_period "  # type: ignore[attr-defined]
                              "(recipe.<policy>.momentum_period) or momentum_min=null.")
        return self


class Inv(_Fixed):
    policy: Literal["inv"]
    gamma: NonNegativeFloat
    power: NonNegativeFloat


class MultiStep(_Fixed):
    policy: Literal["multistep"]
    gamma: PositiveFloat
    steps: list[NonNegativeFloat]


class Step(_Fixed):
    policy: Literal["step"]
    gamma: PositiveFloat
    stepsize: PositiveFloat


class Exp(_Fixed):
    policy: Literal["exp"]
    gamma: PositiveFloat


class Constant(_Fixed):
    policy: Literal["constant"]


class FastaiOneCycle(_Schedule):
    policy: Literal["fastai_one_cycle"]
    max_lr: PositiveFloat
    div: PositiveFloat
    div_final: PositiveFloat
    pct_start: OpenFraction
    momentum_min: Momentum


class TorchOneCycle(_Schedule):
    policy: Literal["torch_one_cycle"]
    max_lr: PositiveFloat
    pct_start: OpenFraction
    div_factor: PositiveFloat
    final_div_factor: PositiveFloat
    anneal_strategy: Literal["cos", "linear"]
    three_phase: bool
    cycle_momentum: bool

    @model_validator(mode="after")
    def _cycle(self) -> Self:
        if self.cycle_momentum and self.momentum_min is None:
            raise cross_field("schedule.cycle_momentum=true needs schedule.momentum_min (the lowest momentum): set "
                              "it, or schedule.cycle_momentum=false.")
        return self


Schedule = Annotated[OneCycle | Clr | Inv | MultiStep | Step | Exp | Constant | FastaiOneCycle | TorchOneCycle,
                     Field(discriminator="policy")]
SCHEDULES: tuple[type[_Schedule], ...] = get_args(get_args(Schedule)[0])


# --- trainer, augment, tracking ---------------------------------------------------------------------------------------

class Trainer(Group):
    total_batch: PositiveInt
    eval_batch: PositiveInt
    eval_every: PositiveInt
    max_iterations: PositiveInt | None
    log_every: PositiveInt
    checkpoint_every: NonNegativeInt | None  # 0 or null: only on signals and at the end
    divergence_factor: Factor | None
    fail_on_divergence: bool
    device: Device
    channels_last: bool
    cpu_mode: Literal[choices.CPU_MODES]  # type: ignore[valid-type]
    threads: PositiveInt | None
    progress: bool
    amp: Literal[AMP_DTYPES] | None  # type: ignore[valid-type]
    compile: bool
    cudnn_benchmark: bool
    sync_bn: bool


class Augment(Group):
    name: Text
    flip: bool
    crop_padding: NonNegativeInt
    pad_mode: Literal[choices.PAD_MODES]  # type: ignore[valid-type]


class Tracking(Group):
    enabled: bool
    uri: Text
    experiment: Text
    system_metrics: bool


# --- range test -------------------------------------------------------------------------------------------------------

class RangeTestValues(Group):
    """A protocol's values (range_test.linear / range_test.exponential), as a preset sets them."""

    start_lr: NonNegativeFloat = None  # type: ignore[assignment]
    end_lr: PositiveFloat = None  # type: ignore[assignment]
    iterations: Annotated[int, Ge(2)] = None  # type: ignore[assignment]
    eval_every: PositiveInt | None = None
    eval_size: PositiveInt = None  # type: ignore[assignment]


class RangeTestPreset(Group):
    """What a preset may set under range_test; a train config carries it unused."""

    linear: RangeTestValues = None  # type: ignore[assignment]
    exponential: RangeTestValues = None  # type: ignore[assignment]
    protocol: Literal["linear", "exponential"] = None  # type: ignore[assignment]
    start_lr: NonNegativeFloat = None  # type: ignore[assignment]
    end_lr: PositiveFloat = None  # type: ignore[assignment]
    iterations: Annotated[int, Ge(2)] = None  # type: ignore[assignment]
    eval_every: PositiveInt | None = None
    eval_size: PositiveInt = None  # type: ignore[assignment]
    momentum: Momentum = None  # type: ignore[assignment]
    smooth_beta: Fraction = None  # type: ignore[assignment]
    stop_factor: Factor | None = None
    diverge_factor: Factor | None = None
    rule: Literal[RULES] = None  # type: ignore[valid-type, assignment]
    min_lr_divisor: Annotated[float, Ge(1)] = None  # type: ignore[assignment]


class RangeTest(Group):
    """conf/range_test/*.yaml, as the range-test stage runs it (the protocol blocks feed the values below)."""

    linear: RangeTestValues = None  # type: ignore[assignment]
    exponential: RangeTestValues = None  # type: ignore[assignment]
    protocol: Literal["linear", "exponential"]
    start_lr: NonNegativeFloat
    end_lr: PositiveFloat
    iterations: Annotated[int, Ge(2)]
    eval_every: PositiveInt | None
    eval_size: PositiveInt
    momentum: Momentum
    smooth_beta: Fraction
    stop_factor: Factor | None
    diverge_factor: Factor | None
    rule: Literal[RULES]  # type: ignore[valid-type]
    min_lr_divisor: Annotated[float, Ge(1)]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.protocol == "exponential" and self.start_lr <= 0:
            raise cross_field(f"range_test.start_lr={self.start_lr!r} must be > 0 for exponential: an exponential "
                              "ramp cannot start at 0.")
        if self.end_lr <= self.start_lr:
            raise cross_field(f"range_test.end_lr={self.end_lr} must be above range_test.start_lr={self.start_lr}.")
        if self.eval_every is not None and self.eval_every > self.iterations:
            raise cross_field(f"range_test.eval_every={self.eval_every} is longer than range_test.iterations="
                              f"{self.iterations}.")
        if self.eval_every is None and self.rule == "accuracy_peak":
            raise cross_field("range_test.rule=accuracy_peak needs held-out evaluations, but range_test.eval_every "
                              "is null: set eval_every or pick a loss rule (valley, steepest, min_loss_div10).")
        return self


# --- entry configs ----------------------------------------------------------------------------------------------------

# --- recipes: recipe.<policy>, the paper's numbers a preset gives one policy ----------------------------------------

# The keys conf/schedule/<policy>.yaml takes from recipe.<policy> (tests/unit/test_config_schema.py holds these lists
# to those files); a recipe may also carry what a preset's other groups take from it by interpolation: a model's BN
# moving-average fraction (bn_maf) and the optimizer's weight_decay.
RECIPE_KEYS = {
    "one_cycle": ("unit", "length", "min_lr", "max_lr", "stepsize", "momentum", "momentum_min"),
    "triangular": ("unit", "length", "min_lr", "max_lr", "stepsize", "momentum", "gamma"),
    "fastai_one_cycle": ("unit", "length", "max_lr", "div", "div_final", "pct_start", "momentum", "momentum_min"),
    "torch_one_cycle": ("unit", "length", "max_lr", "pct_start", "div_factor", "final_div_factor", "anneal_strategy",
                        "three_phase", "cycle_momentum", "momentum", "momentum_min"),
    "inv": ("unit", "length", "base_lr", "gamma", "power", "momentum"),
    "multistep": ("unit", "length", "base_lr", "gamma", "steps", "momentum"),
    "step": ("unit", "length", "base_lr", "gamma", "stepsize", "momentum"),
    "exp": ("unit", "length", "base_lr", "gamma", "momentum"),
    "constant": ("unit", "length", "base_lr", "momentum", "momentum_min", "momentum_period"),
}
RECIPE_EXTRAS = {"bn_maf": Fraction, "weight_decay": NonNegativeFloat}
SCHEDULE_OF = {policy: model for model in SCHEDULES for policy in get_args(model.model_fields["policy"].annotation)}


def _recipe(policy: str) -> type[Group]:
    """recipe.<policy>, typed as the schedule types its values. Every key may be absent (presets merge their
    recipes, and a value the schedule needs but no preset gives is reported when it resolves), and a key nothing
    reads (a misspelling) is an error."""
    schedule = SCHEDULE_OF[policy]

    def typed(key: str) -> Any:
        if key in RECIPE_EXTRAS:
            return RECIPE_EXTRAS[key]
        info = schedule.model_fields[key]
        return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation

    # A default is not validated: an absent key stays None, while a null given is checked like any value.
    fields: dict[str, Any] = {key: (typed(key), None) for key in (*RECIPE_KEYS[policy], *RECIPE_EXTRAS)}
    return create_model(f"Recipe_{policy}", __base__=Group, __doc__=f"recipe.{policy}", **fields)


Recipe = create_model("Recipe", __base__=Group, __doc__="recipe: one entry per policy a preset gives numbers for",
                      **{policy: (_recipe(policy), None) for policy in RECIPE_KEYS})


class _Entry(Group):
    """What every entry config holds; a preset's helper keys are loose mappings."""

    # Groups first: a value interpolated from a group is reported where it is set.
    dataset: Dataset
    out: Text
    data_root: Text
    recipe: Recipe


class _Run(_Entry):
    """Training and range tests: the model, its optimizer, loop and tracking."""

    model: Model
    optimizer: Optimizer
    schedule: Schedule
    trainer: Trainer
    augment: Augment
    tracking: Tracking
    seed: Seed
    study: Text | None
    target_acc: Accuracy | None = None
    report_experiment: Text | None = None
    run_names: dict[str, Text] = {}
    row: dict[str, Text] = {}
    rows: dict[str, dict[str, AnyMapping]] = {}
    pc_published_acc: dict[str, Accuracy] = {}


class TrainConfig(_Run):
    """conf/train.yaml."""

    stage: Literal["train"]
    lr_from: Text | None
    range_test: RangeTestPreset = None  # type: ignore[assignment]


class RangeTestConfig(_Run):
    """conf/range_test.yaml."""

    stage: Literal["range_test"]
    range_test: RangeTest


Run = TrainConfig | RangeTestConfig  # what a training run or a range test validates to


class PrepareConfig(_Entry):
    """conf/prepare.yaml."""

    stage: Literal["prepare"]
    raw_root: Text


class Compare(Group):
    policy: Text
    baseline: Text

    @model_validator(mode="after")
    def _differ(self) -> Self:
        if self.policy == self.baseline:
            raise cross_field(f"compare.policy={self.policy!r} is also compare.baseline: compare two different runs.")
        return self


class ReportConfig(Group):
    """conf/report.yaml."""

    stage: Literal["report"]
    study: Text | None
    results: Text
    out: Text
    compare: Compare
    range_test_dir: Text | None
    tracking: Tracking


STAGES: dict[str, type[Group]] = {"train": TrainConfig, "range_test": RangeTestConfig, "prepare": PrepareConfig,
                                  "report": ReportConfig}
assert {p for s in SCHEDULES for p in get_args(s.model_fields["policy"].annotation)} == set(POLICIES), \
    "every schedule policy needs its model here"


def _source(cfg: DictConfig, key: str) -> str | None:
    """The interpolation a key's value came from (``${recipe.one_cycle.max_lr}``), to name where to fix it."""
    parent, _, last = key.rpartition(".")
    try:
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or last not in node or not OmegaConf.is_interpolation(node, last):
            return None
        return str(OmegaConf.to_container(node, resolve=False)[last])
    except OmegaConfBaseException:
        return None


def validated(cfg: DictConfig, stage: str) -> Group:
    """``cfg`` resolved and checked against the stage's schema (types, domains, unknown keys, rules within a
    group); the first problem becomes a one-line ConfigError naming the key, the value and what is expected."""
    try:
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "the config"
        raise ConfigError(f"{key} cannot be resolved ({str(err).splitlines()[0]}): set it, or fix the value it "
                          "refers to.") from None
    model = STAGES[stage]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(explain(err, model, stage, lambda key: _source(cfg, key))) from None


def validate_report(cfg: DictConfig) -> None:
    """Check a composed report config before any result is read."""
    validated(cfg, "report")
