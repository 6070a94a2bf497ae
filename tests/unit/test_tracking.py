"""Where a new MLflow experiment keeps its artifacts (queued DVC experiments run in temporary copies)."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from superconv.tracking import _experiment_id, artifact_root


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
    location = client.get_experiment(_experiment_id(client, "artifact-root-probe")).artifact_location
    store_dir = Path(mlflow_uri.removeprefix("sqlite:///")).resolve().parent
    assert location.removeprefix("file://") == str(store_dir / "mlruns" / "artifact-root-probe")
    assert not location.removeprefix("file://").startswith(str(tmp_path))
