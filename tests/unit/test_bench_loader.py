"""The loader benchmark runs end to end on a few images and writes its JSON (figures are not checked)."""

from __future__ import annotations

import json

import pytest
import torch

from superconv.bench.common import synthetic_split
from superconv.bench.loader import LOADERS, STEP_AUGMENTS, data_vs_step, main

TINY = ["--images", "64", "--batch", "8", "--epochs", "1", "--workers", "0", "--iterations", "2", "--warmup", "1",
        "--step-workers", "0"]


def test_benchmark_writes_both_rates_and_their_ratio(tmp_path) -> None:
    out = tmp_path / "bench.json"
    result = main([*TINY, "--augments", "flip", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["device_resident_images_per_s"] > 0 and result["dataloader_images_per_s"] > 0
    assert result["ratio"] > 0
    steps = result["data_vs_step"]
    assert steps["batch"] == 8 and steps["iterations"] == 2 and steps["target_percent"] == 5.0
    assert set(steps["results"]) == {"flip"}
    assert set(steps["results"]["flip"]) == {"device_resident", "dataloader_0_workers"}


def test_data_vs_step_times_every_loader_and_augment_consistently() -> None:
    """Each (augment, loader) has positive data and step times whose ratio and percent agree."""
    cifar = synthetic_split(48, 0, image_size=32, classes=10, channels=3)
    results = data_vs_step(cifar, batch=8, iterations=2, warmup=1, device=torch.device("cpu"), workers=(0, 2))
    assert set(results) == set(STEP_AUGMENTS)
    for by_loader in results.values():
        assert set(by_loader) == set(LOADERS)
        for r in by_loader.values():
            assert r["data_ms"] > 0 and r["step_ms"] > 0 and r["images_per_s"] > 0
            assert r["data_over_step"] == pytest.approx(r["data_ms"] / r["step_ms"], rel=1e-3, abs=1e-6)
            assert r["data_percent_of_step"] == pytest.approx(100 * r["data_over_step"], rel=1e-3, abs=1e-4)
            assert r["images_per_s"] == pytest.approx(8e3 / (r["data_ms"] + r["step_ms"]), rel=1e-3)
