"""What every stage entry point shares: clean errors instead of tracebacks, Hydra run facts."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from superconv.common.errors import ConfigError, DataError, Diverged, StopRequested

log = logging.getLogger("superconv")

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


def hydra_choice(group: str, default: str | None) -> str | None:
    """The option chosen for a config group (e.g. schedule=one_cycle -> 'one_cycle')."""
    if not HydraConfig.initialized():
        return default
    return HydraConfig.get().runtime.choices.get(group) or default


def sweep_defaults(cfg: DictConfig) -> str | None:
    """In a -m sweep: each point writes to its own sweep subdir; the study is the sweep dir. ``out`` is the path
    as the sweep names it (relative stays relative), not Hydra's absolute ``runtime.output_dir``: config.yaml is
    committed, and a path of the machine that ran it would differ on every other."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    hc = HydraConfig.get()
    with open_dict(cfg):
        cfg.out = str(Path(hc.sweep.dir) / hc.sweep.subdir)
    return f"sweep:{hc.sweep.dir}"


def run_guarded(stage: Callable[[], Any]) -> Any:
    """Run a stage; bad input and divergence end with one clear line and a non-zero exit, no traceback."""
    try:
        return stage()
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except Diverged as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    except StopRequested as err:
        print(f"{err}", file=sys.stderr)
        sys.exit(128 + err.signum)
