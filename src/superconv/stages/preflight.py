"""The checks after validation and before compute that look outside the config: the prepared dataset, the output
folder, the MLflow store. Each failure is one ConfigError naming the key, the value and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from superconv.common.errors import ConfigError
from superconv.core.cpu_mode import pin_cpu
from superconv.core.data.prepared import read_meta
from superconv.core.engine import resolve_device, seed_everything
from superconv.stages.schema import Run, Tracking


def check_writable(key: str, directory: str) -> None:
    """Create ``directory`` and prove it takes a file, before any compute is spent."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ConfigError(f"{key}={directory!r} is not a writable directory ({err.strerror}): "
                          "choose another.") from None


def _check_host_allowed(uri: str) -> None:
    """MLflow >= 3.5 servers answer /health to any Host header but refuse API calls (403) from host names
    outside ``--allowed-hosts`` (default: localhost and private IPs); say so now rather than at the first
    logging call. Any other answer of the probe is left to MLflow (e.g. 401 from an authenticating server)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1",
                                    timeout=5):
            return
    except urllib.error.HTTPError as err:
        if err.code == 403 and err.read(200).startswith(b"Invalid Host header"):
            host = urllib.parse.urlparse(uri).netloc
            raise ConfigError(f"tracking.uri={uri}: the MLflow server refuses the host name {host!r} (Invalid Host "
                              f"header): start it with --allowed-hosts {host}, or reach it as localhost through an "
                              "SSH tunnel.") from None
    except Exception:  # the server answered /health; anything else is MLflow's to report
        return


def check_tracking(tracking: Tracking) -> None:
    """Fail at start, not after training, when the MLflow store cannot be reached."""
    if not tracking.enabled:
        return
    uri = tracking.uri
    fix = "start the server, fix MLFLOW_TRACKING_URI / tracking.uri, or set tracking.enabled=false"
    if uri.startswith(("http://", "https://")):
        import http.client
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as answer:
                answer.read()
        # OSError: refused, timed out, no such host, an HTTP error status (403 from a host allow-list);
        # HTTPException: something that is not an HTTP server listens there (an SSH port, a database);
        # ValueError: a malformed URI (http.client.InvalidURL, e.g. a non-numeric port).
        except (OSError, http.client.HTTPException, ValueError) as err:
            reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line, whatever the server sent
            raise ConfigError(f"tracking.uri={uri} cannot be reached ({reason}): {fix}.") from None
        _check_host_allowed(uri)
    elif uri.startswith("sqlite:///"):
        db_dir = Path(uri.removeprefix("sqlite:///")).parent
        if not db_dir.is_dir() or not os.access(db_dir, os.W_OK):
            raise ConfigError(f"tracking.uri={uri}: directory {str(db_dir)!r} does not exist or is not writable: "
                              f"{fix}.")


def dataset_dir(run: Run) -> Path:
    """``<data_root>/<dataset.prepared_name>``; datasets without that key use their name."""
    return Path(run.data_root) / (run.dataset.prepared_name or run.dataset.name)


def check_dataset(run: Run) -> dict[str, Any]:
    """The prepared dataset must exist and match the config (before any compute)."""
    meta = read_meta(dataset_dir(run))
    if meta["split_sizes"]["train"] != run.dataset.train_size:
        raise ConfigError(
            f"dataset.train_size={run.dataset.train_size} but {dataset_dir(run)} holds "
            f"{meta['split_sizes']['train']} training images: fix dataset.train_size or re-run prepare."
        )
    return meta


def preflight(run: Run) -> tuple[dict[str, Any], torch.device]:
    """After validation, before compute: dataset matches, out= writable, MLflow reachable; the CPU mode (before
    the first kernel); seed; device."""
    meta = check_dataset(run)
    check_writable("out", run.out)
    check_tracking(run.tracking)
    pin_cpu(run.trainer.cpu_mode, run.trainer.threads)
    seed_everything(run.seed)
    return meta, resolve_device(run.trainer.device)
