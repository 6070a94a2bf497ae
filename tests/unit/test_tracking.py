"""Where a new MLflow experiment keeps its artifacts (queued DVC experiments run in temporary copies), and
background metric sends that a resumed run confirms by sending again."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from superconv.common.tracking import Tracker, artifact_root, experiment_id


def test_artifact_root_sits_beside_a_sqlite_store(tmp_path, monkeypatch) -> None:
    assert artifact_root("sqlite:////data/runs/mlflow.db", "superconv") == "/data/runs/mlruns/superconv"
    assert artifact_root("sqlite:////data/mlflow.db?timeout=30", "a b/c") == "/data/mlruns/a_b_c"
    monkeypatch.chdir(tmp_path)
    assert artifact_root("sqlite:///mlflow.db", "x") == str(tmp_path.resolve() / "mlruns" / "x")
    assert artifact_root("http://127.0.0.1:5000", "x") is None


def test_an_experiment_created_in_a_temporary_copy_keeps_its_artifacts_beside_the_store(
        mlflow_uri, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # as a queued `dvc exp run` in .dvc/tmp/exps/tmpXXXX would be
    client = MlflowClient(mlflow_uri)
    location = client.get_experiment(experiment_id(client, "artifact-root-probe")).artifact_location
    store_dir = Path(mlflow_uri.removeprefix("sqlite:///")).resolve().parent
    assert location.removeprefix("file://") == str(store_dir / "mlruns" / "artifact-root-probe")
    assert not location.removeprefix("file://").startswith(str(tmp_path))


def _steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_a_background_flush_reaches_the_store_and_a_resend_adds_no_duplicate(mlflow_uri) -> None:
    client = MlflowClient(mlflow_uri)
    run_id = client.create_run(experiment_id(client, "background-flush")).info.run_id
    tracker = Tracker(client, run_id, flush_every=None)
    for step in range(5):
        tracker.log_metrics({"train_loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
    unconfirmed = tracker.flush(wait=False)
    assert sorted(row[3] for row in unconfirmed if row[0] == "train_loss") == list(range(5))
    tracker.log_metrics({"train_loss": 0.1, "lr": 0.1}, step=5)
    assert tracker.flush(wait=True) == [], "a waited flush leaves nothing unconfirmed"
    assert _steps(client, run_id, "train_loss") == list(range(6))
    Tracker(client, run_id).resend(unconfirmed)  # what a run resumed after a kill -9 does
    assert _steps(client, run_id, "train_loss") == list(range(6)), "exact duplicates are ignored"
    assert _steps(client, run_id, "lr") == list(range(6))


def test_a_resend_fills_in_a_flush_that_never_arrived(mlflow_uri) -> None:
    client = MlflowClient(mlflow_uri)
    run_id = client.create_run(experiment_id(client, "lost-flush")).info.run_id
    lost = [["train_loss", 0.5, 1_700_000_000_000, step] for step in range(3)]
    Tracker(client, run_id).resend(lost)
    assert [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, "train_loss"),
                                               key=lambda m: m.step)] == [(0, 0.5), (1, 0.5), (2, 0.5)]
