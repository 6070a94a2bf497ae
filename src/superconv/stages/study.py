"""A study: named runs x seeds, each one train or range-test process writing its own small result directory.

A run whose directory already holds its result, made from the same resolved config and the same code (every
superconv module it loaded, ``common.provenance``), is skipped; any other is run, resuming from its checkpoint
when it has one. So a study of several CPU hours can be built up over several sessions: the finished
directories (config.yaml, provenance.json, summary.json, metrics.csv) are committed, checkpoints are not.
Up to ``jobs`` runs go at once, each with ``threads`` torch threads (on a 2-core machine two 1-thread processes
train LeNet faster together than one 2-thread process; docs/bench.md). The DVC stage of a study runs this.
A claim the study gives a ``sequential`` budget gets more seeds on the runs behind it, a batch per look, while its
verdict is undecided (report.sequential; docs/verdicts.md).

    python pipelines/study.py studies/paper_mnist_full/study.yaml [--jobs 2] [--dry-run] [--only RUN ...]
    python pipelines/study.py studies/<name>/study.yaml --verify one_cycle-0 inv-1   # re-run committed runs here
    python pipelines/study.py studies/<name>/study.yaml --accept   # a code change proven number-neutral
    python pipelines/study.py studies/<name>/study.yaml --check    # exit 1 if a committed run is stale (CI)
    SUPERCONV_PROFILE=ci python pipelines/study.py studies/<name>/study.yaml   # its `ci` profile (wiring check)
    python pipelines/study_report.py studies/paper_mnist_full/study.yaml   # its report, from what has finished
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import yaml
from omegaconf import OmegaConf
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from superconv.common.errors import ConfigError
from superconv.common.io import write_json
from superconv.common.provenance import CONFIG_FILE, PROVENANCE_FILE, changed_code, identity_changes, run_identity
from superconv.report.claims import SEQUENTIAL_TYPES, claim_parts, sequences
from superconv.report.reference import load_reference
from superconv.report.results import RUN_FILES, load_study_runs
from superconv.report.sequential import Plan
from superconv.stages import compose

log = logging.getLogger("superconv.study")

RESULT_FILE = {stage: result for stage, (_, result) in RUN_FILES.items()}
CURVE_FILE = {stage: curve for stage, (curve, _) in RUN_FILES.items()}  # what --verify and --accept compare
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
    jobs: Annotated[int, Field(ge=1)] | None = None  # processes at once (default: the study's), e.g. 2 on tiny data


class SequentialSpec(BaseModel):
    """A claim's seed budget (report.sequential): its first look at the study's seeds, ``batch`` more per look while
    it is inconclusive, at most ``max_seeds``."""

    model_config = ConfigDict(extra="forbid")
    max_seeds: Annotated[int, Field(ge=2)]
    batch: Annotated[int, Field(ge=1)] = 2


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
    # While a study made before the pinned CPU mode is re-run under it (over several sessions), its committed runs
    # that record no CPU mode are listed by --check as legacy but do not fail it; any other stale run does.
    # Remove the key once the last legacy run is re-run.
    allow_legacy: bool = False
    # claim id (published.yaml) -> its sequential budget: study.py adds seeds to the runs behind it while undecided
    sequential: dict[str, SequentialSpec] = {}
    published: str | None = None  # a published.yaml to judge claims by (default: the packaged one; tests)


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
    # a profile is a wiring check over a few runs and seeds: no sequential looks (their runs may not be kept)
    return spec.model_copy(update={"runs": runs, "sequential": {}, "jobs": chosen.jobs or spec.jobs})


def plans(spec: StudySpec) -> dict[str, Plan]:
    """claim id -> its sequential plan, the first look at the study's seeds; an unknown claim, a claim type no look
    can decide, a run behind it that the study lacks, or a cap below the first look is a ConfigError."""
    if not spec.sequential:
        return {}
    claims = {c["id"]: c for c in load_reference(spec.published).claims}
    found = {}
    for claim_id, budget in spec.sequential.items():
        claim = claims.get(claim_id)
        if claim is None or claim["type"] not in SEQUENTIAL_TYPES:
            known = ", ".join(i for i, c in claims.items() if c["type"] in SEQUENTIAL_TYPES)
            raise ConfigError(f"sequential.{claim_id}: no claim of published.yaml a look can decide "
                              f"({', '.join(SEQUENTIAL_TYPES)}); claims: {known}")
        missing = sorted({n for _, names in claim_parts(claim) for n in names} - set(spec.runs))
        if claim["type"] != "matches_published" and missing:
            raise ConfigError(f"sequential.{claim_id}: the study has no run {', '.join(missing)} behind it")
        if budget.max_seeds < len(spec.seeds):
            raise ConfigError(f"sequential.{claim_id}.max_seeds: {budget.max_seeds} is below the study's "
                              f"{len(spec.seeds)} seeds, its first look")
        found[claim_id] = Plan(len(spec.seeds), budget.max_seeds, budget.batch)
    return found


def _seeds(spec: StudySpec, run: RunSpec, n: int) -> list[int]:
    """A run's first ``n`` seeds: its own (or the study's), then the next integers after them."""
    base = list(run.seeds if run.seeds is not None else spec.seeds)
    return base[:n] + list(range(max(base) + 1, max(base) + 1 + n - len(base)))


def committed_extra(spec: StudySpec) -> dict[str, int]:
    """Run -> how many seeds its committed results hold beyond its own list (seeds a sequential claim added), for
    the runs behind a sequential claim: --check, --verify and --accept see them like the others."""
    behind = {n for claim in _claims(spec) for _, names in claim_parts(claim) for n in names if n in spec.runs}
    extra = {}
    for name in behind:
        run = spec.runs[name]
        base = run.seeds if run.seeds is not None else spec.seeds
        n = len(base)
        while (Path(spec.results) / f"{name}-{_seeds(spec, run, n + 1)[-1]}" / RESULT_FILE[run.stage]).is_file():
            n += 1
        if n > len(base):
            extra[name] = n
    return extra


def _claims(spec: StudySpec) -> list[dict]:
    return [c for c in load_reference(spec.published).claims if c["id"] in spec.sequential]


def wanted_seeds(spec: StudySpec, stale: set[str]) -> dict[str, int]:
    """Run -> the seeds its sequential claims' next looks need (only where more than it has): every claim part
    still waiting for seeds after the looks its committed results allow. A part with a run in ``stale`` (one whose
    committed seeds are not all current) takes no look: its results are not yet what the code makes."""
    runs, ref, found = load_study_runs(Path(spec.results)), load_reference(spec.published), plans(spec)
    wanted: dict[str, int] = {}
    for claim in _claims(spec):
        for (_, names), (seq, _) in zip(claim_parts(claim), sequences(claim, runs, ref, found[claim["id"]]),
                                        strict=True):
            if seq.stopped == "waiting for seeds" and seq.looks and not stale & set(names):
                for name in names:
                    if name in spec.runs:
                        wanted[name] = max(wanted.get(name, 0), seq.next_n)
    return wanted


def expand(spec: StudySpec, threads: int, counts: dict[str, int] | None = None) -> list[Job]:
    """Every run x seed in the file's order (all seeds of a run before the next run, so rows complete early);
    ``counts``: run -> how many seeds it gets instead of its list's (sequential seeds)."""
    jobs = []
    for name, run in spec.runs.items():
        seeds = run.seeds if run.seeds is not None else spec.seeds
        if counts and counts.get(name, 0) > len(seeds):
            seeds = _seeds(spec, run, counts[name])
        for index, seed in enumerate(seeds):
            out = Path(spec.results, f"{name}-{seed}")
            per_seed = [f"{key}={values[index % len(values)]}" for key, values in run.per_seed.items()]
            fixed = [f"seed={seed}", f"out={out}", f"study={spec.name}", f"trainer.threads={threads}",
                     "trainer.progress=false"]
            if run.stage == "train":
                fixed.append("trainer.fail_on_divergence=false")  # a diverged run is a result, listed as such
            jobs.append(Job(name, seed, run.stage, (*run.overrides, *per_seed, *fixed), out, tuple(spec.launcher)))
    return jobs


