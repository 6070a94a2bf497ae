"""Composing the Hydra configs in ``conf/`` as each stage's @hydra.main would (tests, CLIs, the study runner), and
the one resolver the configs use."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from superconv.common.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CONF_DIR = PROJECT_ROOT / "conf"

log = logging.getLogger(__name__)


def subset_name(name: str, train_size: int, full_train_size: int, subset_seed: int) -> str:
    """A prepared dataset's folder: ``cifar10``, or ``cifar10-10000`` (``-seed1``...) for a training subset,
    so preparing a subset never replaces the full set."""
    if train_size == full_train_size:
        return name
    return f"{name}-{train_size}" + (f"-seed{subset_seed}" if subset_seed else "")


OmegaConf.register_new_resolver("superconv.subset_name", subset_name, replace=True)


def compose_stage_config(stage: str, overrides: list[str]) -> DictConfig:
    """Compose ``conf/<stage>.yaml`` with overrides, as the stage's @hydra.main would (tests, CLIs); an override
    Hydra cannot apply (an unknown option or key, bad syntax) is a one-line ConfigError."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    if not CONF_DIR.is_dir():
        raise ConfigError(f"{CONF_DIR} not found: superconv composes the conf/ of its checkout; install it from one "
                          "(pip install -e .)")

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


def report_names(cfg: DictConfig, experiment: str | None, schedule: str) -> tuple[str | None, str]:
    """The (experiment, run) summary.json carries: published.yaml's names (a preset's ``report_experiment`` and
    ``run_names``), so the report sets the run beside its published row; else the preset's and schedule's names."""
    name = OmegaConf.select(cfg, "report_experiment", default=None) or experiment
    run = OmegaConf.select(cfg, f"run_names.{schedule}", default=None) or schedule
    return name, str(run)


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


def apply_lr_from(cfg: DictConfig) -> str:
    """Take min_lr/max_lr from a range test's suggestion.json when ``lr_from`` is set; say which."""
    if not cfg.lr_from:
        return "config"
    path = Path(cfg.lr_from)
    if not path.is_file():
        raise ConfigError(f"lr_from={cfg.lr_from!r} does not exist: run the range test first or drop lr_from.")
    found = json.loads(path.read_text())
    schedule = cfg.schedule
    if "max_lr" not in schedule:
        raise ConfigError(f"lr_from needs a schedule with min_lr/max_lr; schedule.policy={schedule.policy!r}.")
    for key, ours in (("dataset", cfg.dataset.name), ("model", cfg.model._target_)):
        if found.get(key, ours) != ours:
            log.warning("lr_from=%s was measured with %s=%s, but this run uses %s", path, key, found[key], ours)
    with open_dict(cfg):
        schedule.max_lr = float(found["max_lr"])
        schedule.min_lr = float(found["min_lr"])
    return str(path)
