"""Checkpoints that make a killed run resumable and bit-identical to an uninterrupted one (CPU).

A checkpoint holds the model and optimizer states, the next iteration (which fixes the schedule
position and, through the stateless loader, the data order), the RNG states, the metric rows so far
and the MLflow run id. It is written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from superconv.common.errors import ConfigError
from superconv.common.io import atomic_write

# The parts of a config that must not change between a run and its resumption.
IDENTITY_KEYS = ("stage", "seed", "dataset", "model", "optimizer", "schedule", "range_test", "trainer.total_batch",
                 "lr_from")


def config_fingerprint(cfg: DictConfig) -> str:
    """sha256 of the config keys that define a run (not its output dir, progress bar or tracking)."""
    picked = {key: OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=True)
              if OmegaConf.is_config(OmegaConf.select(cfg, key)) else OmegaConf.select(cfg, key)
              for key in IDENTITY_KEYS}
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda p: torch.save(payload, p))


def load_resumable(path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint of an unfinished run with this config, or None (fresh start).

    A finished run's checkpoint is not resumed: re-running a finished command trains again.
    """
    if not path.is_file():
        return None
    payload = torch.load(path, weights_only=True)
    if payload.get("complete", True):
        return None
    if payload["fingerprint"] != fingerprint:
        raise ConfigError(
            f"{path} holds an unfinished run with a different config: use another out=, or delete "
            "the checkpoint to start over."
        )
    return payload


@contextmanager
def stop_signals() -> Iterator[list[int]]:
    """Turn the first SIGINT/SIGTERM into a flag the loop polls (so it can checkpoint first)."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
