"""The loader benchmark runs end to end on a few images and writes its JSON (figures are not checked)."""

from __future__ import annotations

import json

from superconv.bench_loader import main


def test_benchmark_writes_both_rates_and_their_ratio(tmp_path) -> None:
    out = tmp_path / "bench.json"
    result = main(["--images", "256", "--batch", "64", "--epochs", "1", "--workers", "0", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["device_resident_images_per_s"] > 0 and result["dataloader_images_per_s"] > 0
    assert result["ratio"] > 0
