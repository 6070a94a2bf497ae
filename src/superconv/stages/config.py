"""Composing, validating and reading the Hydra configs in ``conf/``.

Validation runs before any data is read or any device touched, so a typo costs a second and a
clear message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from superconv.common.errors import ConfigError
from superconv.core.data.augment import Augment
from superconv.core.distributed import world_size
from superconv.core.schedules import Schedule, build_schedule, to_iterations
from superconv.stages import schema
from superconv.stages.schema import validate_report as validate_report  # the report stage's, without core
from superconv.stages.schema import validated

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONF_DIR = PROJECT_ROOT / "conf"


def subset_name(name: str, train_size: int, full_train_size: int, subset_seed: int) -> str:
    """A prepared dataset's folder: ``cifar10``, or ``cifar10-10000`` (``-seed1``...) for a training subset,
    so preparing a subset never replaces the full set."""
    if train_size == full_train_size:
        return name
    return f"{name}-{train_size}" + (f"-seed{subset_seed}" if subset_seed else "")


OmegaConf.register_new_resolver("superconv.subset_name", subset_name, replace=True)


@dataclass(frozen=True)
class Checked:
    """What validation built on the way, handed to the stage so nothing is built twice."""

    schedule: Schedule | None  # training's; the range test builds its ramp from range_test.*
    augment: Augment


def compose_stage_config(stage: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<stage>.yaml`` with overrides, as the stage's @hydra.main would (tests, CLIs); an override
    Hydra cannot apply (an unknown option or key, bad syntax) is a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name=stage, overrides=overrides)
    except HydraException as err:
        bad = getattr(err, "override", None)  # a syntax error names only the text it stopped at
        raise ConfigError((f"{bad}: " if bad else "") + _one_line(str(err))) from None


def _one_line(text: str) -> str:
    """Hydra's message on one line: ``Could not find 'schedule/x'; Available options in 'schedule': a, b``."""
    lines: list[str] = []
    for line in (part.strip() for part in text.split("Config search path:")[0].splitlines()):
        if not line or line.startswith("See https://hydra.cc"):
            continue
        if lines and lines[-1].endswith(":"):
            lines[-1] += f" {line}"
        elif lines and lines[-1].startswith("Available options"):
            lines[-1] += f", {line}"
        else:
            lines.append(line)
    return "; ".join(lines)


def iterations_per_epoch(cfg: DictConfig) -> float:
    """Training images / total batch: converts epoch-based schedule lengths to iterations."""
    return cfg.dataset.train_size / cfg.trainer.total_batch


def report_names(cfg: DictConfig, experiment: str | None, schedule: str) -> tuple[str | None, str]:
    """The (experiment, run) summary.json carries: published.yaml's names (a preset's ``report_experiment`` and
    ``run_names``), so the report sets the run beside its published row; else the preset's and schedule's names."""
    name = OmegaConf.select(cfg, "report_experiment", default=None) or experiment
    run = OmegaConf.select(cfg, f"run_names.{schedule}", default=None) or schedule
    return name, str(run)


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


def check_writable(key: str, directory: str) -> None:
    """Create ``directory`` and prove it takes a file, before any compute is spent."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={directory!r} is not a writable directory ({err.strerror}): "
                          "choose another.") from None


def _check_host_allowed(uri: str) -> None:
    """MLflow >= 3.5 servers answer /health to any Host header but refuse API calls (403) from host names
    outside ``--allowed-hosts`` (default: localhost and private IPs); say so now rather than at the first
    logging call. Any other answer of the probe is left to MLflow (e.g. 401 from an authenticating server)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1",
                                    timeout=5):
            return
    except urllib.error.HTTPError as err:
        if err.code == 403 and err.read(200).startswith(b"Invalid Host header"):
            host = urllib.parse.urlparse(uri).netloc
            raise ConfigError(f"tracking.uri={uri}: the MLflow server refuses the host name {host!r} (Invalid Host "
                              f"header): start it with --allowed-hosts {host}, or reach it as localhost through an "
                              "SSH tunnel.") from None
    except Exception:  # the server answered /health; anything else is MLflow's to report
        return


def check_tracking(cfg: DictConfig) -> None:
    """Fail at start, not after training, when the MLflow store cannot be reached."""
    if not cfg.tracking.enabled:
        return
    uri = str(cfg.tracking.uri)
    fix = "start the server, fix MLFLOW_TRACKING_URI / tracking.uri, or set tracking.enabled=false"
    if uri.startswith(("http://", "https://")):
        import http.client
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as answer:
                answer.read()
        # OSError: refused, timed out, no such host, an HTTP error status (403 from a host allow-list);
        # HTTPException: something that is not an HTTP server listens there (an SSH port, a database);
        # ValueError: a malformed URI (http.client.InvalidURL, e.g. a non-numeric port).
        except (OSError, http.client.HTTPException, ValueError) as err:
            reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line, whatever the server sent
            raise ConfigError(f"tracking.uri={uri} cannot be reached ({reason}): {fix}.") from None
        _check_host_allowed(uri)
    elif uri.startswith("sqlite:///"):
        db_dir = Path(uri.removeprefix("sqlite:///")).parent
        if not db_dir.is_dir() or not os.access(db_dir, os.W_OK):
            raise ConfigError(f"tracking.uri={uri}: directory {str(db_dir)!r} does not exist or is not writable: "
                              f"{fix}.")


def _check_run(run: schema.TrainConfig | schema.RangeTestConfig, momentum: float) -> Augment:
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
    per_epoch = iterations_per_epoch(cfg)
    augment = _check_run(run, schedule.momentum)
    for key, value in schedule.lengths().items():
        if to_iterations(value, schedule.unit, per_epoch) < 1:
            raise ConfigError(f"schedule.{key}={given[key]} ({schedule.unit}s) is under one iteration at "
                              f"{per_epoch:.4g} iterations per epoch (dataset.train_size / trainer.total_batch): "
                              "lengthen it.")
    built = build_schedule(given, per_epoch)
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
    return Checked(built, augment)


def validate_range_test(cfg: DictConfig) -> Checked:
    """Check a composed range-test config (values resolved, protocol and rule known, LR range usable)."""
    require_resolvable(cfg, "range_test")
    run = validated(cfg, "range_test")
    assert isinstance(run, schema.RangeTestConfig)
    return Checked(None, _check_run(run, run.range_test.momentum))


def cap_range_test(cfg: DictConfig) -> None:
    """Cap ``range_test.iterations`` (and its eval interval) at ``trainer.max_iterations``, in place, as that
    caps training. The capped config is what runs and is written beside the result, so a study composing the
    same overrides applies this too before it compares the two."""
    if cfg.trainer.max_iterations is None:
        return
    rt = cfg.range_test
    with open_dict(cfg):
        rt.iterations = min(rt.iterations, int(cfg.trainer.max_iterations))
        if rt.eval_every is not None:
            rt.eval_every = min(rt.eval_every, rt.iterations)


def validate_prepare(cfg: DictConfig) -> None:
    """Check a composed prepare config (the dataset's every value) before anything is fetched."""
    validated(cfg, "prepare")


