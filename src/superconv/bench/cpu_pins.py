"""Why each pin of the pinned CPU mode is needed: the golden tiny-digits run under the pin, without each pin in turn,
under lower ISAs, and in native mode, each as the real train stage process; one table of curves that differ.

A variant that drops a pin runs the train stage with ``superconv.stages.preflight.pin_cpu`` wrapped so that, right after
the pin is set and before the first kernel, the named pin is undone (the libraries read their settings at their first
kernel, so this is the process the pin would give without it). A variant with ``env`` starts the process with those
variables (a user's limits below the CPU's ISA; the pinned mode overrides ATen's and oneDNN's). Each curve is the
run's ``metrics.csv``, named by the first 12 hex digits of its sha256, with the first row and column where it differs
from the pinned run's. It writes the table, with the commit and the CPU, to docs/generated/cpu_pins.md.

    python -m superconv.bench cpu_pins
"""

from __future__ import annotations

import argparse
import hashlib
import os
import runpy
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from superconv.bench.common import written_by
from superconv.common.io import atomic_write, write_json

OUT = Path("docs/generated/cpu_pins.md")
TINY = ["experiment=tiny_digits_lenet", "trainer.progress=false", "tracking.enabled=false", "seed=0"]
# Limits below an AVX-512 CPU that the pin does not set itself (MKL's instructions, glibc's CPU-specific libm), and
# a user's own lower ATen/oneDNN choice, which the pin overrides (tests/integration/test_cpu_mode.py uses the same).
LOWER_ISA = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
             "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512DQ,-AVX512BW,-AVX512VL,-AVX512CD"}


@dataclass(frozen=True)
class Variant:
    label: str
    reading: str  # what a differing curve shows
    mode: str = "pinned"
    drop: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()


VARIANTS = (
    Variant("pinned (the default)", "the reference"),
    Variant("pinned, under lower ISA limits (MKL AVX2, glibc without AVX-512, ATen default, oneDNN SSE4.1)",
            "nothing the pin leaves depends on the CPU's own features", env=LOWER_ISA),
    Variant("pinned, 1 thread instead of 2", "ATen splits its sums by the thread count: threads is a config value",
            overrides=("trainer.threads=1",)),
    Variant("pinned, MKL_CBWR unset", "MKL's own dispatch picks GEMM's code path, so its bits",
            drop=("MKL_CBWR",)),
    Variant("pinned, oneDNN on (capped at AVX2 by the pin)", "oneDNN's convolutions sum in another order than "
            "ATen's native path, and their blocking follows cache sizes and core count, which no flag pins",
            drop=("mkldnn",)),
    Variant("pinned, oneDNN on, no ISA cap", "whether oneDNN's ISA choice moves the bits on this CPU too",
            drop=("mkldnn", "ONEDNN_MAX_CPU_ISA")),
    Variant("pinned, NNPACK on", "NNPACK's own dispatch", drop=("nnpack",)),
    Variant("native", "the libraries' fastest kernels for this CPU", mode="native"),
    Variant("native, ATEN_CPU_CAPABILITY=avx2", "ATen's kernel choice changes the bits", mode="native",
            env={"ATEN_CPU_CAPABILITY": "avx2"}),
    Variant("native, ATEN_CPU_CAPABILITY=default", "ATen's kernel choice changes the bits", mode="native",
            env={"ATEN_CPU_CAPABILITY": "default"}),
    Variant("native, ONEDNN_MAX_CPU_ISA=AVX2", "oneDNN's ISA changes the bits", mode="native",
            env={"ONEDNN_MAX_CPU_ISA": "AVX2"}),
)


def child(drop: list[str], overrides: list[str]) -> None:
    """The train stage, as `python pipelines/train.py` runs it, with ``drop`` undone right after the pin is set."""
    import torch

    import superconv.stages.preflight as stage_preflight
    from superconv.core.cpu_mode import cpu_facts

    pin = stage_preflight.pin_cpu

    def unpinned(mode: str, threads: int | None) -> dict[str, str]:
        pin(mode, threads)
        for name in drop:
            if name == "mkldnn":
                torch.backends.mkldnn.enabled = True
            elif name == "nnpack":
                torch.backends.nnpack.set_flags(True)
            else:
                os.environ.pop(name, None)
        return cpu_facts(mode)

    stage_preflight.pin_cpu = unpinned
    sys.argv = ["pipelines/train.py", *overrides]
    runpy.run_path("pipelines/train.py", run_name="__main__")


