"""Checkpoints that make a killed run resumable and bit-identical to an uninterrupted one (CPU).

A checkpoint holds the model and optimizer states, the next iteration (which fixes the schedule
position and, through the stateless loader, the data order), the RNG states, the metric rows so far
and the MLflow run id. It is written atomically and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from superconv.common.errors import ConfigError
from superconv.common.io import atomic_write
from superconv.common.provenance import identity_changes


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


def load_resumable(path: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint of an unfinished run with this identity (``provenance.run_identity``), or None (fresh
    start); an unfinished run of any other identity is a ConfigError naming each changed key with both values.

    A finished run's checkpoint is not resumed: re-running a finished command trains again.
    """
    if not path.is_file():
        return None
    payload = torch.load(path, weights_only=True)
    if payload.get("complete", True):
        return None
    saved = json.loads(payload["identity"]) if "identity" in payload else {}
    changed = identity_changes(saved, identity) if saved else ["(a checkpoint of an older superconv)"]
    if changed:
        raise ConfigError(f"{path} holds an unfinished run of another config ({'; '.join(changed)}): run it "
                          "with its own config to resume, use another out=, or delete the checkpoint to start over.")
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
