"""pipelines/train.py as users run it: files, MLflow run, reproducibility, the iteration cap, sweeps."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, TINY, run_entry

SUMMARY_KEYS = {"final_test_acc", "iterations", "wall_s", "images_per_s", "best_test_acc", "diverged"}


@pytest.fixture(scope="module")
def one_cycle_run(tmp_path_factory, cli, data_root, mlflow_uri):
    out = tmp_path_factory.mktemp("train") / "one_cycle"
    cli(["python", "pipelines/train.py", *TINY, "schedule=one_cycle", "seed=3", f"out={out}",
         f"data_root={data_root}", "study=test_train_cli"])
    return out


def test_writes_metrics_and_summary(one_cycle_run) -> None:
    metrics = pd.read_csv(one_cycle_run / "metrics.csv")
    assert {"iteration", "lr", "momentum", "train_loss", "test_loss", "test_acc"} <= set(metrics.columns)
    summary = json.loads((one_cycle_run / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["iterations"] == len(metrics) == 70  # 6 epochs of 1497 at batch 128
    assert metrics["lr"].max() == pytest.approx(0.05, rel=0.02)
    assert metrics["momentum"].min() == pytest.approx(0.8, abs=0.01)
    assert summary["final_test_acc"] > 80.0, "1cycle on digits must learn"
    assert metrics["train_loss"].iloc[-10:].mean() < metrics["train_loss"].iloc[:5].mean() / 3


def test_mlflow_run_has_params_curves_tags_and_parent(one_cycle_run, mlflow_uri) -> None:
    summary = json.loads((one_cycle_run / "summary.json").read_text())
    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["tracking_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["schedule.max_lr"] == "0.05"
    assert run.data.params["optimizer.weight_decay"] == "0.0005"
    assert run.data.tags["superconv.dataset_sha256"] == summary["dataset_sha256"]
    assert "superconv.git_commit" in run.data.tags
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.tags["superconv.study"] == "test_train_cli"
    assert len(client.get_metric_history(run.info.run_id, "lr")) == summary["iterations"]
    accs = client.get_metric_history(run.info.run_id, "test_acc")
    assert accs[-1].value == pytest.approx(summary["final_test_acc"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.csv", "summary.json", "curves.png"} <= artifacts


def test_same_seed_same_curves_and_cap_keeps_shape(one_cycle_run, tmp_path, data_root) -> None:
    again, capped = tmp_path / "again", tmp_path / "capped"
    # the entry point in this process (run_entry): the same numbers as the fixture's process of its own
    for out, more in ((again, []), (capped, ["trainer.max_iterations=15"])):
        proc = run_entry(["python", "pipelines/train.py", *TINY, "seed=3", f"out={out}", f"data_root={data_root}",
                          "tracking.enabled=false", *more])
        assert proc.returncode == 0, proc.stderr
    first = pd.read_csv(one_cycle_run / "metrics.csv")
    second = pd.read_csv(again / "metrics.csv")
    pd.testing.assert_frame_equal(first, second)
    short = pd.read_csv(capped / "metrics.csv")
    assert len(short) == 15
    pd.testing.assert_series_equal(short["lr"], first["lr"].iloc[:15])
    pd.testing.assert_series_equal(short["train_loss"], first["train_loss"].iloc[:15])


def test_sweep_gives_one_child_run_per_point(tmp_path, cli, data_root, mlflow_uri) -> None:
    """Run from another directory with a relative sweep dir: each point's config.yaml keeps ``out`` relative (it
    is committed; an absolute path would name the machine that ran it)."""
    sweep_dir = tmp_path / "sweep"
    cli(["python", str(ROOT / "pipelines/train.py"), "-m", *TINY, "schedule.max_lr=0.05,0.1",
         f"data_root={data_root}", "trainer.max_iterations=10", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    summaries = [json.loads((sweep_dir / str(i) / "summary.json").read_text()) for i in range(2)]
    assert [yaml.safe_load((sweep_dir / str(i) / "config.yaml").read_text())["out"] for i in range(2)] == [
        "sweep/0", "sweep/1"]
    assert [s["schedule"]["max_lr"] for s in summaries] == [0.05, 0.1]
    client = MlflowClient(mlflow_uri)
    parents = {client.get_run(s["tracking_run_id"]).data.tags["mlflow.parentRunId"] for s in summaries}
    assert len(parents) == 1
    exp = client.get_experiment_by_name("superconv")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parents.pop()}'")
    assert len(children) == 2


def test_other_schedule_of_the_same_experiment(tmp_path, data_root) -> None:
    out = tmp_path / "inv"
    proc = run_entry(["python", "pipelines/train.py", *TINY, "schedule=inv", f"out={out}", f"data_root={data_root}",
                      "tracking.enabled=false", "trainer.max_iterations=20"])  # the cap keeps the schedule's shape
    assert proc.returncode == 0, proc.stderr
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 20 and json.loads((out / "summary.json").read_text())["schedule_iterations"] == 120
    assert metrics["lr"].iloc[0] == pytest.approx(0.01)
    assert metrics["momentum"].nunique() == 1


def test_parallel_joblib_sweep_on_a_fresh_sqlite_store_loses_nothing(tmp_path, cli, data_root) -> None:
    """Two processes start on a store that does not exist yet, then log concurrently."""
    uri = f"sqlite:///{tmp_path}/fresh.db"
    sweep_dir = tmp_path / "sweep"
    cli(["python", "pipelines/train.py", "-m", *TINY, "seed=0,1", f"data_root={data_root}",
         "trainer.max_iterations=20", "trainer.log_every=2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
         f"hydra.sweep.dir={sweep_dir}"], env={"MLFLOW_TRACKING_URI": uri})
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("superconv")
    runs = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'train'")
    assert len(runs) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {
        client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study'")[0].info.run_id}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == list(range(20))
        assert len(client.get_metric_history(run.info.run_id, "test_acc")) == 2
