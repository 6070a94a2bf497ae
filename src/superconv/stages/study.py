"""A study: named runs x seeds, each one train or range-test process writing its own small result directory.

A run whose directory already holds its result, made from the same resolved config and the same code (every
superconv module it loaded, ``common.provenance``), is skipped; any other is run, resuming from its checkpoint
when it has one. So a study of several CPU hours can be built up over several sessions: the finished
directories (config.yaml, provenance.json, summary.json, metrics.csv) are committed, checkpoints are not.
Up to ``jobs`` runs go at once, each with ``threads`` torch threads (on a 2-core machine two 1-thread processes
train LeNet faster together than one 2-thread process; docs/bench.md). The DVC stage of a study runs this.

    python pipelines/study.py studies/paper_mnist_full/study.yaml [--jobs 2] [--dry-run] [--only RUN ...]
    SUPERCONV_PROFILE=ci python pipelines/study.py studies/<name>/study.yaml   # its `ci` profile (wiring check)
    python pipelines/study_report.py studies/paper_mnist_full/study.yaml   # its report, from what has finished
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from superconv.common.errors import ConfigError
from superconv.common.provenance import CONFIG_FILE, PROVENANCE_FILE, changed_code, identity_changes, run_identity
from superconv.stages import config as C

log = logging.getLogger("superconv.study")

RESULT_FILE = {"train": "summary.json", "range_test": "suggestion.json"}
Scalar = str | int | float | bool


class RunSpec(BaseModel):
    """One named run of a study: a stage and its Hydra overrides, over the study's seeds (or its own)."""

    model_config = ConfigDict(extra="forbid")
    stage: Literal["train", "range_test"] = "train"
    overrides: list[str] = []
    # key -> values given to the seeds in turn (seed i gets values[i % len]): the authors' 4-run scripts varied
    # the batch (TBS 524/520/516/512) and alternated xavier/msra fillers across the runs of one row.
    per_seed: dict[str, Annotated[list[Scalar], Field(min_length=1)]] = {}
    seeds: list[int] | None = None


class ReportSpec(BaseModel):
    """Where the study's report goes and which pair its speed-up compares."""

    model_config = ConfigDict(extra="forbid")
    out: str
    policy: str
    baseline: str


class ProfileSpec(BaseModel):
    """A named variant of the whole study, picked by SUPERCONV_PROFILE=<name> (or --profile) so the committed
    pipeline stays as it is: `ci` checks every study's wiring on tiny synthetic data in a few iterations."""

    model_config = ConfigDict(extra="forbid")
    only: list[str] | None = None  # the runs it keeps (default: all)
    seeds: Annotated[list[int], Field(min_length=1)] | None = None  # every kept run's seeds
    overrides: list[str] = []  # appended to every job


class StudySpec(BaseModel):
    """studies/<name>/study.yaml."""

    model_config = ConfigDict(extra="forbid")
    name: str
    results: str
    seeds: Annotated[list[int], Field(min_length=1)]
    jobs: Annotated[int, Field(ge=1)] = 1
    threads: Annotated[int, Field(ge=1)] = 1  # each job's torch threads: a config value (it decides CPU sums)
    # How each job's stage script starts: the python running the study, or e.g. [torchrun, --standalone,
    # --nproc_per_node=4] for one multi-GPU (DDP) process group per run.
    launcher: list[str] = []
    report: ReportSpec
    runs: dict[str, RunSpec]
    profiles: dict[str, ProfileSpec] = {}


PROFILE_ENV = "SUPERCONV_PROFILE"


@dataclass(frozen=True)
class Job:
    """One process of a study: ``name`` at ``seed``, writing ``out``."""

    name: str
    seed: int
    stage: str
    overrides: tuple[str, ...]
    out: Path
    launcher: tuple[str, ...] = ()

    @property
    def command(self) -> list[str]:
        return [*(self.launcher or (sys.executable,)), f"pipelines/{self.stage}.py", *self.overrides]

    @property
    def label(self) -> str:
        return f"{self.name}-{self.seed}"


def load_study(path: Path) -> StudySpec:
    """The study file, validated: an unknown key or a bad value is one ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"study file {str(path)!r} does not exist: pass studies/<name>/study.yaml.")
    try:
        return StudySpec.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {key}: {first['msg']} (got {first.get('input')!r})") from None


def apply_profile(spec: StudySpec, path: Path, profile: str | None) -> StudySpec:
    """``spec`` as the profile runs it (none: unchanged); an unknown profile or run name is a ConfigError."""
    if not profile:
        return spec
    if profile not in spec.profiles:
        raise ConfigError(f"{PROFILE_ENV}={profile}: {path} has no such profile; its profiles: "
                          f"{', '.join(spec.profiles) or 'none'} (unset {PROFILE_ENV} to run the study itself)")
    chosen = spec.profiles[profile]
    unknown = sorted(set(chosen.only or ()) - set(spec.runs))
    if unknown:
        raise ConfigError(f"{path}: profiles.{profile} names {', '.join(unknown)}, not runs of the study; "
                          f"runs: {', '.join(spec.runs)}")
    runs = {name: run.model_copy(update={
        "overrides": [*run.overrides, *chosen.overrides],
        "seeds": chosen.seeds if chosen.seeds is not None else run.seeds})
        for name, run in spec.runs.items() if chosen.only is None or name in chosen.only}
    return spec.model_copy(update={"runs": runs})


def expand(spec: StudySpec, threads: int) -> list[Job]:
    """Every run x seed in the file's order (all seeds of a run before the next run, so rows complete early)."""
    jobs = []
    for name, run in spec.runs.items():
        for index, seed in enumerate(run.seeds if run.seeds is not None else spec.seeds):
            out = Path(spec.results, f"{name}-{seed}")
            per_seed = [f"{key}={values[index % len(values)]}" for key, values in run.per_seed.items()]
            fixed = [f"seed={seed}", f"out={out}", f"study={spec.name}", f"trainer.threads={threads}",
                     "trainer.progress=false"]
            if run.stage == "train":
                fixed.append("trainer.fail_on_divergence=false")  # a diverged run is a result, listed as such
            jobs.append(Job(name, seed, run.stage, (*run.overrides, *per_seed, *fixed), out, tuple(spec.launcher)))
    return jobs


