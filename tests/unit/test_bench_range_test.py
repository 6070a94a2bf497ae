"""The range-test benchmark runs its three variants end to end on a few iterations and writes its JSON (figures are
checked for being positive, never for a speed)."""

from __future__ import annotations

import json
from pathlib import Path

from superconv.bench.__main__ import main as bench


def test_range_test_benchmark_times_training_and_both_range_tests(tmp_path: Path) -> None:
    out = tmp_path / "bench_range_test.json"
    report = bench(["range_test", "--iterations", "6", "--batch", "8", "--threads", "1", "--repeats", "1",
                    "--eval-every", "3", "--eval-size", "16", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert set(report["iterations_per_s"]) == {"train", "range_test_no_eval", "range_test_eval"}
    assert all(v > 0 for v in report["iterations_per_s"].values())
    assert report["ratio_to_train"]["train"] == 1.0 and report["eval_size"] == 16
    assert report["data"] == "synthetic" and report["range_test_loop_overhead_us"] > 0


def test_the_benchmarked_range_test_is_the_configured_one() -> None:
    """The variants run the ramp the benchmark asks for (an assignment once copied the preset's 0-0.5 over 60
    iterations into the config instead, which diverged on random data within 16 iterations)."""
    from superconv.bench.range_test import _config

    rt = _config(100, 128, 1, 20, 300).range_test
    assert (rt.iterations, rt.start_lr, rt.end_lr, rt.eval_every, rt.eval_size) == (100, 0.0, 0.001, 20, 300)
