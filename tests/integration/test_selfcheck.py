"""The GPU self-check without CUDA (as CI runs it; CUDA_VISIBLE_DEVICES hides any GPU): every CUDA-only check skipped
with its reason, the CPU runs passed with a finite, falling loss, both reports written, and nothing imported beyond what
torch imports itself and the packages ``superconv.bench.selfcheck`` documents."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from superconv.bench import selfcheck

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 4
CPU_RUNS = {("fp32", "eager"), ("bf16", "eager")}

# `python -m superconv.bench selfcheck ARGS`, then the third-party top-level modules the process holds.
RUN = """
import json, runpy, sys
sys.argv = ["superconv.bench", "selfcheck", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("superconv.bench", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
modules = {name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
print(json.dumps({"exit": code, "modules": sorted(modules)}))
"""
# What torch imports itself when a program trains with it (torch.optim loads torch._dynamo, which loads sympy...).
TORCH_ALONE = """
import json, sys
import torch, torch.distributed, torch.multiprocessing
model = torch.nn.Linear(2, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
with torch.autocast("cpu", dtype=torch.bfloat16):
    loss = model(torch.randn(4, 2)).float().sum()
loss.backward()
optimizer.step()
print(json.dumps(sorted({n.split(".")[0] for n in sys.modules} - set(sys.stdlib_module_names))))
"""


def _python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("selfcheck")
    proc = _python(RUN, "--out", str(out), "--iterations", str(ITERATIONS), "--repeats", "1", cwd=out)
    printed, last = proc.stdout.rstrip("\n").rsplit("\n", 1)
    found = json.loads(last)
    return {"out": out, "printed": printed, "exit": found["exit"], "modules": set(found["modules"]),
            "report": json.loads((out / "selfcheck.json").read_text()), "stderr": proc.stderr}


def test_cuda_checks_are_skipped_with_a_reason_and_cpu_runs_pass_with_a_falling_loss(run: dict[str, Any]) -> None:
    assert run["exit"] == 0, run["stderr"][-3000:]
    checks = {c["name"]: c for c in run["report"]["checks"]}
    trains = list(itertools.product(selfcheck.CASES, selfcheck.PRECISIONS, selfcheck.MODES))
    assert list(checks) == ["cuda_device", *(f"train_{m}_{p}_{mode}" for m, p, mode in trains), "ours_vs_bare",
                            "data_vs_step", "ddp_nccl", "mlflow_system_metrics"]
    for model, precision, mode in trains:
        check = checks[f"train_{model}_{precision}_{mode}"]
        if (precision, mode) in CPU_RUNS:
            assert check["status"] == "passed", check
            losses = check["figures"]["losses"]
            assert len(losses) == ITERATIONS and all(math.isfinite(v) for v in losses)
            assert check["figures"]["last_loss"] < check["figures"]["first_loss"]
        else:
            assert check["status"] == "skipped" and "no CUDA device" in check["reason"], check
    for name in ("cuda_device", "ddp_nccl", "mlflow_system_metrics"):
        assert checks[name]["status"] == "skipped" and checks[name]["reason"], checks[name]
    assert checks["ddp_nccl"]["reason"] == "needs 2+ CUDA GPUs, found 0"
    assert "no CUDA device" in checks["mlflow_system_metrics"]["reason"]
    assert checks["ours_vs_bare"]["status"] == "passed" and checks["ours_vs_bare"]["figures"]["ours_over_bare"] > 0
    assert checks["data_vs_step"]["status"] == "passed" and checks["data_vs_step"]["figures"]["step_ms"] > 0
    env = run["report"]["environment"]
    assert env["torch"] == torch.__version__ and env["gpus"] == [] and env["cpu_count"] > 0
    assert set(env["packages"]) >= set(selfcheck.REQUIRED.values())


def test_the_markdown_lists_every_check_and_is_printed(run: dict[str, Any]) -> None:
    markdown = (run["out"] / "selfcheck.md").read_text()
    for check in run["report"]["checks"]:
        assert f"| {check['name']} | {check['status']} |" in markdown
    assert markdown.strip() in run["printed"]


def test_it_imports_only_what_torch_imports_and_the_documented_packages(run: dict[str, Any], tmp_path: Path) -> None:
    torch_alone = set(json.loads(_python(TORCH_ALONE, cwd=tmp_path).stdout))
    documented = set(selfcheck.REQUIRED) | set(selfcheck.OPTIONAL)
    runtime = {"__main__", "__mp_main__", "superconv"} | {m for m in run["modules"] if m.startswith("_cython_")}
    assert run["modules"] - torch_alone - documented - runtime == set()
    assert set(selfcheck.REQUIRED) <= run["modules"]  # every required one is needed


def test_every_conf_model_has_a_case() -> None:
    groups = {path.stem for path in (ROOT / "conf" / "model").glob("*.yaml")}
    assert {case.group for case in selfcheck.CASES.values()} == groups


@pytest.mark.parametrize(("argv", "named"), [(["--models", "vgg16"], "'vgg16'"), (["--precisions", "fp8"], "'fp8'"),
                                             (["--iterations", "1"], "--iterations must be >= 2")])
def test_a_bad_argument_is_an_error_that_names_it(argv: list[str], named: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        selfcheck.main(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_the_mlflow_check_run_receives_system_and_loop_metrics() -> None:
    """The MLflow check's run on the CPU: the same store, monitor and loop, with the CPU's system metrics (the GPU's
    need CUDA and nvidia-ml-py)."""
    pytest.importorskip("mlflow")
    device = torch.device("cpu")
    cfg = selfcheck.case_config(selfcheck.CASES["lenet"], device, ITERATIONS)
    metrics = selfcheck.tracked_metrics(cfg, selfcheck.synthetic_device_data(cfg, device, 8), seconds=2.0)
    assert "system/cpu_utilization_percentage" in metrics
    assert {"train_loss", "lr", "test_loss"} <= set(metrics)
