"""torchrun/DDP facts every module needs: rank, world size, and the rank-0 guard."""

from __future__ import annotations

import os


def rank() -> int:
    """Global rank under torchrun (RANK), 0 otherwise."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank0() -> bool:
    """Only global rank 0 writes files and talks to MLflow."""
    return rank() == 0
