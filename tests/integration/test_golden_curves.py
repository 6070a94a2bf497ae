"""A refactor leaves the numbers alone: the tiny digits training run and both range tests reproduce the curves
committed in tests/golden/ bit for bit. They are written under the pinned CPU mode (docs/determinism.md), so
exact holds on any x86-64 CPU with AVX2: a tolerance would hide chaos, not noise.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from superconv.stages.compose import compose_stage_config
from superconv.stages.range_test import range_test_stage
from superconv.stages.train import train_stage
from tests.conftest import TINY

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _compare(ours: pd.DataFrame, golden: pd.DataFrame) -> None:
    assert list(ours.columns) == list(golden.columns) and len(ours) == len(golden)
    pd.testing.assert_frame_equal(ours, golden, check_exact=True)


def test_training_reproduces_the_golden_curve(tmp_path, data_root) -> None:
    cfg = compose_stage_config("train", [*TINY, "tracking.enabled=false", f"data_root={data_root}",
                                         f"out={tmp_path}"])
    train_stage(cfg, "one_cycle")
    _compare(pd.read_csv(tmp_path / "metrics.csv"), pd.read_csv(GOLDEN / "tiny_digits_one_cycle_metrics.csv"))


@pytest.mark.parametrize("protocol", ["linear", "exponential"])
def test_range_test_reproduces_the_golden_curve(tmp_path, data_root, protocol) -> None:
    cfg = compose_stage_config("range_test", [*TINY, f"range_test={protocol}", "tracking.enabled=false",
                                              f"data_root={data_root}", f"out={tmp_path}"])
    range_test_stage(cfg)
    _compare(pd.read_csv(tmp_path / "curve.csv"),
             pd.read_csv(GOLDEN / f"tiny_digits_{protocol}_range_test_curve.csv"))
