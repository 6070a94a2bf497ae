"""Trainer options on CPU: bf16/fp16 autocast, torch.compile, weight decay on biases, iterations to target."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from superconv.stages.compose import compose_stage_config
from superconv.stages.train import train_stage
from tests.conftest import TINY


def run(tmp_path, data_root, name: str, *overrides: str, iterations: int = 30) -> tuple[pd.DataFrame, dict]:
    out = tmp_path / name
    cfg = compose_stage_config("train", [*TINY, "seed=1", f"trainer.max_iterations={iterations}",
                                         "tracking.enabled=false", f"data_root={data_root}", f"out={out}", *overrides])
    train_stage(cfg, "one_cycle")
    return pd.read_csv(out / "metrics.csv"), json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, data_root) -> tuple[pd.DataFrame, dict]:
    return run(tmp_path_factory.mktemp("fp32"), data_root, "fp32")


# fp16 on a CPU is emulated and slow: it runs the first 10 iterations, judged against fp32 at the same iteration.
@pytest.mark.parametrize(("amp", "iterations"), [("bf16", 30), ("fp16", 10)])
def test_mixed_precision_learns_like_fp32_without_being_fp32(fp32, tmp_path, data_root, amp: str,
                                                             iterations: int) -> None:
    mixed, summary = run(tmp_path, data_root, amp, f"trainer.amp={amp}", iterations=iterations)
    reference = fp32[0]["train_loss"].to_numpy()[:iterations]
    assert not np.array_equal(mixed["train_loss"].to_numpy(), reference), "autocast changed nothing"
    np.testing.assert_allclose(mixed["train_loss"].iloc[:3], reference[:3], rtol=0.05)
    same_point = fp32[0].dropna(subset=["test_acc"])
    fp32_acc = same_point[same_point["iteration"] == iterations - 1]["test_acc"].iloc[0]
    assert summary["final_test_acc"] > fp32_acc - 5 and not summary["diverged"]


def test_exempting_biases_from_weight_decay_changes_the_run(fp32, tmp_path, data_root) -> None:
    exempt, _ = run(tmp_path, data_root, "exempt", "optimizer.decay_bn_and_bias=false", "optimizer.weight_decay=0.05")
    decayed, _ = run(tmp_path, data_root, "decayed", "optimizer.weight_decay=0.05")
    assert exempt["train_loss"].iloc[0] == decayed["train_loss"].iloc[0]
    assert not exempt["train_loss"].equals(decayed["train_loss"])


def test_iterations_to_target_is_the_first_evaluation_at_or_above_it(fp32) -> None:
    frame, summary = fp32
    evals = frame.dropna(subset=["test_acc"])
    reached = evals[evals["test_acc"] >= summary["target_acc"]]
    expected = int(reached["iteration"].iloc[0]) + 1 if len(reached) else None
    assert summary["target_acc"] == 90.0 and summary["iterations_to_target"] == expected
    assert expected is not None, "the tiny run reaches 90% within 30 iterations"


@pytest.mark.slow
def test_compiled_model_gives_the_eager_curve(fp32, tmp_path, data_root) -> None:
    compiled, _ = run(tmp_path, data_root, "compiled", "trainer.compile=true")
    # Inductor fuses and reorders float ops: the same curve to float tolerance, which the 1cycle peak LR
    # amplifies over 30 iterations.
    np.testing.assert_allclose(compiled["train_loss"].iloc[:10], fp32[0]["train_loss"].iloc[:10], rtol=1e-5)
    np.testing.assert_allclose(compiled["train_loss"], fp32[0]["train_loss"], rtol=2e-2)
