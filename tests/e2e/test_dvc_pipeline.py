"""`dvc repro` and `dvc exp run -S` of the real pipeline, in a temp git repo, on the tiny profile."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

TINY_STUDY = {"experiment": "tiny_digits_lenet", "dataset": "digits", "study": "e2e_tiny",
              "runs": ["one_cycle", "inv"], "seeds": [0, 1], "overrides": ""}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mlflow_uri):
    """A copy of the committed project files as a fresh git + DVC repo with the tiny study."""
    dest = tmp_path_factory.mktemp("e2e") / "project"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in files.split():
        if rel.startswith(("reports/", "dvc.lock")):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(TINY_STUDY, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


@pytest.fixture(scope="module")
def reproduced(repo):
    run_cli(["dvc", "repro"], cwd=repo)
    return repo


def test_repro_builds_every_stage_and_the_report(reproduced, mlflow_uri) -> None:
    repo = reproduced
    for run in ("one_cycle-0", "one_cycle-1", "inv-0", "inv-1"):
        assert (repo / "results/train" / run / "metrics.csv").is_file()
    assert (repo / "results/range_test/tiny_digits_lenet/suggestion.json").is_file()
    report = (repo / "reports/report.md").read_text()
    assert "## Verdicts" in report and "one_cycle" in report and "inv" in report
    for fig in ("accuracy_vs_iteration", "schedules", "range_test"):
        assert (repo / "reports/figures" / f"{fig}.png").stat().st_size > 10_000
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["one_cycle_final_test_acc_mean"] > 80
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {"prepare", "range_test", "train@one_cycle-0", "train@inv-1", "train_lr_from_range_test@1",
            "report"} <= set(lock["stages"])
    found = json.loads((repo / "results/range_test/tiny_digits_lenet/suggestion.json").read_text())
    fed = json.loads((repo / "results/train/one_cycle_lr_from_range_test-0/summary.json").read_text())
    assert fed["schedule"]["max_lr"] == found["max_lr"] and fed["run"] == "one_cycle_lr_from_range_test"
    status = run_cli(["dvc", "status"], cwd=repo).stdout
    assert "up to date" in status
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("superconv")
    parent = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study' and "
                                "tags.`superconv.study` = 'e2e_tiny'")
    assert len(parent) == 1
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    assert sorted(c.data.tags["superconv.role"] for c in children) == ["range_test"] + ["train"] * 6
    assert "report/report.md" in {a.path for a in client.list_artifacts(parent[0].info.run_id, "report")}


def test_exp_run_with_an_override_changes_the_metrics(reproduced) -> None:
    repo = reproduced
    before = json.loads((repo / "reports/metrics.json").read_text())["one_cycle_final_test_acc_mean"]
    run_cli(["dvc", "exp", "run", "-n", "capped", "-S", "overrides='trainer.max_iterations=8'"], cwd=repo)
    shown = json.loads(run_cli(["dvc", "exp", "show", "--json"], cwd=repo).stdout)
    capped = [run["data"]["metrics"]["reports/metrics.json"]["data"]["one_cycle_final_test_acc_mean"]
              for rev in shown for exp in rev.get("experiments") or [] for run in exp["revs"]
              if run["name"] == "capped"]
    assert len(capped) == 1, shown
    assert capped[0] < before - 5, (capped, before)
