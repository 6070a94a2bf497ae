"""The ways a stage stops on purpose, each mapped by the CLI to one line and its own exit code."""

from __future__ import annotations

import signal
from pathlib import Path


class ConfigError(ValueError):
    """A bad config value: the message names the key, the value and the fix (exit 2)."""


class DataError(RuntimeError):
    """A dataset is missing, corrupt or inconsistent with its config; the message says the fix (exit 2)."""


class Diverged(RuntimeError):
    """Training stopped on a non-finite or exploding loss; outputs hold what it had (exit 3)."""

    def __init__(self, reason: str, out: Path) -> None:
        super().__init__(f"training diverged: {reason}. What it had is in {out}.")


class StopRequested(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived; the loop saved a checkpoint and stops (exit 128 + signal; MLflow: KILLED)."""

    def __init__(self, signum: int, iteration: int, path: Path) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name} after iteration {iteration}; checkpoint in "
                         f"{path}: re-run the same command to resume")
