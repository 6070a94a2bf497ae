"""One N-thread training process against N one-thread processes side by side: which finishes a study sooner.

A study (stages.study) runs ``jobs`` processes of ``threads`` torch threads each. Whether two 1-thread processes beat
one 2-thread process depends on how well the model's kernels use a second thread, so this measures it with the real
train stage (``pipelines/train.py``, tracking off): A = one process with every thread, B = that many 1-thread
processes at once, interleaved A, B, A, B. Throughput is every image trained over the wall time from the first
start to the last finish of a round (process start-up included, as in a study).

    python -m superconv.bench parallel --iterations 300 --repeats 2
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

from superconv.bench.common import median, positive_int
from superconv.common.io import write_json
from superconv.common.provenance import CONFIG_FILE


def _round(processes: int, threads: int, overrides: list[str], work: Path) -> dict[str, float]:
    """``processes`` train processes of ``threads`` threads at once; their images over the round's wall time."""
    cmds = [[sys.executable, "pipelines/train.py", *overrides, f"trainer.threads={threads}", f"seed={i}",
             f"out={work / f'p{processes}t{threads}-{i}'}"] for i in range(processes)]
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - start
    failed = [e for p, e in zip(procs, errors, strict=True) if p.returncode]
    if failed:
        raise RuntimeError(f"a train process failed:\n{failed[0][-2000:]}")
    images = 0
    for cmd in cmds:
        out = Path(cmd[-1].removeprefix("out="))
        batch = yaml.safe_load((out / CONFIG_FILE).read_text())["trainer"]["total_batch"]
        images += json.loads((out / "summary.json").read_text())["iterations"] * batch
    return {"wall_s": wall, "images_per_s": images / wall}


def bench(experiment: str, iterations: int, threads: int, repeats: int, extra: list[str]) -> dict[str, Any]:
    overrides = [f"experiment={experiment}", "schedule=one_cycle", f"trainer.max_iterations={iterations}",
                 f"trainer.eval_every={iterations}", "tracking.enabled=false", "trainer.progress=false", *extra]
    rounds: dict[str, list[dict[str, float]]] = {"one": [], "many": []}
    with tempfile.TemporaryDirectory(prefix="bench_parallel_") as tmp:
        for _ in range(repeats):
            rounds["one"].append(_round(1, threads, overrides, Path(tmp)))
            rounds["many"].append(_round(threads, 1, overrides, Path(tmp)))
    one = median([r["images_per_s"] for r in rounds["one"]])
    many = median([r["images_per_s"] for r in rounds["many"]])
    return {"experiment": experiment, "iterations": iterations, "threads": threads, "repeats": repeats,
            "cpu_count": os.cpu_count(), "rounds": rounds, "one_process_images_per_s": one,
            "many_processes_images_per_s": many, "ratio_many_over_one": many / one}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench parallel", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="paper_mnist_lenet", help="a preset whose data is prepared")
    parser.add_argument("--iterations", type=positive_int, default=300)
    parser.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1,
                        help="threads of the one process = number of 1-thread processes (default: every core)")
    parser.add_argument("--repeats", type=positive_int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more Hydra overrides")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_parallel.json"))
    args = parser.parse_args(argv)
    try:
        report = bench(args.experiment, args.iterations, args.threads, args.repeats, args.set)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    write_json(args.out, report)
    print(f"{args.experiment}, {args.iterations} iterations per process, median of {args.repeats} interleaved "
          f"rounds, {report['cpu_count']} CPUs:")
    print(f"  1 process x {args.threads} threads   {report['one_process_images_per_s']:8.0f} images/s (round wall)")
    print(f"  {args.threads} processes x 1 thread  {report['many_processes_images_per_s']:8.0f} images/s (round wall)")
    print(f"  ratio {report['ratio_many_over_one']:.3f} -> {args.out}")
    return report


if __name__ == "__main__":
    main()
