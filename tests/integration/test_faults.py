"""Divergence, SIGTERM and kill -9: a run stops cleanly, is recorded, and resumes bit-identically (and refuses to
resume under a changed config: test_resume_refused.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, TINY, run_entry


def test_absurd_lr_diverges_cleanly(tmp_path, data_root, mlflow_uri) -> None:
    out = tmp_path / "div"
    proc = run_entry(["python", "pipelines/train.py", *TINY, "schedule.max_lr=50", f"out={out}",
                      f"data_root={data_root}"])  # the entry point in-process; exit 3 as a process would
    assert proc.returncode == 3, proc.stderr
    assert "training diverged" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] and summary["iterations"] < 70
    run = MlflowClient(mlflow_uri).get_run(summary["tracking_run_id"])
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["superconv.failure_reason"]


def test_divergence_can_be_recorded_without_failing_the_study(tmp_path, data_root) -> None:
    out = tmp_path / "div"
    proc = run_entry(["python", "pipelines/train.py", *TINY, "schedule.max_lr=50", f"out={out}",
                      f"data_root={data_root}", "trainer.fail_on_divergence=false", "tracking.enabled=false"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["diverged"] is True


# Each stage's interrupted run, resumed, must end bit-identical to its uninterrupted run: training (inv) and the
# LR range test drive the same loop, so both checkpoint, stop on SIGTERM and resume the same way. Both are capped at
# 40 iterations: a run checkpoints at 10, 20 and 30, so the one stopped after its first checkpoint resumes across
# checkpoints, evaluations (every 10) and epoch boundaries (digits: 1497 images, batch 128), with 30 iterations
# left to outlast the stop signal.
CAP = "trainer.max_iterations=40"
STAGES = {
    "train": (["pipelines/train.py", "schedule=inv", CAP], "metrics.csv"),
    "range_test": (["pipelines/range_test.py", "range_test=linear", "range_test.linear.end_lr=0.05",
                    "range_test.linear.eval_every=10", CAP], "curve.csv"),  # a ramp to 0.05: none diverges
}


def _start(stage, out, data_root, *more):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    script, *extra = STAGES[stage][0]
    args = [sys.executable, script, *TINY, *extra, f"out={out}", f"data_root={data_root}",
            "trainer.checkpoint_every=10", "trainer.log_every=5", *more]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(out, proc, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _outputs(stage, out):
    """The stage's curve, and (range test) its suggestion without the MLflow run id."""
    frame = pd.read_csv(out / STAGES[stage][1])
    if stage == "train":
        return frame, None
    found = json.loads((out / "suggestion.json").read_text())
    found.pop("tracking_run_id")
    return frame, found


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_root):
    """Each stage's run to its end, untracked: the tests compare curves with it, and MLflow only on the resumed runs."""
    done = {}
    for stage in STAGES:
        out = tmp_path_factory.mktemp("whole") / stage
        proc = _start(stage, out, data_root, "tracking.enabled=false")
        assert proc.wait() == 0, proc.communicate()
        done[stage] = _outputs(stage, out)
    return done


# Each stage stopped by SIGTERM and killed -9, but for a training run killed -9: that one resumes into another store
# (test_a_run_resumed_into_another_store_is_logged_whole_there), which asserts the same and more.
INTERRUPTIONS = [pytest.param(signal.SIGTERM, "train", id="sigterm-train"),
                 pytest.param(signal.SIGTERM, "range_test", id="sigterm-range_test"),
                 pytest.param(signal.SIGKILL, "range_test", id="kill-9-range_test")]


@pytest.mark.parametrize(("sig", "stage"), INTERRUPTIONS)
def test_interrupted_run_resumes_bit_identically(tmp_path, data_root, mlflow_uri, uninterrupted, sig, stage) -> None:
    out = tmp_path / "run"
    proc = _start(stage, out, data_root)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(sig)
    code = proc.wait()
    _, stderr = proc.communicate()
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, stderr
        assert "re-run the same command to resume" in stderr
    else:
        assert code == -signal.SIGKILL
    assert not (out / STAGES[stage][1]).exists(), "stopped before its end"
    resumed = _start(stage, out, data_root)
    assert resumed.wait() == 0, resumed.communicate()
    frame, found = _outputs(stage, out)
    expected_frame, expected_found = uninterrupted[stage]
    pd.testing.assert_frame_equal(frame, expected_frame)
    assert found == expected_found
    if stage == "train":
        summary = json.loads((out / "summary.json").read_text())
        assert summary["resumed"] is True
        run_id = summary["tracking_run_id"]
    else:
        run_id = json.loads((out / "suggestion.json").read_text())["tracking_run_id"]
    client = MlflowClient(mlflow_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("superconv.resumed") == "true"
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == list(range(len(expected_frame))), "every step logged exactly once"


def test_a_run_resumed_into_another_store_is_logged_whole_there(tmp_path, data_root, mlflow_uri, uninterrupted) -> None:
    """A training run killed -9, resumed with its run directory copied to another machine (or a removed store): its
    checkpoint names an MLflow run that store does not have; the resumed run is a new run there, bit-identical to
    the uninterrupted run, with every step, and names the run it came from."""
    out = tmp_path / "run"
    proc = _start("train", out, data_root)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    proc.communicate()
    assert not (out / "metrics.csv").exists(), "killed before its end"
    other = f"sqlite:///{tmp_path}/other.db"
    resumed = _start("train", out, data_root, f"tracking.uri={other}")
    stdout, stderr = resumed.communicate()
    assert resumed.returncode == 0, stderr
    assert "is not in" in stdout and "logging the resumed run as a new run" in stdout, stdout
    expected_frame, _ = uninterrupted["train"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv"), expected_frame)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True
    client = MlflowClient(other)
    run = client.get_run(summary["tracking_run_id"])
    assert run.info.status == "FINISHED" and run.data.params["seed"] == "0"
    first = run.data.tags["superconv.resumed_from_run"]
    assert MlflowClient(mlflow_uri).get_run(first).info.status == "RUNNING"  # killed -9 in the first store
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(len(expected_frame))), "every step logged exactly once"
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        expected_frame["train_loss"].tolist(), rel=1e-6)
    assert len(client.get_metric_history(run.info.run_id, "test_acc")) == expected_frame["test_acc"].notna().sum()
