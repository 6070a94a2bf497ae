"""A study's committed result directories, logged into an MLflow experiment named after the study (docs/mlflow.md).

Training runs log to MLflow while they run, but only on the machine that ran them; what a clone has is the committed
``results/<study>/`` tree. This module rebuilds the MLflow view of it, so a fresh clone can browse a whole study, its
curves and its report, in ``make mlflow-ui``:

- the experiment is the study's name; its one parent run (found by the ``superconv.study`` / ``superconv.role=study``
  tags, as ``common.tracking`` finds a live study's) holds the report directory as its ``report/`` artifact;
- one child per run directory (``<run>-<seed>``): params = the flattened config.yaml, metrics = every column of
  metrics.csv (or a range test's curve.csv) at its ``iteration`` step plus the numeric fields of summary.json (or
  suggestion.json) at the step after the last, tags = provenance.json and the ``superconv.*`` tags a live run has.

Idempotent: a child is keyed by (study, directory label) and carries a digest of the files it was made from. A
child whose digest matches is kept; one whose files changed (a re-run), or that an interrupted import left RUNNING,
is logged anew and the old one deleted (new first, so a crash never leaves a run missing); a child whose directory
is gone is deleted. Only runs tagged ``superconv.imported=true`` are ever touched, never a live run.

Torch-free (the report layer): the study file is read for its ``name``, ``results`` and ``report.out`` keys here
rather than through ``stages.study.load_study``, whose module imports the stages' config and so torch; a test checks
that both read the same values from every committed study file.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from superconv.common.provenance import CONFIG_FILE, PROVENANCE_FILE, identity_digest, run_identity
from superconv.common.tracking import (
    ROLE_TAG,
    STUDY_TAG,
    experiment_id,
    flatten,
    git_commit,
    store_client,
    study_run_id,
)
from superconv.report.results import RUN_FILES, study_run_name

# Bump when what a child logs changes: every child's digest then differs and the next import replaces each once.
FORMAT = "1"
IMPORTED_TAG = "superconv.imported"
KEY_TAG = "superconv.import_key"
DIGEST_TAG = "superconv.content_digest"
SOURCE_TAG = "superconv.source"
REPORT_DIGEST_TAG = "superconv.report_digest"
# Logged as the child's artifacts (small; the curves are the metric histories, so their CSVs are not copied).
ARTIFACTS = (CONFIG_FILE, PROVENANCE_FILE, "summary.json", "suggestion.json", "range_test.png")
METRICS_PER_BATCH = 1000  # MLflow's log_batch limits (mlflow.utils.validation)
PARAMS_TAGS_PER_BATCH = 100
PARAM_CHARS, TAG_CHARS = 6000, 8000
DEFAULT_URI = "sqlite:///mlflow.db"  # conf/tracking/mlflow.yaml's default; MLFLOW_TRACKING_URI overrides it


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")
    out: str


class StudyFile(BaseModel):
    """The keys of studies/<name>/study.yaml this module needs (the whole file is stages.study.StudySpec)."""

    model_config = ConfigDict(extra="ignore")
    name: str
    results: str
    report: _Report


def read_study(path: Path) -> StudyFile:
    """The study file's name, results and report.out; a missing file or key is one ValueError naming it."""
    if not path.is_file():
        raise ValueError(f"study file {str(path)!r} does not exist: pass studies/<name>/study.yaml")
    try:
        return StudyFile.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as err:
        first = err.errors()[0]
        raise ValueError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


@dataclass(frozen=True)
class RunDir:
    """One finished run directory of a study: ``results/<study>/<run>-<seed>/``."""

    path: Path
    role: str  # train | range_test

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def files(self) -> list[Path]:
        """What the child is made from: its digest covers exactly these."""
        names = {CONFIG_FILE, PROVENANCE_FILE, *RUN_FILES[self.role], *ARTIFACTS}
        return sorted(self.path / n for n in names if (self.path / n).is_file())

    def digest(self) -> str:
        """sha256 of the import format and every file's name and bytes: equal digests log equal children."""
        h = hashlib.sha256(f"superconv.mlflow_import {FORMAT}\n".encode())
        for file in self.files:
            h.update(f"{file.name}\n{hashlib.sha256(file.read_bytes()).hexdigest()}\n".encode())
        return h.hexdigest()


