"""Bad input: one clear line naming the key and the fix, exit code 2, nothing written."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from omegaconf import OmegaConf

from superconv.config import ConfigError, check_tracking
from tests.conftest import TINY

CASES = [
    (["schedule.min_lr=0.5"], "schedule.min_lr=0.5 is above schedule.max_lr"),
    (["schedule.max_lr=-1"], "schedule.max_lr=-1"),
    (["schedule.momentum=1.2"], "schedule.momentum=1.2 must be in [0, 1)"),
    (["schedule.momentum_min=1.0"], "schedule.momentum_min=1.0 must be in [0, 1)"),
    (["schedule.momentum_min=-0.1"], "schedule.momentum_min=-0.1 must be in [0, 1)"),
    (["schedule.momentum=high"], "schedule.momentum='high' must be in [0, 1)"),
    (["optimizer.momentum=1.0"], "optimizer.momentum=1.0 must be in [0, 1)"),
    (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1"),
    (["schedule.stepsize=4"], "longer than schedule.length"),
    (["trainer.max_iterations=0"], "trainer.max_iterations=0"),
    (["schedule=triangular"], "no recipe for this schedule"),
    (["lr_from=/nonexistent/suggestion.json"], "lr_from='/nonexistent/suggestion.json' does not exist"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[c[0][0] for c in CASES])
def test_bad_training_input(tmp_path, cli, data_root, overrides, message) -> None:
    out = tmp_path / "out"
    proc = cli(["python", "pipelines/train.py", *TINY, f"out={out}", f"data_root={data_root}",
                "tracking.enabled=false", *overrides], check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.csv").exists()


def test_missing_prepared_dataset_says_run_prepare(tmp_path, cli) -> None:
    proc = cli(["python", "pipelines/train.py", *TINY, f"out={tmp_path / 'o'}", f"data_root={tmp_path}",
                "tracking.enabled=false"], check=False)
    assert proc.returncode == 2
    assert "run the prepare stage" in proc.stderr


def test_bad_range_test_input(tmp_path, cli, data_root) -> None:
    proc = cli(["python", "pipelines/range_test.py", *TINY, f"out={tmp_path / 'o'}", f"data_root={data_root}",
                "tracking.enabled=false", "range_test.end_lr=0.0"], check=False)
    assert proc.returncode == 2
    assert "range_test.end_lr=0.0" in proc.stderr


MORE_CASES = [
    (["trainer.eval_every=1000"], {}, "trainer.eval_every=1000 is longer than the run"),
    (["schedule.max_lr=nan"], {}, "schedule.max_lr=nan must be a finite number"),
    (["out=/etc/hostname/run"], {}, "is not a writable directory"),
    # Through MLFLOW_TRACKING_URI, as a shared server is chosen (docs/scale_out_cluster.md); the override
    # tracking.uri=... resolves to the same key. Other unusable URIs: test_check_tracking_names_* below.
    ([], {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9/"}, "tracking.uri=http://127.0.0.1:9/ cannot be reached"),
    ([], {"WORLD_SIZE": "3"}, "not divisible by the world size 3"),
]


@pytest.mark.parametrize(("overrides", "env", "message"), MORE_CASES, ids=[c[2][:30] for c in MORE_CASES])
def test_bad_run_settings_fail_before_compute(tmp_path, cli, data_root, overrides, env, message) -> None:
    out = tmp_path / "out"
    proc = cli(["python", "pipelines/train.py", *TINY, f"out={out}", f"data_root={data_root}", *overrides],
               env=env, check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], "one line"
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.csv").exists()


@pytest.mark.parametrize(("override", "group"), [("schedule=cosine", "schedule"), ("model=vgg", "model"),
                                                 ("dataset=svhn", "dataset"), ("experiment=nope", "experiment")])
def test_unknown_names_list_the_options(tmp_path, cli, override, group) -> None:
    proc = cli(["python", "pipelines/train.py", override, f"out={tmp_path / 'o'}"], check=False)
    assert proc.returncode != 0
    assert f"Could not find '{group}/" in proc.stderr and f"Available options in '{group}'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def not_http_port() -> Iterator[int]:
    """A loopback port where something that is not HTTP answers (an SSH banner), as a mistyped port does."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:notaport", "http://", "https://127.0.0.1:9/",
                                 "http://127.0.0.1:{not_http_port}/"])
def test_check_tracking_names_any_unusable_http_uri(uri, not_http_port) -> None:
    """Refused, malformed, or not HTTP at all: a ConfigError (exit 2 in the CLIs) on one line, no traceback."""
    uri = uri.format(not_http_port=not_http_port)
    with pytest.raises(ConfigError, match="cannot be reached") as err:
        check_tracking(OmegaConf.create({"tracking": {"enabled": True, "uri": uri}}))
    assert f"tracking.uri={uri} " in str(err.value) and "\n" not in str(err.value)


class _HostCheckingServer(BaseHTTPRequestHandler):
    """What an MLflow >= 3.5 server answers a host name outside --allowed-hosts (see test_mlflow_server.py)."""

    def do_GET(self) -> None:  # noqa: N802 - the handler's API
        ok = self.path == "/health"
        body = b"OK" if ok else b"Invalid Host header - possible DNS rebinding attack detected"
        self.send_response(200 if ok else 403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_check_tracking_names_a_server_that_refuses_our_host_name() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostCheckingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(ConfigError, match="refuses the host name") as err:
            check_tracking(OmegaConf.create({"tracking": {"enabled": True, "uri": uri}}))
    finally:
        server.shutdown()
        server.server_close()
    assert f"--allowed-hosts 127.0.0.1:{server.server_address[1]}" in str(err.value)
