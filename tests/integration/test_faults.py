"""Divergence, SIGTERM and kill -9: a run stops cleanly, is recorded, and resumes bit-identically."""

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

from tests.conftest import ROOT, TINY


def test_absurd_lr_diverges_cleanly(tmp_path, cli, data_root, mlflow_uri) -> None:
    out = tmp_path / "div"
    proc = cli(["python", "pipelines/train.py", *TINY, "schedule.max_lr=50", f"out={out}",
                f"data_root={data_root}"], check=False)
    assert proc.returncode == 3, proc.stderr
    assert "training diverged" in proc.stderr and "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"] and summary["iterations"] < 70
    run = MlflowClient(mlflow_uri).get_run(summary["tracking_run_id"])
    assert run.info.status == "FAILED"
    assert "diverged" in run.data.tags["superconv.failure_reason"]


def test_divergence_can_be_recorded_without_failing_the_study(tmp_path, cli, data_root) -> None:
    out = tmp_path / "div"
    cli(["python", "pipelines/train.py", *TINY, "schedule.max_lr=50", f"out={out}", f"data_root={data_root}",
         "trainer.fail_on_divergence=false", "tracking.enabled=false"])
    assert json.loads((out / "summary.json").read_text())["diverged"] is True


def _start(out, data_root, extra=()):
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    args = [sys.executable, "pipelines/train.py", *TINY, "schedule=inv", f"out={out}", f"data_root={data_root}",
            "trainer.checkpoint_every=10", "trainer.log_every=5", *extra]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(out, proc, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_root, mlflow_uri):
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = _start(out, data_root)
    assert proc.wait() == 0, proc.communicate()
    return pd.read_csv(out / "metrics.csv")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill-9"])
def test_interrupted_run_resumes_bit_identically(tmp_path, data_root, mlflow_uri, uninterrupted, sig) -> None:
    out = tmp_path / "run"
    proc = _start(out, data_root)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(sig)
    code = proc.wait()
    _, stderr = proc.communicate()
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, stderr
        assert "re-run the same command to resume" in stderr
    else:
        assert code == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    resumed = _start(out, data_root)
    assert resumed.wait() == 0, resumed.communicate()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv"), uninterrupted)
    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["tracking_run_id"])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")]
    assert sorted(steps) == list(range(len(uninterrupted))), "every step logged exactly once"
