"""Device-resident data: the whole split lives on the training device as uint8.

Batch ``k`` of a run is a pure function of (seed, k): the index stream is the concatenation of one
seeded permutation per epoch, cut into total-batch slices (Caffe's wrap-around, no dropped tail). So a
resumed run sees exactly the batches an uninterrupted one would, and under DDP each rank takes its
strided share of the same global batch. Augmentation (training split only) draws from a generator
seeded by (seed, k) for the whole global batch, so it too is the same for any world size and on resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from superconv.core.data.augment import Augment
from superconv.core.data.prepared import Split

# Seeds of the per-batch augmentation generators: apart from the epoch permutations' seeds.
AUGMENT_STREAM = 1 << 62


@dataclass
class DeviceData:
    """A split on ``device`` plus how to turn uint8 pixels into model inputs."""

    split: Split
    device: torch.device
    input_scale: float | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    seed: int = 0
    channels_last: bool = False
    augment: Augment = field(default_factory=Augment)
    _images: torch.Tensor = field(init=False, repr=False)
    _labels: torch.Tensor = field(init=False, repr=False)
    _perm_cache: dict[int, torch.Tensor] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._images = self.split.images.to(self.device)
        self._labels = self.split.labels.to(self.device)
        if self.mean is not None:
            shape = (1, -1, 1, 1)
            self._mean = torch.tensor(self.mean, device=self.device).view(shape)
            self._std = torch.tensor(self.std, device=self.device).view(shape)

    def __len__(self) -> int:
        return len(self._labels)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 -> float: Caffe-style scaling (LeNet's 1/256) or mean/std normalisation."""
        x = images.float()
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.mean is not None:
            return (x / 255.0 - self._mean) / self._std
        return x * (self.input_scale if self.input_scale is not None else 1.0 / 255.0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perm_cache:
            if len(self._perm_cache) > 2:
                self._perm_cache.pop(min(self._perm_cache))
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm_cache[epoch] = torch.randperm(len(self), generator=g).to(self.device)
        return self._perm_cache[epoch]

    def batch_indices(self, iteration: int, total_batch: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """Indices of this rank's share of global batch ``iteration``."""
        n = len(self)
        start = iteration * total_batch
        parts, need = [], total_batch
        epoch, offset = divmod(start, n)
        while need > 0:
            take = self._permutation(epoch)[offset : offset + need]
            parts.append(take)
            need -= len(take)
            epoch, offset = epoch + 1, 0
        return torch.cat(parts)[rank::world]

    def batch(self, iteration: int, total_batch: int, rank: int = 0, world: int = 1) -> tuple[
            torch.Tensor, torch.Tensor]:
        """Model inputs and labels of this rank's share of global batch ``iteration``."""
        idx = self.batch_indices(iteration, total_batch, rank, world)
        images = self._images[idx]
        if self.augment.active:
            generator = torch.Generator(self.device).manual_seed(AUGMENT_STREAM + self.seed * 1_000_003 + iteration)
            images = self.augment(images, generator, rank, world)
        return self.inputs(images), self._labels[idx]

    def chunks(self, batch_size: int, limit: int | None = None, rank: int = 0,
               world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """In-order (inputs, labels) chunks for evaluation over this rank's contiguous share of the first
        ``limit`` samples (the shares of all ranks cover them exactly once)."""
        n = len(self) if limit is None else min(limit, len(self))
        first, end = n * rank // world, n * (rank + 1) // world
        for start in range(first, end, batch_size):
            stop = min(start + batch_size, end)
            yield self.inputs(self._images[start:stop]), self._labels[start:stop]
