"""The one prepared format every dataset is written in and read from.

``<dir>/train.pt`` and ``<dir>/test.pt`` hold ``{"images": uint8 [N,C,H,W], "labels": int64 [N]}``;
``<dir>/meta.json`` records the source, class count, split sizes, per-channel mean/std and the sha256
of each tensor file. Loading verifies the hashes, so a corrupt file is an error, never silent garbage.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from superconv.common.errors import DataError
from superconv.common.io import replace_dir, sha256_file, write_json

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    """Images as uint8 [N, C, H, W] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"images must be uint8 [N,C,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or len(self.labels) != len(self.images):
            raise DataError("labels must be int64 with one label per image")


@dataclass(frozen=True)
class Prepared:
    train: Split
    test: Split
    meta: dict[str, Any]


def write_prepared(out: Path, train: Split, test: Split, info: dict[str, Any]) -> dict[str, Any]:
    """Write both splits and meta.json into ``out`` atomically; return the meta."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    files = {}
    for name, split in zip(SPLITS, (train, test), strict=True):
        path = tmp / f"{name}.pt"
        torch.save({"images": split.images.contiguous(), "labels": split.labels.contiguous()}, path)
        files[f"{name}.pt"] = sha256_file(path)
    pixels = train.images.double() / 255.0
    meta = {
        **info,
        "channels": int(train.images.shape[1]),
        "image_size": int(train.images.shape[2]),
        "split_sizes": {"train": len(train.labels), "test": len(test.labels)},
        "num_classes": int(max(train.labels.max(), test.labels.max()) + 1),
        "mean": pixels.mean(dim=(0, 2, 3)).tolist(),
        "std": pixels.std(dim=(0, 2, 3)).tolist(),
        "sha256": files,
    }
    write_json(tmp / "meta.json", meta)
    replace_dir(tmp, out)
    return meta


def read_meta(directory: Path) -> dict[str, Any]:
    """meta.json of a prepared dataset, with a clear error when it is not there."""
    path = Path(directory) / "meta.json"
    if not path.is_file():
        raise DataError(
            f"no prepared dataset at {directory} (missing {path.name}): run the prepare stage first, "
            f"e.g. `python pipelines/prepare.py dataset=<name>` or `dvc repro prepare`."
        )
    return json.loads(path.read_text())


def load_prepared(directory: Path) -> Prepared:
    """Load and hash-check a prepared dataset."""
    directory = Path(directory)
    meta = read_meta(directory)
    splits = []
    for name in SPLITS:
        path = directory / f"{name}.pt"
        expected = meta["sha256"].get(f"{name}.pt")
        if not path.is_file() or sha256_file(path) != expected:
            raise DataError(
                f"{path} is missing or corrupt (sha256 does not match meta.json): re-run the prepare "
                f"stage (`dvc repro -f prepare` or `python pipelines/prepare.py ...`)."
            )
        blob = torch.load(path, weights_only=True)
        splits.append(Split(blob["images"], blob["labels"]))
    return Prepared(splits[0], splits[1], meta)
