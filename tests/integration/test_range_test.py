"""The range test: a quadratic with a known divergence point, both protocols through the CLI, the shared loop's
progress bar, and a training run fed by the suggestion."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from superconv.common.errors import ConfigError
from superconv.common.tracking import Tracker
from superconv.core.choices import RULES
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import load_prepared
from superconv.core.engine import FP32, Trainable, classification_step, held_out
from superconv.core.range_rules import suggest
from superconv.core.range_test import run_range_test
from superconv.stages.compose import compose_stage_config
from superconv.stages.rules import validate_range_test
from superconv.stages.training import build_model
from tests.conftest import TINY, run_entry

SUGGESTION_KEYS = {"method", "max_lr", "min_lr", "min_lr_divisor", "rules", "diverged_lr", "protocol", "start_lr",
                   "end_lr", "iterations_planned", "iterations_run", "eval_every", "eval_size", "model", "dataset",
                   "dataset_sha256", "stopped_early", "warnings"}


@pytest.mark.parametrize(("protocol", "start", "end", "stop_factor", "slack"),
                         [("exponential", 1e-3, 10.0, 4.0, 2.5), ("linear", 0.0, 4.0, None, 2.0)])
def test_divergence_found_near_two_over_lambda_on_least_squares(protocol, start, end, stop_factor, slack) -> None:
    """Full-batch GD (momentum 0) on least squares is stable below 2/lambda_max and diverges above it."""
    torch.manual_seed(0)
    n, d = 256, 8
    x = torch.randn(n, d) * torch.logspace(0, 1, d)
    y = x @ torch.randn(d, 1) + 0.5 * torch.randn(n, 1)
    critical = 2 / float(torch.linalg.eigvalsh(2 * x.T @ x / n).max())  # Hessian of mean squared error
    model = torch.nn.Linear(d, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.0)

    def step(it: int) -> torch.Tensor:
        loss = F.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    rt = OmegaConf.create({"protocol": protocol, "start_lr": start * critical, "end_lr": end * critical,
                           "iterations": 300, "eval_every": None, "momentum": 0.0, "smooth_beta": 0.98,
                           "stop_factor": stop_factor, "diverge_factor": 4.0})
    result = run_range_test(rt, Trainable(model, model, optimizer, FP32), step, None, Tracker(), progress=False)
    assert critical <= result.diverged_lr <= slack * critical
    assert result.stopped_early  # exponential: smoothed loss > 4x best; linear: the loss overflowed
    if protocol == "linear":
        assert not math.isfinite(result.rows[-1]["train_loss"])
        assert result.rows[result.diverged_iteration]["lr"] < result.rows[-1]["lr"]  # marked before the overflow
    rules = suggest(result.rows, rt.iterations, result.diverged_iteration)
    found = {k: v for k, v in rules.items() if v is not None}
    assert set(found) == {"valley", "steepest", "min_loss_div10"}  # no evaluation, so no accuracy_peak
    assert all(0 < v < critical for v in found.values()), (found, critical)


@pytest.mark.parametrize(("overrides", "message"), [
    (["range_test=exponential", "range_test.start_lr=0.0"], "> 0 for exponential"),
    (["range_test.rule=median"], "range_test.rule='median' must be one of 'accuracy_peak', 'valley'"),
    (["range_test.eval_every=null"], "accuracy_peak needs held-out evaluations"),
    (["range_test.stop_factor=0.5"], "range_test.stop_factor=0.5 must be null or a number > 1"),
    (["range_test.min_lr_divisor=0.5"], "range_test.min_lr_divisor=0.5 must be a number >= 1"),
    (["range_test.smooth_beta=1.0"], "range_test.smooth_beta=1.0 must be a number in [0, 1)"),
    (["range_test.iterations=1"], "range_test.iterations=1 must be an integer >= 2"),
    (["range_test.eval_every=100"], "range_test.eval_every=100 is longer than range_test.iterations=60"),
    (["++range_test.warmup=5"], "range_test.warmup=5 is not a setting of range_test"),
])
def test_validation_names_the_bad_key(overrides, message) -> None:
    cfg = compose_stage_config("range_test", [*TINY, *overrides])
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_range_test(cfg)


def test_presets_give_each_protocol_its_own_range() -> None:
    for protocol, start, end in (("linear", 0.0, 0.5), ("exponential", 1e-4, 10.0)):
        rt = compose_stage_config("range_test", [*TINY, f"range_test={protocol}"]).range_test
        assert (rt.protocol, rt.start_lr, rt.end_lr, rt.iterations) == (protocol, start, end, 60)
    paper = compose_stage_config("range_test", ["experiment=paper_mnist_lenet"]).range_test
    assert (paper.protocol, paper.start_lr, paper.end_lr, paper.iterations, paper.rule) == (
        "linear", 0.0, 0.5, 1000, "accuracy_peak")
    assert paper.stop_factor is None


@pytest.fixture(scope="module")
def exponential_run(tmp_path_factory, cli, data_root, mlflow_uri):
    out = tmp_path_factory.mktemp("rt") / "exponential"
    cli(["python", "pipelines/range_test.py", *TINY, "range_test=exponential", f"out={out}",
         f"data_root={data_root}", "study=test_range_test"])
    return out


def test_exponential_cli_stops_at_divergence(exponential_run, mlflow_uri) -> None:
    curve = pd.read_csv(exponential_run / "curve.csv")
    found = json.loads((exponential_run / "suggestion.json").read_text())
    assert set(found) >= SUGGESTION_KEYS and set(found["rules"]) == set(RULES)
    assert found["protocol"] == "exponential" and found["method"] == "valley"
    assert found["stopped_early"] and found["iterations_run"] == len(curve) < found["iterations_planned"] == 60
    assert found["diverged_lr"] == pytest.approx(curve["lr"].iloc[-1])
    last = curve.iloc[-1]
    assert last["smoothed_loss"] > 4 * curve["smoothed_loss"].iloc[:-1].min() or not math.isfinite(
        last["train_loss"])
    assert all(v < found["diverged_lr"] for v in found["rules"].values() if v is not None)
    assert found["max_lr"] == found["rules"]["valley"]
    assert found["min_lr"] == pytest.approx(found["max_lr"] / 10)
    assert found["dataset"] == "digits" and len(found["dataset_sha256"]) == 64
    assert curve["test_acc"].notna().sum() >= 2 and curve["lr"].is_monotonic_increasing
    assert (exponential_run / "range_test.png").stat().st_size > 10_000
    run = MlflowClient(mlflow_uri).get_run(found["tracking_run_id"])
    assert run.data.tags["superconv.range_test.protocol"] == "exponential"


def test_linear_cli_covers_its_whole_range(tmp_path, data_root) -> None:
    out = tmp_path / "linear"
    proc = run_entry(["python", "pipelines/range_test.py", *TINY, "range_test=linear", "range_test.linear.end_lr=0.05",
                      f"out={out}", f"data_root={data_root}", "tracking.enabled=false"])  # in-process
    assert proc.returncode == 0, proc.stderr
    curve = pd.read_csv(out / "curve.csv")
    found = json.loads((out / "suggestion.json").read_text())
    assert len(curve) == found["iterations_run"] == 60 and not found["stopped_early"]
    assert curve["lr"].iloc[0] == 0.0 and curve["lr"].iloc[-1] == pytest.approx(0.05)
    assert found["method"] == "accuracy_peak" and found["stop_factor"] is None
    evaluated = curve.dropna(subset=["test_acc"])
    assert list(evaluated["iteration"]) == list(range(4, 60, 5))
    assert found["max_lr"] == pytest.approx(evaluated.loc[evaluated["test_acc"].idxmax(), "lr"])
    assert (out / "range_test.png").stat().st_size > 10_000


def test_training_with_lr_from_uses_the_suggestion(exponential_run, tmp_path, data_root, mlflow_uri) -> None:
    found = json.loads((exponential_run / "suggestion.json").read_text())
    out = tmp_path / "train"
    path = exponential_run / "suggestion.json"
    proc = run_entry(["python", "pipelines/train.py", *TINY, "schedule=one_cycle", f"lr_from={path}", f"out={out}",
                      f"data_root={data_root}", "trainer.max_iterations=10", "study=test_range_test"])  # in-process
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schedule"]["max_lr"] == pytest.approx(found["max_lr"])
    assert summary["schedule"]["min_lr"] == pytest.approx(found["min_lr"])
    assert summary["lr_source"] == str(path)
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["lr"].iloc[0] == pytest.approx(found["min_lr"])
    run = MlflowClient(mlflow_uri).get_run(summary["tracking_run_id"])
    assert run.data.tags["superconv.lr_source"] == str(path)
    assert float(run.data.params["schedule.max_lr"]) == pytest.approx(found["max_lr"])


def test_range_test_runs_the_training_loop_with_its_progress_bar(data_root, capsys) -> None:
    """The range test is the training loop with an LR ramp: its bar shows lr, loss and accuracy like training's,
    and its rows carry the loop's columns plus the smoothed loss."""
    cfg = compose_stage_config("range_test", [*TINY, f"data_root={data_root}", "range_test.linear.iterations=12",
                                              "range_test.linear.end_lr=0.05", "range_test.linear.eval_every=4"])
    prepared = load_prepared(data_root / "digits")
    train = DeviceData(prepared.train, torch.device("cpu"), input_scale=1 / 256)
    test = DeviceData(prepared.test, torch.device("cpu"), input_scale=1 / 256)
    model = build_model(OmegaConf.to_container(cfg.model, resolve=True))
    trainable = Trainable(model, model, torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9), FP32)
    result = run_range_test(cfg.range_test, trainable, classification_step(trainable, train, 64),
                            held_out(trainable, test, 300, 300), Tracker(), batch=64, log_every=4, progress=True)
    bar = capsys.readouterr().err
    assert "range test (linear)" in bar and "lr=" in bar and "loss=" in bar and "acc=" in bar
    assert [r["iteration"] for r in result.rows] == list(range(12))
    assert [r["iteration"] for r in result.rows if r["test_acc"] is not None] == [3, 7, 11]
    assert all(math.isfinite(r["smoothed_loss"]) for r in result.rows)
    assert result.rows[-1]["lr"] == pytest.approx(cfg.range_test.end_lr)