def config_change(job: Job) -> str | None:
    """None when the config ``job``'s overrides compose now has the identity its run in ``job.out`` recorded (an
    edit of conf/ that this run does not see); else the changed keys."""
    composed = compose.compose_stage_config(job.stage, list(job.overrides))
    if job.stage == "range_test":
        compose.cap_range_test(composed)
    else:
        compose.apply_lr_from(composed)
    changes = identity_changes(run_identity(yaml.safe_load((job.out / CONFIG_FILE).read_text())),
                               run_identity(OmegaConf.to_container(composed, resolve=True)))
    return f"config changed: {'; '.join(changes[:3])}{' ...' if len(changes) > 3 else ''}" if changes else None


def staleness(job: Job) -> str | None:
    """None when ``job.out`` holds the result of exactly this config and the code as it is now; else why not."""
    result, recorded = job.out / RESULT_FILE[job.stage], job.out / PROVENANCE_FILE
    if not (result.is_file() and recorded.is_file() and (job.out / CONFIG_FILE).is_file()):
        return "not run"
    changed_config = config_change(job)
    if changed_config:
        return changed_config
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
        env = os.environ.copy()
        if self.jobs > 1:  # jobs sharing cores must not spin-wait for theirs (OpenMP's default): same numbers, faster
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        with open(job.out / "stage.log", "a") as logfile:
            proc = subprocess.Popen(job.command, stdout=logfile, stderr=subprocess.STDOUT, env=env)
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


