"""The device-resident loader: deterministic batches, full epoch coverage, exact rank sharding."""

from __future__ import annotations

import torch

from superconv.core.data.augment import Augment
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import Split


def make_data(n: int = 10, seed: int = 0) -> DeviceData:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return DeviceData(Split(images, torch.arange(n)), torch.device("cpu"), input_scale=1.0, seed=seed)


def test_each_epoch_sees_every_sample_once_and_wraps_like_caffe() -> None:
    data = make_data(10)
    stream = torch.cat([data.batch_indices(k, 4) for k in range(5)])  # 20 = two epochs
    assert sorted(stream[:10].tolist()) == list(range(10))
    assert sorted(stream[10:].tolist()) == list(range(10))
    assert stream[:10].tolist() != stream[10:].tolist()  # a new permutation each epoch


def test_batches_are_a_pure_function_of_seed_and_iteration() -> None:
    a, b = make_data(seed=3), make_data(seed=3)
    assert torch.equal(a.batch_indices(7, 4), b.batch_indices(7, 4))
    later = [a.batch_indices(k, 4) for k in range(7, 9)]
    assert all(torch.equal(x, b.batch_indices(k, 4)) for x, k in zip(later, range(7, 9), strict=True))
    assert not torch.equal(make_data(seed=4).batch_indices(7, 4), a.batch_indices(7, 4))


def test_ranks_split_the_global_batch_exactly() -> None:
    data = make_data(10)
    whole = data.batch_indices(2, 6)
    shares = [data.batch_indices(2, 6, rank=r, world=2) for r in range(2)]
    assert sorted(torch.cat(shares).tolist()) == sorted(whole.tolist())
    assert len(shares[0]) == len(shares[1]) == 3


def test_inputs_use_caffe_scale_or_mean_std() -> None:
    images = torch.full((2, 1, 2, 2), 128, dtype=torch.uint8)
    split = Split(images, torch.zeros(2, dtype=torch.int64))
    scaled = DeviceData(split, torch.device("cpu"), input_scale=1 / 256)
    x, _ = scaled.batch(0, 2)
    assert torch.allclose(x, torch.full_like(x, 0.5))
    normed = DeviceData(split, torch.device("cpu"), mean=[0.5], std=[0.25])
    x, _ = normed.batch(0, 2)
    assert torch.allclose(x, torch.full_like(x, (128 / 255 - 0.5) / 0.25), atol=1e-6)


def augmented(seed: int = 0) -> DeviceData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 6, 6), generator=g, dtype=torch.uint8)
    return DeviceData(Split(images, torch.arange(40)), torch.device("cpu"), input_scale=1.0, seed=seed,
                      augment=Augment(flip=True, crop_padding=2))


def test_augmented_batches_are_reproducible_per_iteration_and_world_size_free() -> None:
    data = augmented()
    x, y = data.batch(3, 8)
    assert torch.equal(x, augmented().batch(3, 8)[0]), "batch k is a pure function of (seed, k)"
    plain = DeviceData(data.split, data.device, input_scale=1.0).inputs(data.split.images[y])
    assert not torch.equal(x, plain), "augmentation changed the pixels"
    assert not torch.equal(x, data.batch(4, 8)[0][: len(x)])
    shares = [data.batch(3, 8, rank=r, world=2)[0] for r in range(2)]
    assert torch.equal(shares[0], x[0::2]) and torch.equal(shares[1], x[1::2])
    assert not torch.equal(augmented(seed=1).batch(3, 8)[0], x)


def test_evaluation_chunks_of_all_ranks_cover_the_limit_once() -> None:
    data = make_data(10)
    for world in (1, 2, 3):
        labels = [y for r in range(world) for _, y in data.chunks(2, limit=7, rank=r, world=world)]
        assert torch.cat(labels).tolist() == list(range(7))
