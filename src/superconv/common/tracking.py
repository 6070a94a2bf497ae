"""MLflow tracking: one parent run per study (or sweep), one child run per range test or training run.

Only rank 0 talks to MLflow. Child runs are created with the ``mlflow.parentRunId`` tag, so a parent
found by its study name can collect children from separate processes (DVC stages, sweep points).
Metrics are buffered and sent with ``log_batch``: per-iteration curves cost one call per flush, and
the training loop's flushes run in MLflow's background thread (``synchronous=False``).
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STUDY_TAG = "superconv.study"
ROLE_TAG = "superconv.role"
# Keys that are never logged as params (environment-derived or paths that differ per machine).
UNLOGGED_KEYS = ("tracking.uri",)
log = logging.getLogger(__name__)


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted key -> string value, for ``log_params`` (lists stay whole, as their YAML text)."""
    flat: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif name not in UNLOGGED_KEYS:
            flat[name] = str(value)
    return flat


def git_commit() -> str:
    """HEAD's commit id (with ``-dirty`` when the tree has changes), or ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha.strip() + ("-dirty" if dirty.strip() else "")


class Tracker:
    """A child run's handle; every method is a no-op when tracking is off or not rank 0."""

    def __init__(self, client: Any = None, run_id: str | None = None, flush_every: int | None = 1000) -> None:
        self.client = client
        self.run_id = run_id
        self._buffer: list[Any] = []
        self._in_flight: list[Any] = []
        self._flush_every = flush_every
        self.failure: str | None = None
        self.recreated = False  # a resumed run logged into a new MLflow run: the rows before it are not there yet

    def fail(self, reason: str) -> None:
        """Mark the run FAILED at its end, with ``reason`` tagged, without raising."""
        self.failure = reason
        self.set_tags({"superconv.failure_reason": reason})

    @property
    def active(self) -> bool:
        return self.run_id is not None

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer.extend(Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None)
        if self._flush_every is not None and len(self._buffer) >= self._flush_every:
            self.flush()

    def flush(self, wait: bool = True) -> list[list[Any]]:
        """Send the buffered metrics; with ``wait=False`` MLflow's background thread sends them.

        The previous background send is waited for first, so at most one flush is ever unconfirmed: the
        one returned (as ``[key, value, timestamp, step]`` rows). A checkpoint keeps those rows and a
        resumed run ``resend``s them: a kill -9 during the send loses no step, and the SQL store (local
        or behind a server) ignores the exact duplicates.
        """
        if not self.active:
            return []
        self.wait()
        sent, self._buffer = self._buffer, []
        for start in range(0, len(sent), 1000):
            operation = self.client.log_batch(self.run_id, metrics=sent[start : start + 1000], synchronous=wait)
            if not wait:
                self._in_flight.append(operation)
        return [] if wait else [[m.key, m.value, m.timestamp, m.step] for m in sent]

    def wait(self) -> None:
        """Block until every background send has reached the store."""
        for operation in self._in_flight:
            operation.wait()
        self._in_flight = []

    def resend(self, rows: list[list[Any]]) -> None:
        """Send again the rows of a flush that a killed run could not confirm (exact duplicates are ignored)."""
        if self.active and rows and not self.recreated:  # a recreated run gets every row before the checkpoint
            from mlflow.entities import Metric

            metrics = [Metric(key, float(value), int(timestamp), int(step)) for key, value, timestamp, step in rows]
            for start in range(0, len(metrics), 1000):
                self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def log_rows(self, rows: list[Mapping[str, Any]]) -> None:
        """Log metric rows (dicts with an ``iteration``) at their steps: every value but the step's own keys."""
        for row in rows:
            self.log_metrics({k: v for k, v in row.items() if k not in ("iteration", "epoch")}, int(row["iteration"]))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if self.active and Path(path).exists():
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_figure(self, figure: Any, name: str) -> None:
        if self.active:
            self.client.log_figure(self.run_id, figure, name)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.active:
            for k, v in tags.items():
                self.client.set_tag(self.run_id, k, str(v))


def _run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def store_client(uri: str) -> Any:
    """A client of the store at ``uri``, ready for use.

    Parallel first starts of a SQLite store race on its schema migration ("table ... already
    exists"), so the first use of a SQLite store is serialised with a lock file beside the database.
    """
    from filelock import FileLock
    from mlflow.tracking import MlflowClient

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    with FileLock(uri.removeprefix("sqlite:///") + ".lock", timeout=300):
        ready = MlflowClient(tracking_uri=uri)
        ready.search_experiments(max_results=1)
    return ready


