"""MLflow server mode: two training processes log concurrently to one `mlflow server` over HTTP.

The server is started as documented in docs/scale_out_cluster.md (loopback only, one worker, a SQLite
backend, artifacts proxied by the server into --artifacts-destination) and checked only through HTTP.
Its start-up (two imports of MLflow) is most of this module's time.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

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
def two_concurrent_runs(mlflow_server, tmp_path_factory, cli, data_root):
    uri, _ = mlflow_server
    outs = tmp_path_factory.mktemp("server_runs")

    def train(seed: int) -> Path:
        out = outs / f"seed{seed}"
        cli(["python", "pipelines/train.py", *TINY, f"seed={seed}", f"out={out}", f"data_root={data_root}",
             f"trainer.max_iterations={ITERATIONS}", "trainer.log_every=2", "trainer.threads=1",
             "study=server_mode"],
            env={"MLFLOW_TRACKING_URI": uri})
        return out

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(train, (0, 1)))


def test_one_parent_two_complete_children_over_http(mlflow_server, two_concurrent_runs) -> None:
    uri, _ = mlflow_server
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("superconv")
    parents = client.search_runs([exp.experiment_id],
                                 "tags.`superconv.study` = 'server_mode' and tags.`superconv.role` = 'study'")
    assert len(parents) == 1
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert len(children) == 2
    by_id = {c.info.run_id: c for c in children}
    for out in two_concurrent_runs:
        summary = json.loads((out / "summary.json").read_text())
        run = by_id[summary["tracking_run_id"]]
        assert run.info.status == "FINISHED"
        metrics = pd.read_csv(out / "metrics.csv")
        history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
        assert [m.step for m in history] == metrics["iteration"].tolist() == list(range(ITERATIONS))
        assert [m.value for m in history] == pytest.approx(metrics["train_loss"].tolist(), rel=1e-6)


def test_artifacts_download_over_http_and_land_in_the_destination(mlflow_server, two_concurrent_runs,
                                                                  tmp_path) -> None:
    uri, root = mlflow_server
    client = MlflowClient(uri)
    for out in two_concurrent_runs:
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
    check_tracking probes an API path after /health (superconv.config._check_host_allowed)."""
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