def run_dirs(results: Path) -> list[RunDir]:
    """The finished runs under ``results``: a directory holding both files of one role (a run still in progress
    has a config.yaml and a checkpoint only, and is left out)."""
    found = []
    for directory in sorted(p for p in Path(results).glob("*-*") if p.is_dir()):
        for role, needed in RUN_FILES.items():
            if all((directory / name).is_file() for name in needed):
                found.append(RunDir(directory, role))
                break
    return found


def curve_metrics(path: Path, timestamp: int) -> tuple[list[Any], int]:
    """Every non-empty cell of a curve CSV as a Metric at its row's ``iteration`` step, and the number of rows.

    Read with the csv module and ``float``, which round-trips the written text exactly (pandas' default parser
    does not always). An infinite loss is stored by MLflow as the largest float; NaN as NaN.
    """
    from mlflow.entities import Metric

    metrics, rows = [], 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows += 1
            step = int(row["iteration"])
            metrics.extend(Metric(key, float(cell), timestamp, step) for key, cell in row.items()
                           if key != "iteration" and cell not in ("", None))
    return metrics, rows


def numeric_fields(tree: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Dotted key -> value for every int or float leaf (booleans, strings and nulls are not metrics)."""
    found: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            found.update(numeric_fields(value, f"{prefix}{key}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            found[f"{prefix}{key}"] = float(value)
    return found


def provenance_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """provenance.json as tags: every field flattened under ``superconv.provenance.``, except ``code``.

    The code record (one sha256 per module the run loaded, ~35) becomes one digest tag and a file count; the whole
    record is the child's provenance.json artifact. Thirty-five hash tags per run would bury the tags a reader
    looks for (torch, python, threads, CPU mode), while the question they answer, "were these runs made by the
    same code?", is answered by comparing one digest (and the UI can filter on it).
    """
    rest = {key: value for key, value in record.items() if key != "code"}
    tags = {f"superconv.provenance.{key}": value for key, value in flatten(rest).items()}
    code = record.get("code")
    if isinstance(code, Mapping):
        tags["superconv.provenance.code_sha256"] = hashlib.sha256(
            json.dumps(code, sort_keys=True).encode()).hexdigest()
        tags["superconv.provenance.code_files"] = str(len(code))
    return tags


def _batches(items: list[Any], size: int) -> Iterable[list[Any]]:
    return (items[start : start + size] for start in range(0, len(items), size))


def _search(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _child_tags(study: str, run: RunDir, parent: str, digest: str, config: Mapping[str, Any],
                result: Mapping[str, Any], provenance: Mapping[str, Any], commit: str) -> dict[str, str]:
    seed = config.get("seed", run.label.rsplit("-", 1)[-1])
    tags = {"mlflow.parentRunId": parent, STUDY_TAG: study, ROLE_TAG: run.role,
            "superconv.run": study_run_name(run.path), "superconv.seed": str(seed),
            IMPORTED_TAG: "true", KEY_TAG: run.label, DIGEST_TAG: digest, SOURCE_TAG: str(run.path),
            "superconv.imported_at_commit": commit, "superconv.identity": identity_digest(run_identity(config)),
            **provenance_tags(provenance)}
    # the tags a live run of the same stage has (stages.train / stages.range_test), so the same filters work
    for tag, key in (("superconv.experiment", "experiment"), ("superconv.lr_source", "lr_source"),
                     ("superconv.dataset_source", "dataset_source"), ("superconv.dataset_sha256", "dataset_sha256"),
                     ("superconv.range_test.protocol", "protocol"), ("superconv.tracked_run_id", "tracking_run_id")):
        if result.get(key) is not None:
            tags[tag] = str(result[key])
    if result.get("diverged"):
        tags["superconv.failure_reason"] = f"diverged: {result.get('divergence_reason')}"
    return tags


def log_child(client: Any, experiment: str, parent: str, study: str, run: RunDir, commit: str) -> int:
    """One run directory as a child of ``parent``: returns the number of metric values logged.

    The run stays RUNNING until its last batch is in, so an import killed half-way leaves a child that the next
    import sees as incomplete and replaces. A diverged training run ends FAILED, as its live run did.
    """
    from mlflow.entities import Metric, Param, RunTag

    curve_file, result_file = RUN_FILES[run.role]
    config = yaml.safe_load((run.path / CONFIG_FILE).read_text()) if (run.path / CONFIG_FILE).is_file() else {}
    result = json.loads((run.path / result_file).read_text())
    provenance_file = run.path / PROVENANCE_FILE
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    tags = _child_tags(study, run, parent, run.digest(), config, result, provenance, commit)
    now = int(time.time() * 1000)
    child = client.create_run(experiment, start_time=now, run_name=run.label,
                              tags={k: tags[k] for k in ("mlflow.parentRunId", STUDY_TAG, ROLE_TAG, IMPORTED_TAG,
                                                         KEY_TAG)}).info.run_id
    params = [Param(k, v[:PARAM_CHARS]) for k, v in flatten(config).items()]
    for batch in _batches(params, PARAMS_TAGS_PER_BATCH):
        client.log_batch(child, params=batch)
    for batch in _batches([RunTag(k, str(v)[:TAG_CHARS]) for k, v in tags.items()], PARAMS_TAGS_PER_BATCH):
        client.log_batch(child, tags=batch)
    metrics, rows = curve_metrics(run.path / curve_file, now)
    columns = {m.key for m in metrics}  # a result field named like a curve column would join its history: prefixed
    metrics += [Metric(k if k not in columns else f"summary.{k}", v, now, rows)
                for k, v in numeric_fields(result).items()]
    for batch in _batches(metrics, METRICS_PER_BATCH):
        client.log_batch(child, metrics=batch)
    for name in ARTIFACTS:
        if (run.path / name).is_file():
            client.log_artifact(child, str(run.path / name))
    # started at the import; its duration is the run's own wall time (summary.json wall_s), where it has one
    wall_s = result.get("wall_s")
    timed = isinstance(wall_s, int | float) and math.isfinite(wall_s) and wall_s >= 0
    end = now + int(wall_s * 1000) if timed else None
    client.set_terminated(child, "FAILED" if result.get("diverged") else "FINISHED", end_time=end)
    return len(metrics)


def report_digest(report: Path, study_file: Path | None) -> str:
    """sha256 of the report directory's files (paths and bytes) and the study file: the parent's artifacts."""
    h = hashlib.sha256(f"superconv.mlflow_import {FORMAT}\n".encode())
    files = sorted(p for p in report.rglob("*") if p.is_file()) if report.is_dir() else []
    for file in [*([study_file] if study_file else []), *files]:
        h.update(f"{file.name if file == study_file else file.relative_to(report)}\n".encode())
        h.update(hashlib.sha256(file.read_bytes()).hexdigest().encode())
    return h.hexdigest()


def _note(study: str, results: Path, report: Path, children: int) -> str:
    """The parent's description (the UI shows it as markdown): the report's title and verdicts, what fits."""
    lines = [f"Study **{study}**: {children} run directories of `{results}` (pipelines/mlflow_import.py). "
             f"The full report is the artifact `report/report.md` (and `report/report.html`)."]
    verdicts = report / "verdicts.json"
    if verdicts.is_file():
        found = json.loads(verdicts.read_text())
        lines = [f"# {found.get('title', study)}", "", *lines, ""]
        for verdict in found.get("verdicts", []):
            if sum(len(line) + 1 for line in lines) + len(verdict) + 3 > TAG_CHARS - 80:
                lines.append("- ... (the rest: report/report.md)")
                break
            lines.append(f"- {verdict}")
    return "\n".join(lines)


def log_report(client: Any, parent: str, study: str, results: Path, report: Path, study_file: Path | None,
               children: int) -> str:
    """The report directory (and the study file) as the parent's artifacts, re-sent only when they changed:
    returns "logged", "unchanged" or "missing"."""
    run = client.get_run(parent)
    client.set_tag(parent, "mlflow.note.content", _note(study, results, report, children)[:TAG_CHARS])
    if not report.is_dir():
        return "missing"
    digest = report_digest(report, study_file)
    if run.data.tags.get(REPORT_DIGEST_TAG) == digest:
        return "unchanged"
    if run.data.tags.get(REPORT_DIGEST_TAG):  # a changed report: drop the old files first (one removed stays away)
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        try:
            get_artifact_repository(run.info.artifact_uri).delete_artifacts("report")
        except Exception as err:  # a store that cannot delete: the new files overwrite the old ones
            print(f"note: old report artifacts not deleted ({type(err).__name__}); overwriting them")
    client.log_artifacts(parent, str(report), "report")
    if study_file is not None:
        client.log_artifact(parent, str(study_file))
    client.set_tag(parent, REPORT_DIGEST_TAG, digest)
    return "logged"


@dataclass
class ImportResult:
    """What one import did; ``line`` is the summary the command prints."""

    experiment: str
    logged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    metrics: int = 0
    report: str = "missing"
    seconds: float = 0.0

    def line(self) -> str:
        return (f"{self.experiment}: logged {len(self.logged)}, kept {len(self.kept)}, replaced "
                f"{len(self.replaced)}, removed {len(self.removed)} runs ({self.metrics} metric values); "
                f"report {self.report}; {self.seconds:.1f} s")


def import_study(client: Any, study: str, results: Path, report: Path, study_file: Path | None = None,
                 echo: bool = True) -> ImportResult:
    """Log ``results``' run directories and ``report`` into the experiment ``study`` (see the module docstring)."""
    start = time.perf_counter()
    say = print if echo else (lambda *_: None)
    if not Path(results).is_dir():
        raise ValueError(f"results directory {str(results)!r} does not exist (the study file's `results`)")
    exp = experiment_id(client, study)
    client.set_experiment_tag(exp, "mlflow.note.content",
                              f"The committed runs of `{results}` and the study's report, logged by "
                              f"pipelines/mlflow_import.py (docs/mlflow.md). Live runs log to the experiment "
                              f"their config names (`tracking.experiment`), not here.")
    # the UI opens a model-training experiment on its runs table (a GenAI one on traces), where that is not set
    # globally by its "Model training" switch (the URL's ?workflowType=machine_learning)
    client.set_experiment_tag(exp, "mlflow.experimentKind", "custom_model_development")
    parent = study_run_id(client, exp, study)
    client.set_tag(parent, IMPORTED_TAG, "true")
    client.set_tag(parent, SOURCE_TAG, str(results))
    commit = git_commit()
    client.set_tag(parent, "superconv.imported_at_commit", commit)
    existing: dict[str, list[Any]] = {}
    for run in _search(client, exp, f"tags.`mlflow.parentRunId` = '{parent}' and tags.`{IMPORTED_TAG}` = 'true'"):
        existing.setdefault(run.data.tags.get(KEY_TAG, ""), []).append(run)
    done = ImportResult(study)
    found = run_dirs(Path(results))
    for run in found:
        digest = run.digest()
        before = existing.pop(run.label, [])
        complete = [r for r in before if r.data.tags.get(DIGEST_TAG) == digest
                    and r.info.status in ("FINISHED", "FAILED")]
        if complete:
            keep = max(complete, key=lambda r: r.info.start_time)
            for stale in before:
                if stale.info.run_id != keep.info.run_id:
                    client.delete_run(stale.info.run_id)
            done.kept.append(run.label)
            continue
        done.metrics += log_child(client, exp, parent, study, run, commit)
        for stale in before:
            client.delete_run(stale.info.run_id)
        if before:
            why = "incomplete" if all(r.data.tags.get(DIGEST_TAG) == digest for r in before) else "files changed"
            done.replaced.append(run.label)
            say(f"replaced {run.label} ({why})")
        else:
            done.logged.append(run.label)
            say(f"logged {run.label}")
    for label, runs in sorted(existing.items()):
        for stale in runs:
            client.delete_run(stale.info.run_id)
        done.removed.append(label)
        say(f"removed {label} (its directory is gone)")
    done.report = log_report(client, parent, study, Path(results), Path(report), study_file, len(found))
    done.seconds = time.perf_counter() - start
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python pipelines/mlflow_import.py",
        description="Log a study's committed run directories and its report into an MLflow experiment named after "
                    "the study (docs/mlflow.md); re-running logs nothing twice.")
    parser.add_argument("study_file", type=Path, help="studies/<name>/study.yaml")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI),
                        help=f"MLflow store (default: $MLFLOW_TRACKING_URI, else {DEFAULT_URI})")
    args = parser.parse_args(argv)
    try:
        spec = read_study(args.study_file)
        done = import_study(store_client(args.tracking_uri), spec.name, Path(spec.results), Path(spec.report.out),
                            args.study_file)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{done.line()} -> {args.tracking_uri}")
    return 0
