"""Is every dvc.lock entry current at HEAD, and accepting a code change proven not to move a number.

A DVC stage depends on whole code folders (tests/unit/test_dvc_deps.py), so any edit under them makes every training
stage stale, while a run's ``provenance.json`` names exactly the modules it loaded. ``--accept`` uses that, for a
stale stage whose only changed deps are code, or conf/ folders from which the stage's command still composes the
config every one of its runs recorded (the same identity; e.g. another schedule's file was edited):

- when no run under its outputs loaded a changed module, it is re-stamped with ``dvc commit`` (its numbers cannot
  have moved: nothing it ran changed);
- when its runs did load changed code, the first seed of every named run is re-run from the stage's own command
  into a temporary directory, as ``pipelines/study.py --accept`` does (stages whose commands differ only in the
  seed are one named run; its runs that recorded different code are sampled apart). Only when every re-run is
  byte-identical to its committed curve are the runs' provenance re-stamped (with the evidence) and the stages
  committed. Otherwise it names the runs that changed and re-stamps nothing.

Anything else is listed to re-run with ``dvc repro``. ``--check`` (CI) exits 1 while any recorded stage is stale; a
stage never run, and an output DVC keeps in its cache rather than in git (the prepared data, re-made by ``dvc repro``
with the same hash), is no error.

    python pipelines/lock.py --check [dvc.yaml studies/dvc.yaml]
    python pipelines/lock.py --accept [--jobs N] [dvc.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from superconv.common.errors import ConfigError
from superconv.common.provenance import CONFIG_FILE, PROVENANCE_FILE, changed_code
from superconv.stages.study import CURVE_FILE, Job, config_change, recorded_code, rerun_and_compare, restamp

PIPELINES = ("dvc.yaml", "studies/dvc.yaml")
CODE = ("src/superconv/", "pipelines/")
CONF = "conf/"
ABSENT = ("deleted", "not in cache")  # not materialized in this checkout, which is not the same as changed


def _dvc(*args: str) -> subprocess.CompletedProcess:
    """DVC from PATH, else the one installed beside this interpreter (a venv's python run without activating it)."""
    beside = Path(sys.executable).with_name("dvc")
    dvc = shutil.which("dvc") or (str(beside) if beside.is_file() else None)
    if dvc is None:
        raise ConfigError("dvc is not on PATH nor beside this Python: install the project (make install) or "
                          "activate its venv (. .venv/bin/activate)")
    return subprocess.run([dvc, *args], capture_output=True, text=True)


def _lock(pipeline: Path) -> dict[str, dict]:
    lock = pipeline.with_name("dvc.lock")
    return yaml.safe_load(lock.read_text())["stages"] if lock.is_file() else {}


def stale_stages(pipeline: Path) -> dict[str, dict[str, dict[str, str]]]:
    """Recorded stage -> {"deps"|"outs": {path: status}, "cmd": ...} for every stage of ``pipeline`` whose recorded
    hashes differ from the checkout (paths relative to the repository root)."""
    proc = _dvc("status", "--json", str(pipeline))
    if proc.returncode != 0:
        raise RuntimeError(f"dvc status {pipeline} failed: {proc.stderr.strip()[-800:]}")
    recorded = _lock(pipeline)
    found: dict[str, dict[str, dict[str, str]]] = {}
    for name, entries in (json.loads(proc.stdout or "{}")).items():
        stage = name.split(":", 1)[-1]
        if stage not in recorded:
            continue  # never run: not stale
        changes: dict[str, dict[str, str]] = {}
        for entry in entries:
            if isinstance(entry, str):  # "changed command", "always changed"
                changes.setdefault("cmd", {})[entry] = "changed"
                continue
            for kind, paths in entry.items():
                for path, status in paths.items():
                    if status not in ABSENT:  # paths as dvc status gives them: relative to the working directory
                        changes.setdefault(kind.removeprefix("changed "), {})[path] = status
        if changes:
            found[stage] = changes
    return found


def _wdir(pipeline: Path, stage: str) -> Path:
    """Where ``stage``'s lock paths start: its ``wdir`` (a foreach stage's in ``do``), relative to its dvc.yaml."""
    spec = yaml.safe_load(pipeline.read_text())["stages"][stage.split("@")[0]]
    return pipeline.parent / (spec.get("do", spec).get("wdir") or ".")


def _runs_under(paths: list[str]) -> list[Path]:
    return sorted(p.parent for out in paths for p in Path(out).rglob(PROVENANCE_FILE)) if paths else []


def _stage_runs(pipeline: Path, stage: str) -> list[Path]:
    return _runs_under([str(_wdir(pipeline, stage) / o["path"]) for o in _lock(pipeline)[stage].get("outs", [])])


LOADED_CHANGED = "its runs loaded changed code"


def _configs_unchanged(pipeline: Path, stage: str) -> bool:
    """Whether the stage's command composes, for every one of its runs, the identity that run recorded: an edit of
    conf/ that none of them sees (another schedule's file, a comment) leaves them to the code rule."""
    return all(config_change(job) is None for job in stage_jobs(pipeline, stage))


def acceptable(pipeline: Path, stage: str, changes: dict[str, dict[str, str]]) -> str | None:
    """None when ``stage`` may be re-stamped (only code deps changed, and no run under its outputs loaded any
    changed module); else why not (``LOADED_CHANGED ...``: only re-run evidence can accept it)."""
    other = {k: v for k, v in changes.items() if k != "deps"}
    if other:
        return "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in other.items())
    runs = _stage_runs(pipeline, stage)
    not_code = [p for p in changes.get("deps", {}) if not p.startswith(CODE)]
    if not_code and not (runs and all(p.startswith(CONF) for p in not_code) and _configs_unchanged(pipeline, stage)):
        return f"non-code deps changed: {', '.join(not_code)}"
    if not runs:
        return "its outputs record no provenance (re-running it is cheap)"
    loaded = sorted({name for run in runs
                     for name in changed_code(json.loads((run / PROVENANCE_FILE).read_text())["code"])})
    return f"{LOADED_CHANGED}: {', '.join(loaded)}" if loaded else None


def stage_jobs(pipeline: Path, stage: str) -> list[Job]:
    """The stage's runs as study jobs, each re-made by the stage's own command (dvc.lock's ``cmd``) with its seed
    alone (a sweep's seeds run one by one) and its output elsewhere: named by the stage less its seed, so the stages
    of one named run share a name (``train@one_cycle-0`` and ``-1`` are ``train@one_cycle``)."""
    tokens = shlex.split(_lock(pipeline)[stage]["cmd"])
    script = next(i for i, t in enumerate(tokens) if t.startswith("pipelines/") and t.endswith(".py"))
    args = tuple(t for t in tokens[script + 1:] if t != "-m" and not t.startswith(("hydra.sweep.", "seed=", "out=")))
    jobs = []
    for run in _stage_runs(pipeline, stage):
        config = yaml.safe_load((run / CONFIG_FILE).read_text())
        seed = config["seed"]
        name = re.sub(rf"[-@]{seed}$", "", stage)
        jobs.append(Job(name, seed, config["stage"], (*args, f"seed={seed}"), run))
    return sorted(jobs, key=lambda job: job.seed)


def evidence(pipeline: Path, stages: list[str], jobs_at_once: int) -> list[str]:
    """Re-run the first seed of every named run of ``stages`` (their runs loaded changed code) and, when every
    re-run is byte-identical to its committed curve, re-stamp all their runs' provenance: the stages accepted then
    (none when any re-run differs; each difference is printed)."""
    named: dict[tuple[str, str], list[tuple[str, Job]]] = {}  # (named run, the code its runs recorded)
    for stage in stages:
        for job in stage_jobs(pipeline, stage):
            named.setdefault((job.name, recorded_code(job.out)), []).append((stage, job))
    sample = [min(runs, key=lambda run: run[1].seed)[1] for runs in named.values()]
    print(f"re-running {len(sample)} of {sum(map(len, named.values()))} runs of {pipeline} (one per named run): "
          f"{' '.join(job.label for job in sample)}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="superconv-accept-"))
    found = rerun_and_compare(sample, jobs_at_once, scratch)
    changed = {label: diff for label, diff in found.items() if diff is not None}
    for label, diff in changed.items():
        print(f"CHANGED {pipeline}:{label}: {diff}")
    if changed:
        print(f"nothing re-stamped: dvc repro the changed named runs (the re-runs are in {scratch})")
        return []
    for runs in named.values():
        job = min(runs, key=lambda run: run[1].seed)[1]
        restamp([run.out for _, run in runs], scratch / job.label,
                f"{job.label} re-run bit-identical ({CURVE_FILE[job.stage]})")
    shutil.rmtree(scratch, ignore_errors=True)
    return sorted({stage for runs in named.values() for stage, _ in runs})


def check(pipelines: list[Path]) -> int:
    stale = {(p, s): c for p in pipelines for s, c in stale_stages(p).items()}
    for (pipeline, stage), changes in stale.items():
        print(f"stale {pipeline}:{stage}: " + "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in
                                                       changes.items()))
    print(f"{len(stale)} recorded stages stale" + (" (dvc repro them, or --accept a change their runs never "
                                                    "loaded)" if stale else ""))
    return 1 if stale else 0


def accept(pipelines: list[Path], jobs_at_once: int = 1) -> int:
    left = 0
    for pipeline in pipelines:
        stale = stale_stages(pipeline)
        reasons = {stage: acceptable(pipeline, stage, changes) for stage, changes in stale.items()}
        rerun = [stage for stage, why in reasons.items() if why is not None and why.startswith(LOADED_CHANGED)]
        proven = evidence(pipeline, rerun, jobs_at_once) if rerun else []
        ok = [stage for stage, why in reasons.items() if why is None or stage in proven]
        for stage, why in reasons.items():
            if stage not in ok:
                left += 1
                print(f"re-run {pipeline}:{stage}: {why}")
        if ok:
            proc = _dvc("commit", "--force", *(f"{pipeline}:{stage}" for stage in ok))
            if proc.returncode != 0:
                raise RuntimeError(f"dvc commit failed: {proc.stderr.strip()[-800:]}")
            for stage in ok:
                print(f"accepted {pipeline}:{stage}: " + ("its named run re-ran bit-identical" if stage in proven
                                                          else "no module its runs loaded changed"))
    return 1 if left else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 while a recorded stage is stale (CI)")
    action.add_argument("--accept", action="store_true",
                        help="dvc commit the stale stages a code change left bit-identical (re-running a sample)")
    parser.add_argument("--jobs", type=int, default=1, help="re-runs at once for --accept (default 1)")
    parser.add_argument("pipelines", nargs="*", type=Path, default=[Path(p) for p in PIPELINES])
    args = parser.parse_args(argv)
    try:
        return check(args.pipelines) if args.check else accept(args.pipelines, args.jobs)
    except (RuntimeError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
