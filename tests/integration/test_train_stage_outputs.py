"""What the train stage leaves behind: summary.json fields the report needs, no open matplotlib figure."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from superconv.common.tracking import Tracker
from superconv.stages.compose import compose_stage_config
from superconv.stages.train import train_stage
from tests.conftest import TINY


def _run(out: Path, data_root: Path, *overrides: str) -> dict:
    cfg = compose_stage_config("train", [*TINY, "trainer.max_iterations=10", "tracking.enabled=false",
                                         f"data_root={data_root}", f"out={out}", *overrides])
    train_stage(cfg, "one_cycle")
    return json.loads((out / "summary.json").read_text())


def test_summary_carries_the_training_set_size(tmp_path, data_root) -> None:
    plt.close("all")
    summary = _run(tmp_path / "run", data_root)
    assert summary["train_size"] == 1497 and summary["full_train_size"] == 1497  # sklearn digits' train split
    assert plt.get_fignums() == [], "the curves figure is closed after the stage"


def test_curves_figure_is_closed_when_logging_it_fails(tmp_path, data_root, mlflow_uri, monkeypatch) -> None:
    """A tracked run draws the figure (an untracked one draws none) and closes it even when the upload fails."""
    plt.close("all")

    def broken(*_args: object) -> None:
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(Tracker, "log_figure", broken)
    with pytest.raises(OSError, match="unreachable"):
        _run(tmp_path / "run", data_root, "tracking.enabled=true", f"tracking.uri={mlflow_uri}")
    assert plt.get_fignums() == []