def first_difference(committed: Path, here: Path) -> str | None:
    """None when the two curve files are byte-identical; else where they first differ: the row (and its
    iteration), the column, and both values."""
    if committed.read_bytes() == here.read_bytes():
        return None
    with open(committed, newline="") as a, open(here, newline="") as b:
        old, new = list(csv.reader(a)), list(csv.reader(b))
    if old[:1] != new[:1]:
        columns = [",".join(rows[0]) if rows else "(empty)" for rows in (old, new)]
        return f"the columns differ: {columns[0]} committed, {columns[1]} here"
    header = old[0]
    for row, (was, now) in enumerate(zip(old[1:], new[1:], strict=False), start=1):
        for column, a_value, b_value in zip(header, was, now, strict=False):
            if a_value != b_value:
                return (f"row {row} ({header[0]} {was[0]}), column {column}: {a_value} committed, {b_value} here")
    return f"{len(old) - 1} rows committed, {len(new) - 1} here (the common rows are identical)"


def _scratch_job(job: Job, scratch: Path) -> Job:
    """``job`` writing under ``scratch`` and tracked nowhere: the same identity (out and tracking are not part of
    it), so its curve must be the committed one byte for byte."""
    out = scratch / job.label
    kept = [o for o in job.overrides if not o.startswith(("out=", "tracking.enabled="))]
    return replace(job, out=out, overrides=(*kept, f"out={out}", "tracking.enabled=false"))


def rerun_and_compare(todo: list[Job], jobs_at_once: int, scratch: Path) -> dict[str, str | None]:
    """Re-run each job into ``scratch``: label -> None (bit-identical) or the first difference (or the failure)."""
    done = Runner(jobs_at_once).run([_scratch_job(job, scratch) for job in todo])
    found: dict[str, str | None] = {}
    for job, (rerun, rc, _wall) in zip(todo, done, strict=True):
        curve = CURVE_FILE[job.stage]
        if rc != 0:
            found[job.label] = f"the re-run exited {rc}: see {rerun.out / 'stage.log'}"
        elif not (rerun.out / curve).is_file():
            found[job.label] = f"the re-run wrote no {curve}"
        else:
            found[job.label] = first_difference(job.out / curve, rerun.out / curve)
    return found


def _cpu(directory: Path) -> str:
    """The committed run's CPU numerics in brief (all of them are in its provenance.json)."""
    cpu = json.loads((directory / PROVENANCE_FILE).read_text()).get("cpu")
    if not cpu:
        return "a CPU mode not recorded (made before the pinned mode)"
    return f"cpu_mode {cpu['cpu_mode']}, ATen {cpu['aten_capability']}, {cpu['threads']} thread(s)"


