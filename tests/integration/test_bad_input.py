"""Bad input: one clear line naming the key and the fix, exit code 2, nothing written. Each case runs its stage's
entry point in-process (run_entry); one runs as a process of its own."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from superconv.common.errors import ConfigError
from superconv.stages.preflight import check_tracking
from superconv.stages.schema import Tracking
from tests.conftest import TINY, run_entry


def assert_rejected(proc, message: str, out=None) -> None:
    """Exit code 2, one line on stderr naming the problem, no traceback, nothing written to ``out``."""
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], "one line"
    assert "Traceback" not in proc.stderr
    assert out is None or not out.exists() or not any(out.iterdir()), "nothing written"


# A few per kind; tests/unit/test_config_schema.py checks every group's bad values in-process.
CASES = [
    (["trainer.log_every=abc"], "trainer.log_every='abc' must be an integer > 0"),
    (["schedule.min_lr=0.5"], "schedule.min_lr=0.5 is above schedule.max_lr"),
    (["++optimizer.momentum=0.9"], "optimizer.momentum=0.9 is not a setting of optimizer: the learning rate and "
                                   "momentum come from the schedule"),
    (["schedule.stepsize=4"], "longer than schedule.length"),
    (["schedule=triangular"], "no recipe for this schedule"),
    (["lr_from=/nonexistent/suggestion.json"], "lr_from='/nonexistent/suggestion.json' does not exist"),
    (["out=/etc/hostname/run"], "is not a writable directory"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES, ids=[c[0][0] for c in CASES])
def test_bad_training_input(tmp_path, data_root, overrides, message) -> None:
    out = tmp_path / "out"
    proc = run_entry(["python", "pipelines/train.py", *TINY, f"out={out}", f"data_root={data_root}",
                     "tracking.enabled=false", *overrides])
    assert_rejected(proc, message, out)


def test_missing_prepared_dataset_says_run_prepare(tmp_path, cli) -> None:
    """A process of its own (the others run their entry point in-process, tests/conftest.run_entry): the exit
    status and stderr that a shell, DVC or the study runner sees."""
    proc = cli(["python", "pipelines/train.py", *TINY, f"out={tmp_path / 'o'}", f"data_root={tmp_path}",
                "tracking.enabled=false"], check=False)
    assert_rejected(proc, "run the prepare stage")


@pytest.mark.parametrize(("override", "message"), [("range_test.end_lr=0.0", "range_test.end_lr=0.0"),
                                                   ("++range_test.warmup=5", "range_test.warmup=5 is not a setting")])
def test_bad_range_test_input(tmp_path, data_root, override, message) -> None:
    out = tmp_path / "o"
    proc = run_entry(["python", "pipelines/range_test.py", *TINY, f"out={out}", f"data_root={data_root}",
                     "tracking.enabled=false", override])
    assert_rejected(proc, message, out)


ENV_CASES = [
    # Through MLFLOW_TRACKING_URI, as a shared server is chosen (docs/scale_out_cluster.md); the override
    # tracking.uri=... resolves to the same key. Other unusable URIs: test_check_tracking_names_* below.
    ({"MLFLOW_TRACKING_URI": "http://127.0.0.1:9/"}, "tracking.uri=http://127.0.0.1:9/ cannot be reached"),
    ({"WORLD_SIZE": "3"}, "not divisible by the world size 3"),
]


@pytest.mark.parametrize(("env", "message"), ENV_CASES, ids=[c[1][:30] for c in ENV_CASES])
def test_bad_run_settings_fail_before_compute(tmp_path, data_root, env, message) -> None:
    out = tmp_path / "out"
    proc = run_entry(["python", "pipelines/train.py", *TINY, f"out={out}", f"data_root={data_root}"], env=env)
    assert_rejected(proc, message, out)


def test_bad_prepare_input_fetches_nothing(tmp_path) -> None:
    out = tmp_path / "prepared"
    proc = run_entry(["python", "pipelines/prepare.py", "dataset=cifar10", f"dataset.root={tmp_path / 'raw'}",
                     "dataset.image_size=28", f"out={out}", f"raw_root={tmp_path / 'raw'}"])
    assert_rejected(proc, "dataset.image_size=28 must be 32", out)
    assert not (tmp_path / "raw").exists()


def test_bad_report_input_reads_nothing(tmp_path) -> None:
    out = tmp_path / "reports"
    proc = run_entry(["python", "pipelines/report.py", "compare.baseline=one_cycle", f"out={out}",
                     "tracking.enabled=false"])
    assert_rejected(proc, "compare.policy='one_cycle' is also compare.baseline", out)


def test_bad_compare_arguments(tmp_path) -> None:
    out = tmp_path / "cmp"
    proc = run_entry(["python", "-m", "superconv.report.compare", "--dirs", str(tmp_path), "--out", str(out),
                     "--label", "schedule max_lr"])
    assert_rejected(proc, "argument --label: 'schedule max_lr' must be a dotted config key", out)


def test_bad_print_schedule_input() -> None:
    proc = run_entry(["python", "-m", "superconv.stages.print_schedule", *TINY, "schedule.momentum=high"])
    assert_rejected(proc, "schedule.momentum='high' must be a number in [0, 1)")
    assert proc.stdout == ""


@pytest.mark.parametrize(("override", "group"), [("schedule=cosine", "schedule"), ("experiment=nope", "experiment")])
def test_unknown_names_list_the_options(tmp_path, override, group) -> None:
    proc = run_entry(["python", "pipelines/train.py", override, f"out={tmp_path / 'o'}"])
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


def _tracking(uri: str) -> Tracking:
    return Tracking(enabled=True, uri=uri, experiment="superconv", system_metrics=False)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:notaport", "http://", "https://127.0.0.1:9/",
                                 "http://127.0.0.1:{not_http_port}/"])
def test_check_tracking_names_any_unusable_http_uri(uri, not_http_port) -> None:
    """Refused, malformed, or not HTTP at all: a ConfigError (exit 2 in the CLIs) on one line, no traceback."""
    uri = uri.format(not_http_port=not_http_port)
    with pytest.raises(ConfigError, match="cannot be reached") as err:
        check_tracking(_tracking(uri))
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
            check_tracking(_tracking(uri))
    finally:
        server.shutdown()
        server.server_close()
    assert f"--allowed-hosts 127.0.0.1:{server.server_address[1]}" in str(err.value)


def test_lock_finds_dvc_beside_the_interpreter_when_path_lacks_it() -> None:
    """The venv's python run without activating the venv (PATH without its bin/): pipelines/lock.py uses the dvc
    installed beside that python instead of a traceback."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "pipelines/lock.py", "--check", "dvc.yaml"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert "recorded stage" in proc.stdout, proc.stdout
