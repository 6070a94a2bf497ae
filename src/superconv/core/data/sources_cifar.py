"""CIFAR-10/100 from the official python-pickle archive layout, read directly (no torchvision dataset class).

torchvision's ``CIFAR10`` refuses any copy whose md5 differs from the official one, which rules out
synthetic archives in tests; reading the batch files ourselves keeps one code path for real and
synthetic data. The pickles are read only from a user-provided ``dataset.root`` in the official layout
(or torchvision's download into it), with an unpickler that accepts nothing but numpy arrays and plain
containers, and each file is compared with torchvision's official md5 list: a mismatch is a warning.
torchvision is imported only where it is used: importing it costs every process seconds (it loads
torchvision.models and torch._dynamo), and most of them (MNIST runs, config checks) never read CIFAR.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superconv.common.errors import DataError
from superconv.core.data.prepared import Split

log = logging.getLogger(__name__)

# Globals a numpy array pickle needs (numpy 1 and 2 module names); anything else is refused.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _NUMPY_GLOBALS:
            raise DataError(f"refusing to unpickle {module}.{name}: not an official CIFAR batch file")
        return super().find_class(module, name)


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant lives under its root, and which label key its batches use."""

    title: str
    folder: str
    train_files: str  # regex of training batch file names
    test_file: str
    label_key: str
    official: str  # torchvision.datasets class: its download and md5 list
    archive: str  # the official archive's file name
    files: str  # the expected files, for error messages

    def describe(self, root: Path) -> str:
        return f"{root / self.folder}/{{{self.files}}} (extracted from {self.archive})"

    def official_class(self) -> Any:
        import torchvision.datasets

        return getattr(torchvision.datasets, self.official)


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout("CIFAR-10", "cifar-10-batches-py", r"data_batch_\d+", "test_batch", "labels", "CIFAR10",
                           "cifar-10-python.tar.gz", "data_batch_1..data_batch_5,test_batch"),
    "cifar100": CifarLayout("CIFAR-100", "cifar-100-python", "train", "test", "fine_labels", "CIFAR100",
                            "cifar-100-python.tar.gz", "train,test"),
}


def read_cifar_batch(path: Path, label_key: str) -> Split:
    """One batch file: ``data`` uint8 [N, 3072] (channel-major rows) and a label list -> uint8 [N,3,32,32]."""
    with open(path, "rb") as f:
        batch = _ArrayUnpickler(f, encoding="latin1").load()
    data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    return Split(torch.from_numpy(data.copy()), torch.from_numpy(labels))


def _warn_on_md5(layout: CifarLayout, directory: Path, names: list[str]) -> None:
    from torchvision.datasets.utils import check_integrity

    official_class = layout.official_class()
    official = dict(official_class.train_list + official_class.test_list)
    odd = [n for n in names if n not in official or not check_integrity(str(directory / n), official[n])]
    if odd or set(official) - set(names):
        log.warning("%s under %s is not the official archive (md5 differs or files missing/extra: %s); "
                    "loading it anyway", layout.title, directory, ", ".join(odd or sorted(set(official) - set(names))))


def read_cifar(root: Path, layout: CifarLayout) -> tuple[Split, Split]:
    """Train and test splits from ``<root>/<folder>``, training batches in numeric order."""
    directory = Path(root) / layout.folder
    pattern = re.compile(layout.train_files)
    train_names = sorted((p.name for p in directory.glob("*") if pattern.fullmatch(p.name)), key=lambda n: (len(n), n))
    if not train_names or not (directory / layout.test_file).is_file():
        raise DataError(f"no {layout.title} under {root}: expected {layout.describe(Path(root))}")
    _warn_on_md5(layout, directory, [*train_names, layout.test_file])
    parts = [read_cifar_batch(directory / name, layout.label_key) for name in train_names]
    train = Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    return train, read_cifar_batch(directory / layout.test_file, layout.label_key)


def cifar_from_local(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """An existing ``dataset.root`` holding the extracted official python archive."""
    return read_cifar(Path(cfg.root), CIFAR_LAYOUTS[cfg.name])


def cifar_from_download(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """torchvision's md5-checked download into ``dataset.root``, then the same reader."""
    layout = CIFAR_LAYOUTS[cfg.name]
    if not cfg.download:
        raise DataError(f"download disabled (dataset.download=false); put {layout.describe(Path(cfg.root))}")
    layout.official_class()(str(cfg.root), train=True, download=True)
    return read_cifar(Path(cfg.root), layout)
