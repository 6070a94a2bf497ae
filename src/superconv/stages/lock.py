"""Is every dvc.lock entry current at HEAD, and accepting a code change that no recorded run loaded.

A DVC stage depends on whole code folders (tests/unit/test_dvc_deps.py), so any edit under them makes every training
stage stale, while a run's ``provenance.json`` names exactly the modules it loaded. ``--accept`` uses that: a stale
stage whose only changed deps are code, and every run under whose outputs records code that is unchanged now, is
re-stamped with ``dvc commit`` (its numbers cannot have moved: nothing it ran changed). Anything else is listed to
re-run with ``dvc repro``. ``--check`` (CI) exits 1 while any recorded stage is stale; a stage never run, and an
output DVC keeps in its cache rather than in git (the prepared data, re-made by ``dvc repro`` with the same hash),
is no error.

    python pipelines/lock.py --check [dvc.yaml studies/dvc.yaml]
    python pipelines/lock.py --accept [dvc.yaml ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from superconv.common.errors import ConfigError
from superconv.common.provenance import PROVENANCE_FILE, changed_code

PIPELINES = ("dvc.yaml", "studies/dvc.yaml")
CODE = ("src/superconv/", "pipelines/")
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


def acceptable(pipeline: Path, stage: str, changes: dict[str, dict[str, str]]) -> str | None:
    """None when ``stage`` may be re-stamped (only code deps changed, and no run under its outputs loaded any
    changed module); else why it must re-run."""
    other = {k: v for k, v in changes.items() if k != "deps"}
    if other:
        return "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in other.items())
    not_code = [p for p in changes.get("deps", {}) if not p.startswith(CODE)]
    if not_code:
        return f"non-code deps changed: {', '.join(not_code)}"
    outs = [str(_wdir(pipeline, stage) / o["path"]) for o in _lock(pipeline)[stage].get("outs", [])]
    runs = _runs_under(outs)
    if not runs:
        return "its outputs record no provenance (re-running it is cheap)"
    loaded = sorted({name for run in runs
                     for name in changed_code(json.loads((run / PROVENANCE_FILE).read_text())["code"])})
    return f"its runs loaded changed code: {', '.join(loaded)}" if loaded else None


def check(pipelines: list[Path]) -> int:
    stale = {(p, s): c for p in pipelines for s, c in stale_stages(p).items()}
    for (pipeline, stage), changes in stale.items():
        print(f"stale {pipeline}:{stage}: " + "; ".join(f"{kind}: {', '.join(paths)}" for kind, paths in
                                                       changes.items()))
    print(f"{len(stale)} recorded stages stale" + (" (dvc repro them, or --accept a change their runs never "
                                                    "loaded)" if stale else ""))
    return 1 if stale else 0


def accept(pipelines: list[Path]) -> int:
    left = 0
    for pipeline in pipelines:
        ok = []
        for stage, changes in stale_stages(pipeline).items():
            why = acceptable(pipeline, stage, changes)
            if why is None:
                ok.append(stage)
            else:
                left += 1
                print(f"re-run {pipeline}:{stage}: {why}")
        if ok:
            proc = _dvc("commit", "--force", *(f"{pipeline}:{stage}" for stage in ok))
            if proc.returncode != 0:
                raise RuntimeError(f"dvc commit failed: {proc.stderr.strip()[-800:]}")
            for stage in ok:
                print(f"accepted {pipeline}:{stage}: no module its runs loaded changed")
    return 1 if left else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 while a recorded stage is stale (CI)")
    action.add_argument("--accept", action="store_true", help="dvc commit the stale stages no change reached")
    parser.add_argument("pipelines", nargs="*", type=Path, default=[Path(p) for p in PIPELINES])
    args = parser.parse_args(argv)
    try:
        return check(args.pipelines) if args.check else accept(args.pipelines)
    except (RuntimeError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
