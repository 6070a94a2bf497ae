"""The range test stage: files, suggestion keys, and the model/optimizer restored afterwards."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from superconv.config import compose_stage_config
from superconv.data.loader import DeviceData
from superconv.data.prepared import load_prepared
from superconv.models.lenet import LeNet
from superconv.range_test import run_range_test
from superconv.tracking import Tracker
from tests.conftest import TINY


def test_range_test_cli_writes_curve_and_suggestion(tmp_path, cli, data_root, mlflow_uri) -> None:
    out = tmp_path / "rt"
    cli(["python", "pipelines/range_test.py", *TINY, f"out={out}", f"data_root={data_root}"])
    curve = pd.read_csv(out / "curve.csv")
    assert {"lr", "train_loss", "smoothed_loss", "test_acc", "test_loss"} <= set(curve.columns)
    assert curve["lr"].is_monotonic_increasing
    found = json.loads((out / "suggestion.json").read_text())
    assert {"max_lr", "min_lr", "method", "rules"} <= set(found)
    assert found["min_lr"] == pytest.approx(found["max_lr"] / 10)
    assert 0 < found["max_lr"] <= 0.5
    assert (out / "range_test.png").stat().st_size > 10_000


def test_range_test_restores_model_and_optimizer(data_root) -> None:
    cfg = compose_stage_config("range_test", [*TINY, f"data_root={data_root}", "range_test.iterations=12",
                                              "range_test.eval_every=4"])
    prepared = load_prepared(data_root / "digits")
    train = DeviceData(prepared.train, torch.device("cpu"), input_scale=1 / 256)
    test = DeviceData(prepared.test, torch.device("cpu"), input_scale=1 / 256)
    model = LeNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    model(train.batch(0, 4)[0]).sum().backward()
    optimizer.step()  # give the optimizer state worth restoring
    before = {k: v.clone() for k, v in model.state_dict().items()}
    buf_before = [optimizer.state[p]["momentum_buffer"].clone() for p in model.parameters()]
    result = run_range_test(cfg.range_test, 64, 300, model, optimizer, train, test, Tracker(), progress=False)
    assert len(result.rows) > 1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(b, optimizer.state[p]["momentum_buffer"])
               for b, p in zip(buf_before, model.parameters(), strict=True))
