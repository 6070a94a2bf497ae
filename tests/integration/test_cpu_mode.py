"""The pinned CPU mode: the same curve bit for bit when the process is limited below this CPU's ISA, and the
golden curve itself; without the pins, a lower ISA changes the bits."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import ROOT, TINY, run_cli

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tiny_digits_one_cycle_metrics.csv"
# Limits below an AVX-512 CPU that the pinned mode does not set itself: MKL's instructions and glibc's
# CPU-specific libm variants; and a user's lower ATen/oneDNN choice, which the pin overrides.
LOWER_ISA = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
             "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX512DQ,-AVX512BW,-AVX512VL,-AVX512CD"}


def _train(out: Path, data_root: Path, env: dict[str, str], *extra: str) -> bytes:
    run_cli(["python", "pipelines/train.py", *TINY, "tracking.enabled=false", f"data_root={data_root}",
             f"out={out}", *extra], cwd=ROOT, env=env)
    return (out / "metrics.csv").read_bytes()


def test_pinned_curves_do_not_depend_on_the_isa(tmp_path, data_root) -> None:
    """The golden curve, which test_golden_curves.py makes at this CPU's own ISA, from a process limited below it."""
    lowered = _train(tmp_path / "b", data_root, LOWER_ISA)
    assert lowered == GOLDEN.read_bytes()
    facts = (tmp_path / "b" / "provenance.json").read_text()
    assert '"aten_capability": "AVX2"' in facts and '"mkldnn": "false"' in facts


def test_native_mode_changes_with_the_isa(tmp_path, data_root) -> None:
    native = _train(tmp_path / "a", data_root, {"ATEN_CPU_CAPABILITY": "avx2"}, "trainer.cpu_mode=native")
    lowered = _train(tmp_path / "b", data_root, {"ATEN_CPU_CAPABILITY": "default"}, "trainer.cpu_mode=native")
    assert native != lowered


def test_the_pins_bench_undoes_exactly_the_pin_a_variant_names(tmp_path, data_root) -> None:
    """`python -m superconv.bench cpu_pins` drops one pin after the stage sets it: the run records MKL's own dispatch
    and nothing else unpinned, and its curve is not the golden one."""
    from superconv.bench.cpu_pins import VARIANTS, run_variant

    variant = next(v for v in VARIANTS if v.drop == ("MKL_CBWR",))
    curve = run_variant(variant, data_root, tmp_path / "run")
    facts = json.loads((tmp_path / "run" / "provenance.json").read_text())["cpu"]
    assert facts["mkl_cbwr"] == "auto" and facts["mkldnn"] == "false" and facts["aten_capability"] == "AVX2"
    assert curve != GOLDEN.read_bytes()
