"""The prepared format: round trip, hashes checked, clear errors for missing or corrupt files."""

from __future__ import annotations

import pytest
import torch

from superconv.common.errors import DataError
from superconv.core.data.prepared import Split, load_prepared, write_prepared


def make_split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
                 torch.randint(0, 10, (n,), generator=g))


def test_round_trip_is_exact_and_meta_complete(tmp_path) -> None:
    train, test = make_split(20, 0), make_split(5, 1)
    meta = write_prepared(tmp_path / "ds", train, test, {"dataset": "synthetic", "source": "test"})
    loaded = load_prepared(tmp_path / "ds")
    assert torch.equal(loaded.train.images, train.images) and torch.equal(loaded.test.labels, test.labels)
    assert meta["split_sizes"] == {"train": 20, "test": 5}
    assert len(meta["mean"]) == 3 and meta["source"] == "test"
    assert not list(tmp_path.glob(".ds*")), "temporary directories must not be left behind"


def test_corrupt_file_is_an_error_naming_it(tmp_path) -> None:
    write_prepared(tmp_path / "ds", make_split(4, 0), make_split(2, 1), {"dataset": "x", "source": "t"})
    path = tmp_path / "ds" / "train.pt"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="train.pt.*re-run the prepare"):
        load_prepared(tmp_path / "ds")


def test_missing_dataset_says_run_prepare(tmp_path) -> None:
    with pytest.raises(DataError, match="run the prepare stage"):
        load_prepared(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["train.pt", "test.pt"])
def test_one_flipped_byte_is_detected(tmp_path, name: str) -> None:
    write_prepared(tmp_path / "ds", make_split(4, 0), make_split(2, 1), {"dataset": "x", "source": "t"})
    path = tmp_path / "ds" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{name} is missing or corrupt"):
        load_prepared(tmp_path / "ds")
