"""Batched crop/flip: exact geometry, identities, and determinism under a torch.Generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from superconv.core.data.augment import Augment, crop_at, pad
from superconv.stages.compose import CONF_DIR


def batch(n: int = 64, seed: int = 0, size: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return Augment(flip=True)(images, generator)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator, mode: str = "zero") -> torch.Tensor:
    return Augment(crop_padding=padding, pad_mode=mode)(images, generator)


def test_flipping_twice_with_the_same_draws_is_the_identity() -> None:
    x = batch()
    assert torch.equal(random_flip(random_flip(x, gen(3)), gen(3)), x)


def test_flip_mirrors_some_images_and_keeps_the_rest() -> None:
    x = batch()
    out = random_flip(x, gen(0))
    mirrored = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 0 < sum(mirrored) < len(x)


def test_crop_at_zero_shift_of_the_unpadded_image_is_the_identity() -> None:
    x = batch()
    assert torch.equal(crop_at(x, torch.zeros(len(x), 2, dtype=torch.long), 8, 8), x)
    centre = torch.full((len(x), 2), 4, dtype=torch.long)
    assert torch.equal(crop_at(pad(x, 4, "zero"), centre, 8, 8), x)
    assert Augment()(x, gen(0)) is x


@pytest.mark.parametrize("mode,np_mode", [("zero", "constant"), ("reflect", "reflect")])
def test_each_crop_is_the_padded_source_at_its_drawn_offset(mode: str, np_mode: str) -> None:
    x, p = batch(n=200), 3
    out = random_crop(x, p, gen(7), mode)
    shifts = torch.randint(0, 2 * p + 1, (len(x), 2), generator=gen(7))  # the draws random_crop made
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (p, p), (p, p)), mode=np_mode)
    for n, (dy, dx) in enumerate(shifts.tolist()):
        assert np.array_equal(out[n].numpy(), padded[n, :, dy:dy + 8, dx:dx + 8])
    assert {tuple(s) for s in shifts.tolist()} == {(a, b) for a in range(2 * p + 1) for b in range(2 * p + 1)}
    assert out.dtype == torch.uint8 and out.shape == x.shape


def test_zero_padding_shows_up_as_black_borders() -> None:
    out = random_crop(batch(n=200), 4, gen(1), "zero")
    assert (out == 0).any() and not (batch(n=200) == 0).any()


def test_same_seed_same_batch_other_seed_other_batch() -> None:
    x = batch()
    aug = Augment(flip=True, crop_padding=4)
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


def test_augment_configs_build_and_bad_values_are_refused() -> None:
    built = {p.stem: Augment.from_config(OmegaConf.load(p)) for p in (CONF_DIR / "augment").glob("*.yaml")}
    assert built == {"none": Augment(), "flip": Augment(flip=True),
                     "crop_flip": Augment(flip=True, crop_padding=4, pad_mode="zero")}
    x = batch()
    assert torch.equal(built["none"](x, gen(0)), x)
    with pytest.raises(ValueError, match="pad_mode"):
        Augment(crop_padding=4, pad_mode="wrap")


@pytest.mark.parametrize("world", [2, 4])
def test_rank_shares_of_a_global_batch_are_augmented_as_the_whole_batch(world: int) -> None:
    x, aug = batch(n=64), Augment(flip=True, crop_padding=2, pad_mode="reflect")
    whole = aug(x, gen(9))
    for rank in range(world):
        assert torch.equal(aug(x[rank::world], gen(9), rank, world), whole[rank::world])