def artifact_root(uri: str, name: str) -> str | None:
    """Artifact location of a new experiment in a SQLite store: ``<store dir>/mlruns/<name>``.

    MLflow's default is ``<working dir>/mlruns/<id>``, fixed when the experiment is created. A queued
    `dvc exp run` works in a temporary copy under .dvc/tmp/exps that DVC deletes afterwards, so an
    experiment first created there would lose every artifact. Other stores (a server) choose themselves.
    """
    if not uri.startswith("sqlite:///"):
        return None
    store = Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
    return str(store.parent / "mlruns" / re.sub(r"[^A-Za-z0-9._-]", "_", name))


def experiment_id(client: Any, name: str) -> str:
    """The experiment ``name``: created on first use (with its artifacts beside a SQLite store), or restored when it
    was deleted in the UI (a deleted experiment keeps its name and takes no new run)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
        log.warning("restored the deleted MLflow experiment %r", name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_root(str(client.tracking_uri), name))
    except Exception:  # another process created it first
        return client.get_experiment_by_name(name).experiment_id


def study_run_id(client: Any, experiment_id: str, study: str) -> str:
    """The parent run of ``study``: found by tag, created (and closed) on first use.

    Two processes of a parallel sweep may both create one; each then keeps the oldest and the
    loser deletes its own, so all children end up under one parent.
    """
    filt = f"tags.`{STUDY_TAG}` = '{study}' and tags.`{ROLE_TAG}` = 'study'"

    def oldest() -> list[Any]:
        return client.search_runs([experiment_id], filter_string=filt, max_results=1,
                                  order_by=["start_time ASC", "run_id ASC"])

    found = oldest()
    if found:
        return found[0].info.run_id
    mine = client.create_run(experiment_id, run_name=study, tags={STUDY_TAG: study, ROLE_TAG: "study"}).info.run_id
    client.set_terminated(mine, "FINISHED")
    winner = oldest()[0].info.run_id
    if winner != mine:
        client.delete_run(mine)
    return winner


@contextmanager
def tracked_run(config: Mapping[str, Any], run_name: str, study: str, tags: Mapping[str, str],
                resume_run_id: str | None = None, writer: bool = True) -> Iterator[Tracker]:
    """Open a child run of ``study`` with the flattened resolved ``config`` as params (or reopen ``resume_run_id``,
    the run of a resumed checkpoint); close it with its status. ``config["tracking"]`` says where, and whether.

    The run ends FINISHED, FAILED (an exception; the reason is tagged) or KILLED (SIGINT/SIGTERM).
    Metrics are buffered until ``Tracker.flush`` (the training loop flushes at each checkpoint), so a
    run killed with -9 and resumed logs every step exactly once.
    """
    tracking = config["tracking"]
    if not (tracking["enabled"] and writer):
        yield Tracker()
        return
    store = store_client(tracking["uri"])
    exp_id = experiment_id(store, tracking["experiment"])
    parent = study_run_id(store, exp_id, study)
    all_tags = {"mlflow.parentRunId": parent, STUDY_TAG: study, ROLE_TAG: config["stage"],
                "superconv.git_commit": git_commit(), **tags}
    if resume_run_id is not None and not _run_exists(store, resume_run_id):
        # the checkpoint's run is in another store (the run directory was copied, or the store was removed):
        # a new run here, which the stage fills with the rows before the checkpoint (Tracker.recreated)
        log.warning("the checkpoint's MLflow run %s is not in %s: logging the resumed run as a new run",
                    resume_run_id, tracking["uri"])
        all_tags = {**all_tags, "superconv.resumed_from_run": resume_run_id}
        resume_run_id, recreated = None, True
    else:
        recreated = False
    if resume_run_id is not None:
        run_id = resume_run_id
        store.update_run(run_id, status="RUNNING")
        store.set_tag(run_id, "superconv.resumed", "true")
    else:
        run_id = store.create_run(exp_id, run_name=run_name, tags=all_tags).info.run_id
        from mlflow.entities import Param

        items = [Param(k, v[:6000]) for k, v in flatten(config).items()]
        for start in range(0, len(items), 100):
            store.log_batch(run_id, params=items[start : start + 100])
    tracker = Tracker(store, run_id, flush_every=None)
    tracker.recreated = recreated
    monitor = None
    if tracking["system_metrics"]:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, tracking_uri=tracking["uri"], resume_logging=resume_run_id is not None)
        monitor.start()
    status = "FAILED"
    try:
        yield tracker
        status = "FAILED" if tracker.failure else "FINISHED"
    except (KeyboardInterrupt, SystemExit):
        status = "KILLED"
        raise
    except Exception as err:
        store.set_tag(run_id, "superconv.failure_reason", str(err)[:5000])
        raise
    finally:
        tracker.flush()
        if monitor is not None:
            monitor.finish()
        store.set_terminated(run_id, status)


def log_to_study(uri: str, experiment: str, study: str, directory: Path) -> None:
    """Attach a directory (the report) to the study's parent run."""
    store = store_client(uri)
    parent = study_run_id(store, experiment_id(store, experiment), study)
    store.log_artifacts(parent, str(directory), "report")