def verify(spec: StudySpec, labels: list[str], jobs_at_once: int) -> int:
    """Re-run committed runs (``RUN-SEED``) into a temporary directory and compare their curves byte for byte: 0
    when every one is bit-identical, 1 otherwise (the scratch copies are kept then). Only a committed run of the
    config the study file gives now can be verified; anything else is a ConfigError before any compute."""
    jobs = {job.label: job for job in expand(spec, spec.threads, committed_extra(spec))}
    unknown = [label for label in labels if label not in jobs]
    if unknown:
        raise ConfigError(f"--verify {' '.join(unknown)}: no such RUN-SEED in {spec.name}; e.g. "
                          f"{', '.join(list(jobs)[:4])}")
    todo = [jobs[label] for label in labels]
    for job in todo:
        why = staleness(job)
        if why is not None and not why.startswith("code changed"):
            raise ConfigError(f"--verify {job.label}: {job.out} holds no result of this config ({why}); verify "
                              f"runs that are committed for the study file as it is")
    scratch = Path(tempfile.mkdtemp(prefix="superconv-verify-"))
    found = rerun_and_compare(todo, jobs_at_once, scratch)
    for job in todo:
        diff = found[job.label]
        print(f"{job.label}: {'bit-identical' if diff is None else 'DIFFERS: ' + diff} "
              f"({CURVE_FILE[job.stage]}; committed under {_cpu(job.out)})")
    if any(found.values()):
        print(f"the re-runs are kept in {scratch}", file=sys.stderr)
        return 1
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def accept(spec: StudySpec, jobs_at_once: int) -> int:
    """Accept a code change proven number-neutral, in the spirit of ``dvc commit``: of the committed runs that are
    stale only because code they loaded changed, re-run the first seed of every named run; when every one is
    bit-identical to its committed curve, re-stamp the provenance of all of them with the code as it is now (and
    record the evidence); otherwise name the runs that changed and re-stamp nothing."""
    stale: dict[tuple[str, str], list[Job]] = {}
    others = []
    for job in expand(spec, spec.threads, committed_extra(spec)):
        why = staleness(job)
        if why is None:
            continue
        if why.startswith("code changed"):
            stale.setdefault((job.name, recorded_code(job.out)), []).append(job)
        elif why != "not run":
            others.append(f"{job.label} ({why})")
    for line in others:
        print(f"not accepted, re-run it: {line}")
    if not stale:
        print("nothing to accept: no committed run is stale by code alone")
        return 1 if others else 0
    sample = [runs[0] for runs in stale.values()]
    print(f"re-running {len(sample)} of {sum(map(len, stale.values()))} code-stale runs (one per named run): "
          f"{' '.join(job.label for job in sample)}")
    scratch = Path(tempfile.mkdtemp(prefix="superconv-accept-"))
    found = rerun_and_compare(sample, jobs_at_once, scratch)
    changed = {label: diff for label, diff in found.items() if diff is not None}
    if changed:
        for label, diff in changed.items():
            print(f"CHANGED {label}: {diff}")
        print(f"nothing re-stamped: re-run the changed runs' named runs (the re-runs are in {scratch})")
        return 1
    for (name, _code), runs in stale.items():
        job = runs[0]
        restamp([run.out for run in runs], scratch / job.label,
                f"{job.label} re-run bit-identical ({CURVE_FILE[job.stage]})")
        print(f"accepted {len(runs)} runs of {name}: {job.label} re-ran bit-identical")
    shutil.rmtree(scratch, ignore_errors=True)
    return 1 if others else 0


def recorded_code(run: Path) -> str:
    """A digest of the code a committed run recorded: runs of one named run made by different code (an older pin, a
    later fix) each need their own bit-identical re-run before a change is accepted for them."""
    code = json.loads((run / PROVENANCE_FILE).read_text())["code"]
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()


def restamp(runs: list[Path], rerun: Path, evidence: str) -> None:
    """Give each committed run the code the bit-identical re-run ``rerun`` loaded, appending to its provenance
    what changed and the evidence (``accepted: [{when, evidence, changed}]``)."""
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    code = json.loads((rerun / PROVENANCE_FILE).read_text())["code"]
    for run in runs:
        record = json.loads((run / PROVENANCE_FILE).read_text())
        record.setdefault("accepted", []).append({"when": when, "evidence": evidence,
                                                  "changed": changed_code(record["code"])})
        record["code"] = code
        write_json(run / PROVENANCE_FILE, record)


def check(spec: StudySpec) -> int:
    """CI's rule: 0 when every committed run (one whose result file exists) is current at HEAD, 1 otherwise with
    each stale run and why. Runs never made are no error: a study is built up over sessions."""
    stale, legacy = [], []
    for job in expand(spec, spec.threads, committed_extra(spec)):
        why = staleness(job)
        if why is None or why == "not run":
            continue
        made_before_pin = "cpu" not in json.loads((job.out / PROVENANCE_FILE).read_text())
        (legacy if spec.allow_legacy and made_before_pin else stale).append((job, why))
    for job, why in stale:
        print(f"stale {job.label}: {why}")
    if legacy:
        print(f"{spec.name}: {len(legacy)} legacy runs (made before the pinned CPU mode) wait to be re-run: "
              f"{' '.join(job.label for job, _ in legacy)}")
    print(f"{spec.name}: {len(stale)} committed runs stale" + (
        " (re-run them, or --accept a number-neutral code change)" if stale else ""))
    return 1 if stale else 0


