"""Batched augmentation on device-resident uint8 NCHW batches (airbench-style, no per-image Python loop).

Per-sample torchvision transforms cost ~120 us/image on a CPU core; doing the same random crop and flip
as a handful of tensor ops on the whole batch keeps augmentation off the critical path. Every random
draw comes from the caller's ``torch.Generator``, so batch k of a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from superconv.core.choices import PAD_MODES


def _flip_draws(n: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device) < 0.5


def _shift_draws(n: int, padding: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2 * padding + 1, (n, 2), generator=generator, device=generator.device)


def _apply_flips(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    return torch.where(flips.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def pad(images: torch.Tensor, padding: int, mode: str) -> torch.Tensor:
    """Pad H and W by ``padding`` on every side with zeros or a reflection of the border."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad mode {mode!r}; allowed: {', '.join(PAD_MODES)}")
    if mode == "zero":
        return F.pad(images, (padding,) * 4)
    return F.pad(images.float(), (padding,) * 4, mode="reflect").to(images.dtype)


def crop_at(padded: torch.Tensor, shifts: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Image n cut from ``padded[n]`` at top-left ``shifts[n] = (dy, dx)``: one ``gather`` over flat pixels."""
    n, c, padded_h, padded_w = padded.shape
    device = padded.device
    rows = (shifts[:, 0:1] + torch.arange(height, device=device)).view(n, height, 1)
    cols = (shifts[:, 1:2] + torch.arange(width, device=device)).view(n, 1, width)
    flat = (rows * padded_w + cols).view(n, 1, height * width).expand(n, c, height * width)
    return padded.reshape(n, c, padded_h * padded_w).gather(2, flat).view(n, c, height, width)


@dataclass(frozen=True)
class Augment:
    """What ``conf/augment/*.yaml`` describes: crop padding (0 = no crop), its pad mode, and flipping."""

    flip: bool = False
    crop_padding: int = 0
    pad_mode: str = "zero"

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.pad_mode not in PAD_MODES:
            raise ValueError(f"augment.crop_padding={self.crop_padding} must be >= 0 and augment.pad_mode="
                             f"{self.pad_mode!r} one of {', '.join(PAD_MODES)}")

    @classmethod
    def from_config(cls, cfg: Any) -> Augment:
        return cls(flip=bool(cfg.flip), crop_padding=int(cfg.crop_padding), pad_mode=str(cfg.pad_mode))

    @property
    def active(self) -> bool:
        return self.flip or self.crop_padding > 0

    def __call__(self, images: torch.Tensor, generator: torch.Generator, rank: int = 0, world: int = 1) -> torch.Tensor:
        """Crop, then flip (torchvision's usual order), drawing everything from ``generator``.

        ``images`` is rank ``rank``'s strided share of a global batch of ``len(images) * world``: the draws
        are made for the whole global batch and sliced the same way, so any world size augments alike.
        """
        n, (h, w) = len(images) * world, images.shape[-2:]
        out = images
        if self.crop_padding:
            shifts = _shift_draws(n, self.crop_padding, generator)[rank::world]
            out = crop_at(pad(out, self.crop_padding, self.pad_mode), shifts.to(out.device), h, w)
        if self.flip:
            out = _apply_flips(out, _flip_draws(n, generator)[rank::world])
        return out