def run_variant(variant: Variant, data_root: Path, out: Path) -> bytes:
    env = {k: v for k, v in os.environ.items() if k not in LOWER_ISA and k not in ("MKL_CBWR", "MKL_DYNAMIC")}
    cmd = [sys.executable, "-m", "superconv.bench.cpu_pins", "--child", ",".join(variant.drop), "--", *TINY,
           f"trainer.cpu_mode={variant.mode}", f"data_root={data_root}", f"out={out}", *variant.overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**env, **variant.env})
    if proc.returncode:
        raise RuntimeError(f"{variant.label}: {' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return (out / "metrics.csv").read_bytes()


def first_difference(curve: Path, reference: Path) -> str:
    """Where ``curve`` first departs from ``reference``: 'iteration I, column: a vs b', or '' when equal."""
    a, b = pd.read_csv(curve), pd.read_csv(reference)
    for i in range(min(len(a), len(b))):
        for column in a.columns:
            x, y = a.at[i, column], b.at[i, column]
            if not (x == y or (pd.isna(x) and pd.isna(y))):
                return f"iteration {int(a.at[i, 'iteration'])}, {column}: {float(x)!r} vs {float(y)!r}"
    return "" if len(a) == len(b) else f"{len(a)} rows vs {len(b)}"


def prepare_digits(root: Path) -> None:
    subprocess.run([sys.executable, "pipelines/prepare.py", "dataset=digits", f"data_root={root}"], check=True,
                   capture_output=True)


def bench(golden: Path | None) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_cpu_pins_") as tmp:
        prepare_digits(Path(tmp, "data"))
        reference = Path(tmp, "0", "metrics.csv")
        for index, variant in enumerate(VARIANTS):
            out = Path(tmp, str(index))
            digest = hashlib.sha256(run_variant(variant, Path(tmp, "data"), out)).hexdigest()[:12]
            rows.append({"variant": variant.label, "reading": variant.reading, "sha256": digest,
                         "first_difference": first_difference(out / "metrics.csv", reference)})
        golden_equal = golden is not None and golden.read_bytes() == reference.read_bytes()
    return {"rows": rows, "golden": str(golden) if golden else None, "golden_equal": golden_equal}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"| {r['variant']} | {r['sha256']} | {r['first_difference'] or 'equal to pinned'} | {r['reading']} |"
             for r in result["rows"]]
    golden = (f"The pinned run's `metrics.csv` is {'byte for byte' if result['golden_equal'] else 'NOT'} the golden "
              f"curve `{result['golden']}`." if result["golden"] else "")
    return "\n".join([
        "# Why each pin is needed (generated)", "",
        f"{written_by('python -m superconv.bench cpu_pins')}. The tiny digits run (`experiment=tiny_digits_lenet`, "
        "seed 0, 2 threads unless told), each variant as its own train stage process. Do not edit: re-run.", "",
        "| variant | metrics.csv sha256 | first difference from the pinned curve | reading |", "|---|---|---|---|",
        *lines, "", golden, ""])


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        child([d for d in argv[1].split(",") if d], argv[3:])
        return None
    parser = argparse.ArgumentParser(prog="python -m superconv.bench cpu_pins", description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=Path, default=Path("tests/golden/tiny_digits_one_cycle_metrics.csv"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    try:
        result = bench(args.golden if args.golden.is_file() else None)
    except RuntimeError as err:
        sys.exit(f"error: {err}")
    write_json(args.out.with_suffix(".json"), result)
    text = markdown(result)
    atomic_write(args.out, lambda p: p.write_text(text))
    print(text)
    return result


if __name__ == "__main__":
    main()
