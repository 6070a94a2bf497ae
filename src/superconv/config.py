"""Composing, validating and reading the Hydra configs in ``conf/``.

Validation runs before any data is read or any device touched, so a typo costs a second and a
clear message naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from superconv.distributed import world_size
from superconv.schedules import POLICIES, build_schedule, to_iterations

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


def subset_name(name: str, train_size: int, full_train_size: int, subset_seed: int) -> str:
    """A prepared dataset's folder: ``cifar10``, or ``cifar10-10000`` (``-seed1``...) for a training subset,
    so preparing a subset never replaces the full set."""
    if train_size == full_train_size:
        return name
    return f"{name}-{train_size}" + (f"-seed{subset_seed}" if subset_seed else "")


OmegaConf.register_new_resolver("superconv.subset_name", subset_name, replace=True)


class ConfigError(ValueError):
    """A bad config value: the message names the key, the value and the fix."""


def compose_stage_config(stage: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<stage>.yaml`` with overrides, as the stage's @hydra.main would (tests, CLIs)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=stage, overrides=overrides)


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


def _positive(key: str, value: Any) -> None:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{key}={value!r} must be a finite number > 0.")


def _momentum(key: str, value: Any) -> None:
    """SGD momentum is a fraction of the last step kept: 1 never forgets a gradient, above 1 or below 0 diverges."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(f"{key}={value!r} must be in [0, 1): a number >= 0 and below 1.")


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


def validate_common(cfg: DictConfig) -> None:
    """Checks shared by training and range tests."""
    _positive("trainer.total_batch", cfg.trainer.total_batch)
    if cfg.trainer.total_batch % world_size():
        raise ConfigError(f"trainer.total_batch={cfg.trainer.total_batch} is not divisible by the world size "
                          f"{world_size()}: pick a total batch that is a multiple of the number of processes.")
    _positive("trainer.eval_batch", cfg.trainer.eval_batch)
    if cfg.trainer.max_iterations is not None:
        _positive("trainer.max_iterations", cfg.trainer.max_iterations)
    wd = cfg.optimizer.weight_decay
    if wd is None or wd < 0:
        raise ConfigError(f"optimizer.weight_decay={wd!r} must be >= 0.")
    from superconv.engine import AMP_DTYPES

    if cfg.trainer.amp is not None and cfg.trainer.amp not in AMP_DTYPES:
        raise ConfigError(f"trainer.amp={cfg.trainer.amp!r}; allowed: null (fp32), {', '.join(AMP_DTYPES)}.")
    from superconv.data.augment import Augment

    try:
        Augment.from_config(cfg.augment)
    except ValueError as err:
        raise ConfigError(str(err)) from None


def validate_train(cfg: DictConfig) -> None:
    """Check a composed training config; raise ConfigError naming the first bad value."""
    validate_common(cfg)
    require_resolvable(cfg, "schedule")
    schedule = cfg.schedule
    policy = schedule.policy
    if policy not in POLICIES:
        raise ConfigError(f"schedule.policy={policy!r} is unknown; allowed: {', '.join(POLICIES)}.")
    for key in ("min_lr", "max_lr", "base_lr"):
        if key in schedule:
            _positive(f"schedule.{key}", schedule[key])
    if "min_lr" in schedule and schedule.min_lr > schedule.max_lr:
        raise ConfigError(
            f"schedule.min_lr={schedule.min_lr} is above schedule.max_lr={schedule.max_lr}: swap them."
        )
    _momentum("optimizer.momentum", cfg.optimizer.get("momentum", 0.0))
    _momentum("schedule.momentum", schedule.get("momentum"))
    if schedule.get("momentum_min") is not None:
        _momentum("schedule.momentum_min", schedule.momentum_min)
    _positive("schedule.length", schedule.length)
    for key in ("div", "div_final", "div_factor", "final_div_factor"):
        if key in schedule:
            _positive(f"schedule.{key}", schedule[key])
    if "pct_start" in schedule and not 0 < schedule.pct_start < 1:
        raise ConfigError(f"schedule.pct_start={schedule.pct_start!r} must be in (0, 1).")
    if schedule.get("anneal_strategy", "cos") not in ("cos", "linear"):
        raise ConfigError(f"schedule.anneal_strategy={schedule.anneal_strategy!r}; allowed: cos, linear.")
    built = build_schedule(schedule, iterations_per_epoch(cfg))
    if schedule.policy == "one_cycle":
        stepsize_its = to_iterations(schedule.stepsize, schedule.unit, iterations_per_epoch(cfg))
        if 2 * stepsize_its > built.iterations:
            raise ConfigError(
                f"schedule.stepsize={schedule.stepsize} ({schedule.unit}s) makes the cycle "
                f"({2 * stepsize_its} iterations) longer than schedule.length={schedule.length} "
                f"({built.iterations} iterations): shorten the stepsize or lengthen the run."
            )
    target = cfg.target_acc
    if target is not None and (not isinstance(target, int | float) or not 0 < target <= 100):
        raise ConfigError(f"target_acc={target!r} must be a test accuracy in (0, 100] percent, or null.")
    _positive("trainer.eval_every", cfg.trainer.eval_every)
    if cfg.trainer.eval_every > built.iterations:
        raise ConfigError(f"trainer.eval_every={cfg.trainer.eval_every} is longer than the run "
                          f"({built.iterations} iterations): evaluate more often.")


