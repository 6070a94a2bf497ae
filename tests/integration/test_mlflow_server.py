"""MLflow server mode and the submitit local launcher, in one sweep (to keep the suite's time down).

An `mlflow server` is started as documented in docs/scale_out_cluster.md (loopback only, one worker, a
SQLite backend, artifacts proxied into --artifacts-destination). A 2-point sweep (`seed=0,1`, one
`study=`) runs through `hydra/launcher=local`: two training processes of pipelines/train.py at once, each
logging over HTTP. Everything is then checked through HTTP: one parent, two complete children, artifacts.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

# The server start-up (two imports of MLflow) and the sweep (three Python processes) take > 20 s.
pytestmark = pytest.mark.slow
ITERATIONS = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's own process group (the CLI and its uvicorn child), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           # The server's job runner (huey consumers for GenAI jobs) is not needed for tracking: off, so
           # start-up is faster and no consumer outlives the server.
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not _healthy(uri):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer {uri}/health:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield uri, root
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def sweep_over_http(mlflow_server, tmp_path_factory, cli, data_root) -> list[Path]:
    """Two training processes of pipelines/train.py at once, different seeds, the same study=, logging over
    HTTP; started by the submitit local launcher (2-point -m sweep), which is itself under test here."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")
    uri, _ = mlflow_server
    sweep_dir = tmp_path_factory.mktemp("server_sweep") / "sweep"
    cli(["python", "pipelines/train.py", "-m", *TINY, "seed=0,1", "study=server_mode", f"data_root={data_root}",
         f"trainer.max_iterations={ITERATIONS}", "trainer.log_every=2", "trainer.threads=1",
         "hydra/launcher=local", f"hydra.sweep.dir={sweep_dir}"], env={"MLFLOW_TRACKING_URI": uri})
    return [sweep_dir / str(i) for i in range(2)]


def test_local_launcher_ran_each_point_as_a_submitit_job(sweep_over_http) -> None:
    sweep_dir = sweep_over_http[0].parent
    assert [json.loads((out / "summary.json").read_text())["seed"] for out in sweep_over_http] == [0, 1]
    job_logs = sorted((sweep_dir / ".submitit").glob("*/*_0_log.out"))
    assert len(job_logs) == 2 and all("Job completed successfully" in p.read_text() for p in job_logs)
    assert len(list((sweep_dir / ".submitit").glob("*/*_0_result.pkl"))) == 2


def test_one_parent_two_complete_children_over_http(mlflow_server, sweep_over_http) -> None:
    uri, _ = mlflow_server
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("superconv")
    parents = client.search_runs([exp.experiment_id],
                                 "tags.`superconv.study` = 'server_mode' and tags.`superconv.role` = 'study'")
    assert len(parents) == 1
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert len(children) == 2
    by_id = {c.info.run_id: c for c in children}
    for out in sweep_over_http:
        summary = json.loads((out / "summary.json").read_text())
        run = by_id[summary["tracking_run_id"]]
        assert run.info.status == "FINISHED"
        metrics = pd.read_csv(out / "metrics.csv")
        history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
        assert [m.step for m in history] == metrics["iteration"].tolist() == list(range(ITERATIONS))
        assert [m.value for m in history] == pytest.approx(metrics["train_loss"].tolist(), rel=1e-6)


def test_artifacts_download_over_http_and_land_in_the_destination(mlflow_server, sweep_over_http,
                                                                  tmp_path) -> None:
    uri, root = mlflow_server
    client = MlflowClient(uri)
    for out in sweep_over_http:
        run_id = json.loads((out / "summary.json").read_text())["tracking_run_id"]
        assert client.get_run(run_id).info.artifact_uri.startswith("mlflow-artifacts:/")
        for name in ("metrics.csv", "summary.json"):
            local = client.download_artifacts(run_id, name, str(tmp_path))
            assert Path(local).read_bytes() == (out / name).read_bytes()
            with urllib.request.urlopen(f"{uri}/get-artifact?path={name}&run_uuid={run_id}", timeout=10) as answer:
                assert answer.read() == (out / name).read_bytes()
        exp_id = client.get_run(run_id).info.experiment_id
        assert (root / "artifacts" / exp_id / run_id / "artifacts" / "metrics.csv").is_file()


def test_server_refuses_host_names_outside_allowed_hosts_but_not_on_health(mlflow_server) -> None:
    """Why docs/scale_out_cluster.md says --allowed-hosts for a server reached by name, and why
    check_tracking probes an API path after /health (superconv.stages.preflight._check_host_allowed)."""
    uri, _ = mlflow_server
    port = urlparse(uri).port

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": f"gpu-login01.example:{port}"})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    assert get("/health")[0] == 200
    status, body = get("/api/2.0/mlflow/experiments/search?max_results=1")
    assert status == 403 and body.startswith(b"Invalid Host header")
