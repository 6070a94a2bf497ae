"""ImageNet-style folders (``<split>/<wnid>/*.JPEG``) decoded and resized once, at prepare time.

Training then never touches a JPEG: images are resized (shorter side to ``dataset.image_size``) and
center-cropped here with torchvision's PIL ops and stored as uint8 tensors in the prepared format.
Sources: Imagenette/Imagewoof (fast.ai archives; torchvision's md5-checked ``Imagenette`` download for
Imagenette) and seeded class/image subsets of a local ImageNet in ImageFolder layout. torchvision is
imported inside the functions that use it: it costs seconds, and only prepare reads images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image

from superconv.common.errors import DataError
from superconv.core.choices import ARCHIVE_SUFFIX
from superconv.core.data.prepared import Split

FASTAI_URL = "https://s3.amazonaws.com/fast-ai-imageclas/{stem}.tgz"
FASTAI_BASE = {"imagenette": "imagenette2", "imagewoof": "imagewoof2"}


def load_image(path: Path | str, size: int) -> torch.Tensor:
    """RGB uint8 [3, size, size]: shorter side resized to ``size`` (antialiased), then center-cropped."""
    from torchvision.transforms.v2 import functional as F

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    square = F.center_crop(F.resize(rgb, [size]), [size, size])
    return F.pil_to_tensor(square)


def read_image_folder(directory: Path, classes: list[str], size: int, per_class: int | None = None,
                      seed: int = 0) -> Split:
    """Images of ``classes`` (label = position in the list), all or ``per_class`` each drawn by ``seed``."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    samples = make_dataset(str(directory), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS)
    if per_class is not None:
        g = torch.Generator().manual_seed(seed)
        chosen = []
        for label, name in enumerate(classes):
            own = [s for s in samples if s[1] == label]
            if len(own) < per_class:
                raise DataError(f"{directory / name} has {len(own)} images, fewer than images_per_class="
                                f"{per_class}: lower dataset.images_per_class")
            chosen += sorted(own[int(i)] for i in torch.randperm(len(own), generator=g)[:per_class])
        samples = chosen
    if not samples:
        raise DataError(f"no images under {directory}/<class>/ for classes {classes[:3]}...")
    images = torch.stack([load_image(path, size) for path, _ in samples])
    return Split(images, torch.tensor([label for _, label in samples], dtype=torch.int64))


def read_split_folders(root: Path, size: int) -> tuple[Split, Split]:
    """``root/train`` and ``root/val``, every class (sorted folder names, as ImageFolder labels them)."""
    from torchvision.datasets.folder import find_classes

    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"expected {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG")
    classes, _ = find_classes(str(root / "train"))
    return read_image_folder(root / "train", classes, size), read_image_folder(root / "val", classes, size)


def fastai_dir(cfg: Any) -> Path:
    """Where the extracted fast.ai archive lives, e.g. ``<root>/imagenette2-160``."""
    return Path(cfg.root) / (FASTAI_BASE[cfg.name] + ARCHIVE_SUFFIX[cfg.archive_size])


def fastai_from_local(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """An extracted Imagenette/Imagewoof archive under ``dataset.root``."""
    return read_split_folders(fastai_dir(cfg), int(cfg.image_size))


def fastai_from_download(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """Download the archive (torchvision's md5-checked Imagenette; Imagewoof has no published md5)."""
    if not cfg.download:
        raise DataError(f"download disabled (dataset.download=false); put the extracted archive at "
                        f"{fastai_dir(cfg)}/{{train,val}}/<wnid>/*.JPEG")
    from torchvision.datasets import Imagenette
    from torchvision.datasets.utils import download_and_extract_archive

    if cfg.name == "imagenette":
        Imagenette(str(cfg.root), split="train", size=cfg.archive_size, download=True)
    else:
        download_and_extract_archive(FASTAI_URL.format(stem=fastai_dir(cfg).name), str(cfg.root))
    return fastai_from_local(cfg, raw_root)


def imagenet_from_local(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """Every class of a local ImageNet; the class count must be ``dataset.num_classes`` (a partial copy would
    otherwise train a smaller problem under ImageNet's name and published rows)."""
    from torchvision.datasets.folder import find_classes

    root = Path(cfg.root)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"no ImageNet under {root}: expected {root}/train/<wnid>/*.JPEG and "
                        f"{root}/val/<wnid>/*.JPEG (ImageFolder layout)")
    wnids, _ = find_classes(str(root / "train"))
    if len(wnids) != int(cfg.num_classes):
        raise DataError(f"{root}/train has {len(wnids)} classes but dataset.num_classes={cfg.num_classes}: "
                        "complete the copy, or use dataset=imagenet_subset for a class subset")
    return read_split_folders(root, int(cfg.image_size))


def imagenet_subset_from_local(cfg: Any, raw_root: Path) -> tuple[Split, Split]:
    """``dataset.classes`` wnids and ``dataset.images_per_class`` training images each, drawn by
    ``dataset.subset_seed`` from a local ImageNet; the test split is every val image of those classes."""
    from torchvision.datasets.folder import find_classes

    root = Path(cfg.root)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"no ImageNet under {root}: expected {root}/train/<wnid>/*.JPEG and "
                        f"{root}/val/<wnid>/*.JPEG (ImageFolder layout)")
    wnids, _ = find_classes(str(root / "train"))
    if cfg.classes > len(wnids):
        raise DataError(f"dataset.classes={cfg.classes} but {root}/train has {len(wnids)} classes: lower it")
    g = torch.Generator().manual_seed(int(cfg.subset_seed))
    chosen = sorted(wnids[int(i)] for i in torch.randperm(len(wnids), generator=g)[: cfg.classes])
    size, seed = int(cfg.image_size), int(cfg.subset_seed)
    train = read_image_folder(root / "train", chosen, size, int(cfg.images_per_class), seed)
    return train, read_image_folder(root / "val", chosen, size)
