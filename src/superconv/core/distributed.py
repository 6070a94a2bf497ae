"""torchrun/DDP: rank and world size, the rank-0 guard, the process group, the DDP wrapper, reductions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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

    return global_sum(value) / dist.get_world_size()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on any rank, so all ranks stop at the same iteration; ``flag`` without DDP."""
    if not _initialised():
        return flag
    import torch.distributed as dist

    t = torch.tensor(int(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def local_rank() -> int:
    """This process's GPU index on its node (torchrun's LOCAL_RANK)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


@contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Join torchrun's process group for the stage (NCCL on CUDA, gloo on CPU) and leave it after.

    A no-op with one process or when the caller already joined (tests that spawn ranks themselves).
    """
    import torch.distributed as dist

    if world_size() == 1 or _initialised():
        yield
        return
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap_for_ddp(model: torch.nn.Module, device: torch.device, sync_bn: bool) -> torch.nn.Module:
    """DistributedDataParallel around ``model`` under torchrun (SyncBatchNorm first when asked); else ``model``."""
    if not _initialised():
        return model
    from torch.nn.parallel import DistributedDataParallel

    if sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def global_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over all ranks; identity without torch.distributed."""
    if not _initialised():
        return values
    import torch.distributed as dist

    total = values.detach().clone()
    dist.all_reduce(total)
    return total


def barrier() -> None:
    """Wait for every rank; a no-op without torch.distributed."""
    if _initialised():
        import torch.distributed as dist

        dist.barrier()
