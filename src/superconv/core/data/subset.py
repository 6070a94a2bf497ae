"""Class-stratified training subsets (paper 1 Table 1: ResNet-56 on 1/5 ... 1/2 of CIFAR-10).

Drawn once at prepare time with exact per-class counts, so a "5,000 images" run always means 500 per
class, and the same ``subset_seed`` always gives the same images.
"""

from __future__ import annotations

import torch

from superconv.common.errors import DataError
from superconv.core.data.prepared import Split


def stratified_indices(labels: torch.Tensor, size: int, num_classes: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``size // num_classes`` images of every class, drawn by ``seed``."""
    if size <= 0 or size % num_classes:
        raise DataError(f"dataset.train_size={size} is not a positive multiple of the {num_classes} classes: "
                        f"use e.g. {max(num_classes, size - size % num_classes)}")
    if size > len(labels):
        raise DataError(f"dataset.train_size={size} is larger than the {len(labels)} training images "
                        f"available: lower it to at most {len(labels)}")
    per_class = size // num_classes
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        own = torch.nonzero(labels == c).flatten()
        if len(own) < per_class:
            raise DataError(f"dataset.train_size={size} needs {per_class} images of class {c}, which has only "
                            f"{len(own)}: lower dataset.train_size to at most {len(own) * num_classes}")
        chosen.append(own[torch.randperm(len(own), generator=g)[:per_class]])
    return torch.sort(torch.cat(chosen)).values


def stratified_subset(split: Split, size: int, num_classes: int, seed: int) -> Split:
    """The images of :func:`stratified_indices`, in their original order."""
    idx = stratified_indices(split.labels, size, num_classes, seed)
    return Split(split.images[idx], split.labels[idx])


def class_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """Images per class, indexed by label."""
    return torch.bincount(labels, minlength=num_classes).tolist()
