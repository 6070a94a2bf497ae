"""What the pinned CPU mode costs on the default study: its stages run pinned and native, interleaved, in one run.

The default study (params.yaml) trains its runs with the train stage and runs the range test; each of its training
runs runs here as the real stage process (tracking off), capped at ``--iterations``, in the order pinned, native,
pinned, native, ... so both modes see the same machine load. A run's cost is its process wall time per iteration
less a start-up measured the same way (a 1-iteration run), so start-up, which the mode does not change, does not
dilute the ratio. The range test's iterations are the same LeNet step at the same batch and count at the 1cycle
run's cost (a capped range test has too short a curve to pass its own suggestion rule). The study's ratio weights
each kind by the iterations the study gives it: from the committed results of the default study when they exist
(results/train/*/summary.json, the range test's config.yaml), else equally.
It writes its figures, with the commit and the CPU they were measured on, to docs/generated/cpu_mode_cost.md.

    python -m superconv.bench cpu_mode --iterations 150 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from superconv.bench.common import median, positive_int, written_by
from superconv.common.io import atomic_write, write_json
from superconv.common.provenance import CONFIG_FILE

MODES = ("pinned", "native")
OUT = Path("docs/generated/cpu_mode_cost.md")


def stage_kinds(params: dict[str, Any]) -> dict[str, list[str]]:
    """Stage kind -> its command (less out= and the cap): every training run of the default study."""
    base = [f"experiment={params['experiment']}", f"study={params['study']}", "tracking.enabled=false",
            "trainer.progress=false", *(params.get("overrides") or "").split()]
    return {f"train {run}": ["pipelines/train.py", f"schedule={run}", *base] for run in params["runs"]}


def study_iterations(params: dict[str, Any], results: Path) -> dict[str, int] | None:
    """Stage kind -> the iterations the committed default study spent on it (all seeds), or None if not there."""
    found: dict[str, int] = {}
    for summary in sorted((results / "train").glob("*/summary.json")):
        record = json.loads(summary.read_text())
        kind = f"train {record['policy']}"
        found[kind] = found.get(kind, 0) + int(record["iterations"])
    first = f"train {params['runs'][0]}"  # the range test's LeNet steps cost what a training step does
    for config in sorted((results / "range_test" / params["experiment"]).glob(f"seed-*/{CONFIG_FILE}")):
        found[first] = found.get(first, 0) + int(yaml.safe_load(config.read_text())["range_test"]["iterations"])
    return found or None


def _wall(command: list[str], mode: str, iterations: int, out: Path) -> float:
    cmd = [sys.executable, *command, f"trainer.cpu_mode={mode}", f"trainer.max_iterations={iterations}",
           f"out={out}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall


def bench(params: dict[str, Any], iterations: int, repeats: int) -> dict[str, Any]:
    """Per stage kind and mode: the median seconds per iteration over ``repeats`` interleaved rounds."""
    kinds = stage_kinds(params)
    walls: dict[str, dict[str, list[float]]] = {k: {m: [] for m in MODES} for k in kinds}
    starts: dict[str, dict[str, list[float]]] = {k: {m: [] for m in MODES} for k in kinds}
    with tempfile.TemporaryDirectory(prefix="bench_cpu_mode_") as tmp:
        for index in range(repeats):
            for kind, command in kinds.items():
                for mode in MODES if index % 2 == 0 else MODES[::-1]:
                    out = Path(tmp, f"{kind.replace(' ', '_')}-{mode}-{index}")
                    starts[kind][mode].append(_wall(command, mode, 1, out.with_name(out.name + "-start")))
                    walls[kind][mode].append(_wall(command, mode, iterations, out))
    per_iteration = {kind: {mode: (median(walls[kind][mode]) - median(starts[kind][mode])) / (iterations - 1)
                            for mode in MODES} for kind in kinds}
    return {"iterations": iterations, "repeats": repeats, "per_iteration_s": per_iteration,
            "walls_s": walls, "startups_s": starts}


def summarize(report: dict[str, Any], weights: dict[str, int] | None) -> dict[str, Any]:
    per = report["per_iteration_s"]
    weights = weights or dict.fromkeys(per, 1)
    pinned = sum(per[k]["pinned"] * weights.get(k, 0) for k in per)
    native = sum(per[k]["native"] * weights.get(k, 0) for k in per)
    return {**report, "study_iterations": weights, "study_pinned_s": pinned, "study_native_s": native,
            "study_ratio": pinned / native}


def markdown(result: dict[str, Any], weighted: bool) -> str:
    rows = [f"| {kind} | {v['pinned'] * 1e3:.0f} | {v['native'] * 1e3:.0f} | {v['pinned'] / v['native']:.2f} | "
            f"{result['study_iterations'].get(kind, 0)} |" for kind, v in result["per_iteration_s"].items()]
    command = f"python -m superconv.bench cpu_mode --iterations {result['iterations']} --repeats {result['repeats']}"
    return "\n".join([
        "# The pinned CPU mode's cost on the default study (generated)", "",
        f"{written_by(command)}, torch threads as each stage's config gives them. Do not edit: re-run.",
        "", "| stage kind | pinned ms/iteration | native ms/iteration | ratio | iterations in the study |",
        "|---|---|---|---|---|", *rows, "",
        f"The default study, weighted by {'its committed iterations' if weighted else 'equal weights (no results)'}:"
        f" {result['study_pinned_s'] / 60:.1f} min pinned against {result['study_native_s'] / 60:.1f} min native "
        f"of training and evaluation, a ratio of **{result['study_ratio']:.2f}** (start-up excluded).", ""])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench cpu_mode", description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=positive_int, default=150)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.iterations < 2:
        sys.exit("error: --iterations must be at least 2 (one is the start-up baseline)")
    params = yaml.safe_load(args.params.read_text())
    weights = study_iterations(params, args.results)
    try:
        result = summarize(bench(params, args.iterations, args.repeats), weights)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    result["cpu_count"] = os.cpu_count()
    write_json(args.out.with_suffix(".json"), result)
    text = markdown(result, weights is not None)
    atomic_write(args.out, lambda p: p.write_text(text))
    print(text)
    return result


if __name__ == "__main__":
    main()