def _run_jobs(jobs: list[Job], jobs_at_once: int, threads: int, dry_run: bool = False) -> int | None:
    """Print each job's state; run the stale ones (not on a dry run). None when all went through, else the exit
    code."""
    todo = []
    for job in jobs:
        why = staleness(job)
        if why is not None:
            todo.append(job)
        print(f"{'run ' if why else 'keep'} {job.label:40s} {why or 'up to date'}")
    print(f"{len(todo)} of {len(jobs)} runs to do, {jobs_at_once} at a time, {threads} torch threads each")
    if dry_run or not todo:
        return None
    runner = Runner(jobs_at_once)
    failed = [(job, rc) for job, rc, _ in runner.run(todo) if rc not in (0, -1)]
    for job, rc in failed:
        print(f"FAILED {job.label} (exit {rc}): see {job.out / 'stage.log'}", file=sys.stderr)
    if runner.stopping:
        return 128 + signal.SIGTERM
    return 1 if failed else None


def run_study(spec: StudySpec, path: Path, jobs_at_once: int | None, only: list[str] | None, dry_run: bool,
              profile: str | None = None) -> int:
    """Run every job of ``spec`` (as ``profile`` varies it) that is not up to date; print what is kept and what
    runs, and why. Then, for its sequential claims, add a batch of seeds to the runs behind each undecided one and
    run them, look after look, until every one is decided or at its cap."""
    spec = apply_profile(spec, path, profile)
    jobs_at_once = jobs_at_once or spec.jobs
    threads = spec.threads
    unknown = sorted(set(only or ()) - set(spec.runs))
    if unknown:
        raise ConfigError(f"--only {' '.join(unknown)}: no such run in {path}; runs: {', '.join(spec.runs)}")
    plans(spec)  # a bad sequential block fails before any compute
    counts = committed_extra(spec)
    jobs = [j for j in expand(spec, threads, counts) if only is None or j.name in only]
    rc = _run_jobs(jobs, jobs_at_once, threads, dry_run)
    while rc is None and spec.sequential:
        stale = {job.name for job in expand(spec, threads, counts) if staleness(job)}
        wanted = {name: n for name, n in wanted_seeds(spec, stale).items() if only is None or name in only}
        more = [j for j in expand(spec, threads, {**counts, **wanted}) if j.name in wanted]
        if not more or not any(staleness(j) for j in more):
            break
        print(f"sequential: the next looks need {', '.join(f'{k} at {v} seeds' for k, v in sorted(wanted.items()))}")
        counts = {**counts, **wanted}
        rc = _run_jobs(more, jobs_at_once, threads, dry_run)
        if dry_run:  # the look after these seeds depends on what they give
            print("sequential: any later look depends on these seeds' results")
            break
    return rc or 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", type=Path, nargs="+",
                        help="studies/<name>/study.yaml (several only with --check: one process checks them all)")
    parser.add_argument("--jobs", type=int, help="processes at once (default: the study's jobs)")
    parser.add_argument("--only", nargs="*", default=None, metavar="RUN", help="run only these named runs")
    parser.add_argument("--dry-run", action="store_true", help="list each job and whether it would run")
    parser.add_argument("--profile", default=os.environ.get(PROFILE_ENV),
                        help=f"run the study file's profiles.<name> (default: ${PROFILE_ENV}), e.g. ci")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--verify", nargs="+", metavar="RUN-SEED",
                        help="re-run these committed runs into a temporary directory: bit-identical, or the first "
                             "row and column that differ")
    action.add_argument("--accept", action="store_true",
                        help="re-run one seed per named run that only code made stale; if all are bit-identical, "
                             "re-stamp every such run's provenance")
    action.add_argument("--check", action="store_true", help="exit 1 if any committed run is stale (CI)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if len(args.study) > 1 and not args.check:
        parser.error(f"{len(args.study)} study files given: only --check takes several")
    try:
        if args.check:
            specs = [apply_profile(load_study(path), path, args.profile) for path in args.study]
            return max(check(spec) for spec in specs)
        [path] = args.study
        spec = load_study(path)
        if not (args.verify or args.accept):
            return run_study(spec, path, args.jobs, args.only, args.dry_run, args.profile)
        spec = apply_profile(spec, path, args.profile)
        if args.verify:
            return verify(spec, args.verify, args.jobs or spec.jobs)
        return accept(spec, args.jobs or spec.jobs)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
