"""Class-stratified training subsets: exact counts, seed-determinism, clear errors."""

from __future__ import annotations

import pytest
import torch

from superconv.common.errors import DataError
from superconv.core.data.prepared import Split
from superconv.core.data.subset import class_counts, stratified_indices, stratified_subset


def labels(per_class: list[int]) -> torch.Tensor:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(per_class)])
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


def test_exact_per_class_counts_in_original_order() -> None:
    y = labels([30, 50, 41])
    split = Split(torch.arange(len(y), dtype=torch.uint8).view(-1, 1, 1, 1), y)
    sub = stratified_subset(split, 60, 3, seed=0)
    assert class_counts(sub.labels, 3) == [20, 20, 20]
    idx = stratified_indices(y, 60, 3, seed=0)
    assert torch.equal(idx, torch.sort(idx).values) and len(set(idx.tolist())) == 60
    assert torch.equal(sub.images.flatten().long(), idx) and torch.equal(sub.labels, y[idx])


def test_same_seed_same_subset_other_seed_other_subset() -> None:
    y = labels([100] * 10)
    assert torch.equal(stratified_indices(y, 200, 10, seed=1), stratified_indices(y, 200, 10, seed=1))
    assert not torch.equal(stratified_indices(y, 200, 10, seed=1), stratified_indices(y, 200, 10, seed=2))


@pytest.mark.parametrize("size,message", [
    (25, "train_size=25 is not a positive multiple of the 10 classes: use e.g. 20"),
    (2000, "train_size=2000 is larger than the 1000 training images"),
])
def test_impossible_sizes_name_the_value_and_the_fix(size: int, message: str) -> None:
    with pytest.raises(DataError, match=message):
        stratified_indices(labels([100] * 10), size, 10, seed=0)


def test_a_class_too_small_names_the_class() -> None:
    with pytest.raises(DataError, match="class 1, which has only 5: lower dataset.train_size to at most 10"):
        stratified_indices(labels([50, 5]), 40, 2, seed=0)
