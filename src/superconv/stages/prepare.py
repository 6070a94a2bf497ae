"""The prepare stage: fetch a dataset and write data/prepared/<name>/ (uint8 tensors + meta.json)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from superconv.core.data.prepared import write_prepared
from superconv.core.data.sources import fetch
from superconv.core.data.subset import class_counts, stratified_subset
from superconv.stages.rules import validate_prepare

log = logging.getLogger(__name__)


def prepare_stage(cfg: DictConfig) -> dict[str, Any]:
    """Fetch the dataset from the first source that works and write the prepared tensors.

    A ``dataset.train_size`` below the full training set keeps a class-stratified subset drawn by
    ``dataset.subset_seed`` (default 0), recorded in meta.json; the full set's meta is unchanged.
    """
    dataset, out = (checked := validate_prepare(cfg)).dataset, Path(checked.out)
    train_split, test_split, source = fetch(dataset, Path(checked.raw_root))
    info = {"dataset": dataset.name, "source": source}
    size, num_classes = dataset.train_size, dataset.num_classes
    if size != len(train_split.labels):
        seed = dataset.subset_seed or 0
        train_split = stratified_subset(train_split, size, num_classes, seed)
        info.update(train_size=size, subset_seed=seed, class_counts=class_counts(train_split.labels, num_classes))
    meta = write_prepared(out, train_split, test_split, info)
    log.info("prepared %s from source %r -> %s (%s)", dataset.name, source, out, meta["split_sizes"])
    print(f"{dataset.name}: source={source} train={meta['split_sizes']['train']} "
          f"test={meta['split_sizes']['test']} -> {out}")
    return meta
