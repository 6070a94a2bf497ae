"""torchrun/DDP facts every module needs: rank, world size, and the rank-0 guard."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def rank() -> int:
    """Global rank under torchrun (RANK), 0 otherwise."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_rank0() -> bool:
    """Only global rank 0 writes files and talks to MLflow."""
    return rank() == 0


def _initialised() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def global_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a scalar over all ranks (so every rank sees the same curve); identity without torch.distributed."""
    if not _initialised():
        return value
    import torch.distributed as dist

    total = value.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank, so all ranks stop at the same iteration; ``flag`` without DDP."""
    if not _initialised():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor(int(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