def staleness(job: Job) -> str | None:
    """None when ``job.out`` holds the result of exactly this config and the code as it is now; else why not."""
    result, recorded = job.out / RESULT_FILE[job.stage], job.out / PROVENANCE_FILE
    if not (result.is_file() and recorded.is_file() and (job.out / CONFIG_FILE).is_file()):
        return "not run"
    composed = C.compose_stage_config(job.stage, list(job.overrides))
    if job.stage == "range_test":
        C.cap_range_test(composed)
    changes = identity_changes(run_identity(yaml.safe_load((job.out / CONFIG_FILE).read_text())),
                               run_identity(OmegaConf.to_container(composed, resolve=True)))
    if changes:
        return f"config changed: {'; '.join(changes[:3])}{' ...' if len(changes) > 3 else ''}"
    changed = changed_code(json.loads(recorded.read_text())["code"])
    return f"code changed: {', '.join(changed[:5])}" if changed else None


class Runner:
    """Runs jobs ``jobs`` at a time as subprocesses; SIGINT/SIGTERM stops launching and has running jobs
    checkpoint and exit (each resumes on the next call)."""

    def __init__(self, jobs: int) -> None:
        self.jobs, self.stopping, self.lock = jobs, False, threading.Lock()
        self.running: set[subprocess.Popen] = set()

    def stop(self, signum: int, _frame: object) -> None:
        self.stopping = True
        with self.lock:
            for proc in self.running:
                proc.send_signal(signal.SIGTERM)
        log.warning("signal %d: running jobs checkpoint and stop; run the study again to resume", signum)

    def one(self, job: Job) -> tuple[Job, int, float]:
        if self.stopping:
            return job, -1, 0.0
        job.out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(job.out / "stage.log", "a") as logfile:
            proc = subprocess.Popen(job.command, stdout=logfile, stderr=subprocess.STDOUT, env=os.environ.copy())
            with self.lock:
                self.running.add(proc)
            log.info("start %s", job.label)
            rc = proc.wait()
            with self.lock:
                self.running.discard(proc)
        wall = time.perf_counter() - start
        if self.stopping and rc == 128 + signal.SIGTERM:
            log.info("stopped %s after %.0f s: it resumes from its checkpoint on the next run", job.label, wall)
            return job, -1, wall
        log.info("%s %s in %.0f s (rc %d)", "done" if rc == 0 else "FAILED", job.label, wall, rc)
        return job, rc, wall

    def run(self, todo: list[Job]) -> list[tuple[Job, int, float]]:
        old = {s: signal.signal(s, self.stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            with ThreadPoolExecutor(max_workers=self.jobs) as pool:
                return list(pool.map(self.one, todo))
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def run_study(spec: StudySpec, path: Path, jobs_at_once: int | None, only: list[str] | None, dry_run: bool,
              profile: str | None = None) -> int:
    """Run every job of ``spec`` (as ``profile`` varies it) that is not up to date; print what is kept and what
    runs, and why."""
    spec = apply_profile(spec, path, profile)
    jobs_at_once = jobs_at_once or spec.jobs
    threads = spec.threads
    unknown = sorted(set(only or ()) - set(spec.runs))
    if unknown:
        raise ConfigError(f"--only {' '.join(unknown)}: no such run in {path}; runs: {', '.join(spec.runs)}")
    jobs = [j for j in expand(spec, threads) if only is None or j.name in only]
    todo = []
    for job in jobs:
        why = staleness(job)
        if why is not None:
            todo.append(job)
        print(f"{'run ' if why else 'keep'} {job.label:40s} {why or 'up to date'}")
    print(f"{len(todo)} of {len(jobs)} runs to do, {jobs_at_once} at a time, {threads} torch threads each")
    if dry_run or not todo:
        return 0
    runner = Runner(jobs_at_once)
    done = runner.run(todo)
    failed = [(job, rc) for job, rc, _ in done if rc not in (0, -1)]
    for job, rc in failed:
        print(f"FAILED {job.label} (exit {rc}): see {job.out / 'stage.log'}", file=sys.stderr)
    if runner.stopping:
        return 128 + signal.SIGTERM
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, help="studies/<name>/study.yaml")
    parser.add_argument("--jobs", type=int, help="processes at once (default: the study's jobs)")
    parser.add_argument("--only", nargs="*", default=None, metavar="RUN", help="run only these named runs")
    parser.add_argument("--dry-run", action="store_true", help="list each job and whether it would run")
    parser.add_argument("--profile", default=os.environ.get(PROFILE_ENV),
                        help=f"run the study file's profiles.<name> (default: ${PROFILE_ENV}), e.g. ci")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        return run_study(load_study(args.study), args.study, args.jobs, args.only, args.dry_run, args.profile)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
