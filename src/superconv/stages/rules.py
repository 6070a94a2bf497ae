"""The rules between a config's groups, after the schema (:mod:`superconv.stages.schema`) has checked each group:
validation returns the typed run and what was built on the way, before any data is read or device touched, so a
typo costs a second and a clear message naming the key, the value and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from superconv.common.errors import ConfigError
from superconv.core.data.augment import Augment
from superconv.core.distributed import world_size
from superconv.core.schedules import Schedule, build_schedule, to_iterations
from superconv.stages import compose, schema
from superconv.stages.schema import validated


@dataclass(frozen=True)
class Checked:
    """The validated run, typed (what the stage reads and hands to core), and what validation built on the way, so
    nothing is built twice."""

    run: schema.Run
    schedule: Schedule | None  # training's; the range test builds its ramp from range_test.*
    augment: Augment


def iterations_per_epoch(run: schema.Run | DictConfig) -> float:
    """Training images / total batch: converts epoch-based schedule lengths to iterations (of a validated run, or
    of a composed config for the benches)."""
    return run.dataset.train_size / run.trainer.total_batch


def require_resolvable(cfg: DictConfig, key: str) -> None:
    """Resolve ``key`` fully; a missing recipe value becomes an error that says what to set."""
    try:
        OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise ConfigError(
            f"{key} cannot be resolved ({str(err).splitlines()[0]}). The experiment preset has no recipe "
            "for this schedule: pick an experiment that has one, or give every value on the command line "
            f"(e.g. ++recipe.<policy>.max_lr=0.1)."
        ) from None


def _check_run(run: schema.Run, momentum: float) -> Augment:
    """Rules between the groups of a training run or range test, after the schema."""
    batch, world = run.trainer.total_batch, world_size()
    if batch % world:
        raise ConfigError(f"trainer.total_batch={batch} is not divisible by the world size {world}: pick a total "
                          "batch that is a multiple of the number of processes.")
    for key in ("in_channels", "image_size", "num_classes"):
        ours, theirs = getattr(run.model, key), getattr(run.dataset, key.removeprefix("in_"))
        if ours != theirs:
            raise ConfigError(f"model.{key}={ours!r} differs from dataset.{key.removeprefix('in_')}={theirs!r}: "
                              f"leave model.{key} to the dataset (${{dataset.{key.removeprefix('in_')}}}).")
    if isinstance(run.optimizer, schema.TorchSGD) and run.optimizer.nesterov and momentum <= 0:
        raise ConfigError(f"optimizer.nesterov=true needs a momentum above 0, but it starts at {momentum}: raise the "
                          "momentum or set optimizer.nesterov=false.")
    augment = run.augment
    if augment.pad_mode == "reflect" and augment.crop_padding >= run.dataset.image_size:
        raise ConfigError(f"augment.crop_padding={augment.crop_padding} must be below dataset.image_size="
                          f"{run.dataset.image_size} to pad by reflection (augment.pad_mode=reflect).")
    return Augment(flip=augment.flip, crop_padding=augment.crop_padding, pad_mode=augment.pad_mode)


def validate_train(cfg: DictConfig) -> Checked:
    """Check a composed training config; raise ConfigError naming the first bad value."""
    require_resolvable(cfg, "schedule")
    run = validated(cfg, "train")
    assert isinstance(run, schema.TrainConfig)
    schedule, given = run.schedule, cfg.schedule  # typed, and as written (5, not 5.0, in messages)
    per_epoch = iterations_per_epoch(run)
    augment = _check_run(run, schedule.momentum)
    for key, value in schedule.lengths().items():
        if to_iterations(value, schedule.unit, per_epoch) < 1:
            raise ConfigError(f"schedule.{key}={given[key]} ({schedule.unit}s) is under one iteration at "
                              f"{per_epoch:.4g} iterations per epoch (dataset.train_size / trainer.total_batch): "
                              "lengthen it.")
    built = build_schedule(schedule.model_dump(), per_epoch)
    if schedule.policy == "one_cycle":
        stepsize_its = to_iterations(schedule.stepsize, schedule.unit, per_epoch)
        if 2 * stepsize_its > built.iterations:
            raise ConfigError(
                f"schedule.stepsize={given.stepsize} ({schedule.unit}s) makes the cycle "
                f"({2 * stepsize_its} iterations) longer than schedule.length={given.length} "
                f"({built.iterations} iterations): shorten the stepsize or lengthen the run."
            )
    if run.trainer.eval_every > built.iterations:
        raise ConfigError(f"trainer.eval_every={run.trainer.eval_every} is longer than the run "
                          f"({built.iterations} iterations): evaluate more often.")
    return Checked(run, built, augment)


def validate_range_test(cfg: DictConfig) -> Checked:
    """Check a composed range-test config (values resolved, protocol and rule known, LR range usable), then cap it
    at trainer.max_iterations (``compose.cap_range_test``, in ``cfg`` and the typed run alike)."""
    require_resolvable(cfg, "range_test")
    run = validated(cfg, "range_test")
    assert isinstance(run, schema.RangeTestConfig)
    augment = _check_run(run, run.range_test.momentum)
    compose.cap_range_test(cfg)
    capped = {key: cfg.range_test[key] for key in ("iterations", "eval_every")}
    return Checked(run.model_copy(update={"range_test": run.range_test.model_copy(update=capped)}), None, augment)


def validate_prepare(cfg: DictConfig) -> schema.PrepareConfig:
    """Check a composed prepare config (the dataset's every value) before anything is fetched."""
    checked = validated(cfg, "prepare")
    assert isinstance(checked, schema.PrepareConfig)
    return checked