def validate_range_test(cfg: DictConfig) -> None:
    """Check a composed range-test config (values resolved, protocol and rule known, LR range usable)."""
    from superconv.range_rules import RULES

    validate_common(cfg)
    require_resolvable(cfg, "range_test")
    rt = cfg.range_test
    if rt.protocol not in ("linear", "exponential"):
        raise ConfigError(f"range_test.protocol={rt.protocol!r}; allowed: linear, exponential.")
    if rt.rule not in RULES:
        raise ConfigError(f"range_test.rule={rt.rule!r} is unknown; allowed: {', '.join(RULES)}.")
    if not isinstance(rt.start_lr, int | float) or rt.start_lr < 0 or (
            rt.protocol == "exponential" and rt.start_lr <= 0):
        raise ConfigError(f"range_test.start_lr={rt.start_lr!r} must be >= 0 (> 0 for exponential: "
                          "an exponential ramp cannot start at 0).")
    _positive("range_test.end_lr", rt.end_lr)
    if rt.end_lr <= rt.start_lr:
        raise ConfigError(
            f"range_test.end_lr={rt.end_lr} must be above range_test.start_lr={rt.start_lr}."
        )
    if not isinstance(rt.iterations, int) or rt.iterations < 2:
        raise ConfigError(f"range_test.iterations={rt.iterations!r} must be an integer >= 2.")
    if rt.eval_every is not None:
        _positive("range_test.eval_every", rt.eval_every)
        if rt.eval_every > rt.iterations:
            raise ConfigError(
                f"range_test.eval_every={rt.eval_every} is longer than range_test.iterations={rt.iterations}."
            )
        _positive("range_test.eval_size", rt.eval_size)
    elif rt.rule == "accuracy_peak":
        raise ConfigError("range_test.rule=accuracy_peak needs held-out evaluations, but range_test.eval_every "
                          "is null: set eval_every or pick a loss rule (valley, steepest, min_loss_div10).")
    if not isinstance(rt.min_lr_divisor, int | float) or rt.min_lr_divisor < 1:
        raise ConfigError(f"range_test.min_lr_divisor={rt.min_lr_divisor!r} must be >= 1 (min_lr = max_lr / it).")
    _momentum("range_test.momentum", rt.momentum)
    if not 0 <= rt.smooth_beta < 1:
        raise ConfigError(f"range_test.smooth_beta={rt.smooth_beta!r} must be in [0, 1).")
    for key in ("stop_factor", "diverge_factor"):
        factor = rt[key]
        if factor is not None and (not isinstance(factor, int | float) or factor <= 1):
            raise ConfigError(f"range_test.{key}={factor!r} must be null or > 1 (a multiple of the best "
                              "smoothed loss).")
