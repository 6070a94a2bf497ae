"""`python -m superconv.report.compare` on a real MLflow store and on run directories."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from superconv.common.tracking import ROLE_TAG, STUDY_TAG, study_run_id
from superconv.report.compare import main
from tests.report_data import write_run
from tests.unit.test_report_claims import MNIST, mnist_study

EXPERIMENT = "report_compare_test"


def log_train_run(client: MlflowClient, exp_id: str, parent: str, run: str, seed: int, accs: list[float],
                  status: str = "FINISHED") -> str:
    """A child run as train_stage logs it: tags, flattened params, per-iteration and per-evaluation histories."""
    tags = {"mlflow.parentRunId": parent, STUDY_TAG: "cmp", ROLE_TAG: "train", "superconv.run": run,
            "superconv.seed": str(seed), "superconv.experiment": MNIST, "superconv.dataset_source": "fixture"}
    child = client.create_run(exp_id, run_name=f"{run}-seed{seed}", tags=tags).info.run_id
    params = {"schedule.policy": run, "trainer.total_batch": "512", "dataset.train_size": "60000"}
    metrics = []
    for i in range(10 * len(accs)):
        metrics += [Metric("lr", 0.01, 0, i), Metric("momentum", 0.9, 0, i), Metric("train_loss", 1 / (i + 1), 0, i)]
        if (i + 1) % 10 == 0:
            metrics += [Metric("test_acc", accs[(i + 1) // 10 - 1], 0, i), Metric("test_loss", 0.1, 0, i)]
    metrics.append(Metric("final_test_acc", accs[-1], 0, 10 * len(accs)))
    client.log_batch(child, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(child, status)
    return child


@pytest.fixture(scope="module")
def store(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    exp_id = client.create_experiment(EXPERIMENT)
    parent = study_run_id(client, exp_id, "cmp")
    ids = [log_train_run(client, exp_id, parent, "one_cycle", s, a)
           for s, a in ((0, [97.0, 99.05, 99.2]), (1, [97.0, 98.0, 99.1]), (2, [99.1, 99.2, 99.3]))]
    inv = [90.0, 95.0, 97.0, 98.0, 98.5, 98.6, 98.7, 98.8, 98.85]
    ids += [log_train_run(client, exp_id, parent, "inv", s, [*inv, f]) for s, f in ((0, 99.0), (1, 98.9), (2, 99.1))]
    ids.append(log_train_run(client, exp_id, parent, "inv", 3, [90.0, 50.0], status="FAILED"))
    return mlflow_uri, ids


def test_compare_a_study_from_mlflow(store, tmp_path) -> None:
    uri, _ = store
    out = tmp_path / "cmp"
    assert main(["--study", "cmp", "--experiment", EXPERIMENT, "--tracking-uri", uri, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["one_cycle_final_test_acc_mean"] == pytest.approx(99.2)
    assert metrics["inv_final_test_acc_mean"] == pytest.approx(99.0) and metrics["inv_diverged"] == 1
    assert metrics["speedup_iterations_ratio"] == pytest.approx(0.2)  # same histories as the directory fixture
    text = (out / "report.md").read_text()
    assert "MLflow study 'cmp'" in text and "**INCONCLUSIVE**: 1cycle reaches the Caffe inv baseline" in text
    assert "MLflow run FAILED" in text
    assert (out / "figures" / "accuracy_vs_iteration.png").stat().st_size > 10_000


def test_compare_run_ids_and_filter(store, tmp_path) -> None:
    uri, ids = store
    common = ["--experiment", EXPERIMENT, "--tracking-uri", uri]
    assert main(["--run-ids", *ids[:3], "--out", str(tmp_path / "ids"), *common]) == 0
    runs = pd.read_csv(tmp_path / "ids" / "tables" / "runs.csv")
    assert sorted(runs["tracking_run_id"]) == sorted(ids[:3]) and set(runs["run"]) == {"one_cycle"}
    flt = "tags.`superconv.run` = 'inv'"
    assert main(["--filter", flt, "--out", str(tmp_path / "flt"), *common]) == 0
    assert "**NOT RUN**: 1cycle reaches" in (tmp_path / "flt" / "report.md").read_text()


def test_compare_sweep_dirs_with_labels(tmp_path) -> None:
    mnist_study(tmp_path / "multirun" / "0")
    write_run(tmp_path / "multirun" / "1", "one_cycle", 0, [99.0, 99.4], experiment=MNIST,
              schedule={"policy": "one_cycle", "max_lr": 0.2})
    out = tmp_path / "sweep"
    assert main(["--dirs", str(tmp_path / "multirun" / "*"), "--label", "schedule.max_lr", "--out", str(out),
                 "--policy", "one_cycle [max_lr=0.2]", "--baseline", "inv [max_lr=0.1]"]) == 0
    text = (out / "report.md").read_text()
    assert "one_cycle [max_lr=0.2]" in text and "one_cycle [max_lr=0.1]" in text
    assert "in at most half of inv [max_lr=0.1]'s iterations" in text


def test_compare_reports_an_empty_selection(tmp_path, capsys) -> None:
    assert main(["--dirs", str(tmp_path / "nothing*"), "--out", str(tmp_path / "o")]) == 2
    assert "no training results found" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "{tmp}/o"], "one of the arguments --dirs --study --run-ids --filter is required"),
    (["--dirs", "x", "--study", "s", "--out", "{tmp}/o"], "argument --study: not allowed with argument --dirs"),
    (["--study", "", "--out", "{tmp}/o"], "argument --study: '' must be a non-empty string"),
    (["--run-ids", "abc", "--out", "{tmp}/o"], "argument --run-ids: 'abc' must be an MLflow run id"),
    (["--dirs", "x", "--out", "{tmp}/file/o"], "argument --out: '{tmp}/file/o' must be a writable directory"),
    (["--dirs", "x", "--out", "{tmp}/o", "--label", "max lr"], "argument --label: 'max lr' must be a dotted config"),
    (["--dirs", "x", "--out", "{tmp}/o", "--range-test-dir", "{tmp}"], "argument --range-test-dir: '{tmp}' must be a "
                                                                       "directory holding a range test's curve.csv"),
    (["--study", "s", "--out", "{tmp}/o", "--tracking-uri", "http://"], "argument --tracking-uri: 'http://' must be"),
    (["--dirs", "x", "--out", "{tmp}/o", "--policy", "inv", "--baseline", "inv"], "'inv' is also --policy"),
    (["--dirs", "x", "--out", "{tmp}/o", "--experiment", " "], "argument --experiment: ' ' must be a non-empty"),
])
def test_compare_rejects_bad_arguments_on_one_line(tmp_path, capsys, args, message) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stop:
        main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message.format(tmp=tmp_path) in err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("error: ")
    assert not (tmp_path / "o").exists()
