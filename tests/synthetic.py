"""Synthetic data in the sources' real formats, for tests: CIFAR archives in the official pickle format and
ImageFolder trees of small random images; and the shipped models, built from their conf/model files."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from PIL import Image

from superconv.core.data.prepared import Split
from superconv.core.data.sources import write_idx
from superconv.core.data.sources_cifar import CIFAR_LAYOUTS
from superconv.stages.compose import compose_stage_config
from superconv.stages.prepare import prepare_stage
from superconv.stages.training import build_model

rng = np.random.default_rng(0)


def conf_model(name: str, dataset: str, **values: Any) -> torch.nn.Module:
    """The model of conf/model/<name>.yaml at ``dataset``'s shape, built as a run builds it, ``values`` replacing
    some of its settings (the shipped YAML is the one source of every other value: the constructors take no
    defaults)."""
    cfg = compose_stage_config("train", [f"model={name}", f"dataset={dataset}"])
    return build_model({**OmegaConf.to_container(cfg.model, resolve=True), **values})


def write_batch(path: Path, n: int, num_classes: int, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as the official archive stores it: uint8 rows of 3x32x32, channel-major."""
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    names = [f"{i}.png" for i in range(n)]
    blob = {"batch_label": "synthetic", "data": data, label_key: labels.tolist(), "filenames": names}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(blob))
    return data.reshape(n, 3, 32, 32), labels


def cifar_archive(root: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-10: two training batches of 20 + a test batch of 10; CIFAR-100: 200 train, 100 test."""
    layout = CIFAR_LAYOUTS[name]
    folder = root / layout.folder
    if name == "cifar10":
        parts = [write_batch(folder / f"data_batch_{i}", 20, 10, "labels") for i in (1, 2)]
        test = write_batch(folder / "test_batch", 10, 10, "labels")
    else:
        parts = [write_batch(folder / "train", 200, 100, "fine_labels")]
        test = write_batch(folder / "test", 100, 100, "fine_labels")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), *test)


def image_folder(root: Path, classes: list[str], per_class: int, suffix: str) -> dict[str, list[Path]]:
    """Random RGB images 10 wide and 14 high, so loading must center-crop 2 rows off the top."""
    files = {}
    for wnid in classes:
        (root / wnid).mkdir(parents=True)
        files[wnid] = []
        for i in range(per_class):
            path = root / wnid / f"{wnid}_{i}{suffix}"
            Image.fromarray(rng.integers(0, 256, (14, 10, 3), dtype=np.uint8)).save(path)
            files[wnid].append(path)
    return files


def raw_sources(raw: Path, mnist_sizes: tuple[int, int], imagenet: str) -> None:
    """Every dataset's raw files under ``raw`` in its official format, random pixels: the CIFAR archives, MNIST's
    IDX files (``mnist_sizes`` = train, test images) and an ImageNet ImageFolder (10 classes, 2 train + 1 val
    images each) under ``raw/<imagenet>``."""
    for name in ("cifar10", "cifar100"):
        cifar_archive(raw / name, name)
    gen = torch.Generator().manual_seed(0)

    def digits_split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),
                     torch.arange(n, dtype=torch.int64) % 10)

    write_idx(raw / "mnist", *(digits_split(n) for n in mnist_sizes))
    wnids = [f"n0{i:07d}" for i in range(10)]
    image_folder(raw / imagenet / "train", wnids, 2, ".JPEG")
    image_folder(raw / imagenet / "val", wnids, 1, ".JPEG")


def prepare(tmp_path: Path, overrides: list[str]) -> dict:
    """The real prepare stage, raw data under ``tmp_path/raw``, output under ``tmp_path/prepared``, no download."""
    cfg = compose_stage_config("prepare", [f"data_root={tmp_path / 'prepared'}", f"raw_root={tmp_path / 'raw'}",
                                           "dataset.download=false", *overrides])
    return prepare_stage(cfg)
