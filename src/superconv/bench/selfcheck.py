"""``python -m superconv.bench selfcheck``: one command for a user's first minutes on a CUDA machine.

It reports the environment (python, torch, CUDA, cuDNN, NCCL, GPUs and their memory, CPUs, package versions) and
runs these checks, each ``passed``, ``failed`` or ``skipped`` with its reason, into ``selfcheck.json`` and
``selfcheck.md`` under ``--out`` (the markdown is printed too; the exit code is 1 when any check failed):

- ``cuda_device``: torch sees a GPU; failed when the machine has an NVIDIA device that torch cannot use.
- ``train_<model>_<precision>_<mode>``: every ``conf/model/`` model (composed from ``conf/`` as the stages compose
  it) memorises one small synthetic batch of its input shape through our loop (``stages.training``: the stages'
  model and optimizer build, ``core.loop.run_loop``, ``classification_step``, ``held_out``, the divergence guard) in
  fp32, bf16 and fp16 (with
  the GradScaler), each eager and compiled with ``torch.compile``; passed when every loss is finite and the last
  iterations' mean is below the first ones'.
- ``ours_vs_bare``: our loop against the bare PyTorch loop of ``bench compare`` (``bench.common.run_bare``);
  ``data_vs_step``: ``DeviceData.batch`` time against ``sgd_step`` time as ``bench loader`` times it
  (``bench.common.time_data_and_step``). Ratios only: no time is asserted.
- ``ddp_nccl``: two spawned ranks train through ``core.distributed.process_group`` / ``wrap_for_ddp`` over NCCL and
  end with identical weights (2+ GPUs).
- ``mlflow_system_metrics``: a run in a temporary SQLite store, opened with ``common.tracking.tracked_run`` and
  system metrics sampled every second, receives ``system/gpu_*`` metrics.

Without CUDA the fp32 and bf16 eager runs, ``ours_vs_bare`` and ``data_vs_step`` run on the CPU at tiny shapes and
every CUDA-only check is skipped with its reason, so CI runs it.

Packages: beyond torch and what torch imports itself, a run imports only ``REQUIRED`` (top-level module:
distribution): omegaconf, hydra-core, antlr4-python3-runtime, PyYAML, packaging and tqdm (pure Python, but for
PyYAML's optional C extension). ``OPTIONAL`` ones are imported only when installed: attrs (omegaconf's), the
``hydra_plugins`` namespace (when a Hydra plugin is installed), torchvision and pillow (the ResNet-50 checks, skipped
without torchvision), mlflow with its own dependencies and nvidia-ml-py (the MLflow check, on CUDA only).
``tests/integration/test_selfcheck.py`` holds a CPU run to these lists. So of the stages it reuses only the two
modules that pull in nothing more, ``stages.compose`` and ``stages.training`` (``bench.loop``, ``bench.loader`` and
the other stages import pandas, matplotlib or pydantic).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from superconv.bench.common import (
    device_name,
    interleaved,
    median,
    positive_int,
    run_bare,
    split_names,
    synchronize,
    synthetic_split,
    time_data_and_step,
)
from superconv.common.io import atomic_write, write_json
from superconv.common.tracking import Tracker, tracked_run
from superconv.core.data.augment import Augment
from superconv.core.data.loader import DeviceData
from superconv.core.distributed import process_group
from superconv.core.engine import (
    Trainable,
    resolve_device,
    seed_everything,
)
from superconv.core.loop import LoopResult
from superconv.core.schedules import build_schedule
from superconv.stages.compose import compose_stage_config
from superconv.stages.training import composed, train_loop, trainable

# What the self-check imports beyond torch and what torch imports itself, as top-level module -> distribution (None:
# a namespace); tests/integration/test_selfcheck.py holds a CPU run to it.
REQUIRED = {"omegaconf": "omegaconf", "hydra": "hydra-core", "antlr4": "antlr4-python3-runtime", "yaml": "PyYAML",
            "packaging": "packaging", "tqdm": "tqdm"}
OPTIONAL = {  # imported only when installed
    "attr": "attrs",  # omegaconf uses it when present
    "hydra_plugins": None,  # Hydra scans this namespace when a Hydra plugin (e.g. hydra-submitit-launcher) is installed
    "torchvision": "torchvision", "PIL": "pillow",  # ResNet-50 is torchvision's (and torchvision imports pillow)
    "mlflow": "mlflow", "pynvml": "nvidia-ml-py",  # the MLflow check, on CUDA (mlflow with its own dependencies)
}

OUT_DIR = Path("outputs/selfcheck")
PRECISIONS = {"fp32": None, "bf16": "bf16", "fp16": "fp16"}  # name -> trainer.amp
MODES = ("eager", "compile")
NO_CUDA = "no CUDA device"


@dataclass(frozen=True)
class ModelCase:
    """A ``conf/model/`` model on ``dataset``: at the dataset's shape on CUDA (or ``gpu_image_size``), at
    ``cpu_image_size`` on the CPU, memorising one batch at a constant ``lr`` (momentum 0.9)."""

    name: str
    group: str
    dataset: str
    overrides: tuple[str, ...] = ()
    cpu_image_size: int | None = None  # None: the dataset's
    gpu_image_size: int | None = None
    cpu_batch: int = 8
    gpu_batch: int = 32
    lr: float = 0.02


CASES = {case.name: case for case in (
    ModelCase("lenet", "lenet", "mnist"),
    ModelCase("cifar_resnet20", "cifar_resnet", "cifar10", ("model.depth=20",), cpu_image_size=8),
    ModelCase("wide_resnet32", "wide_resnet32", "cifar10", cpu_image_size=8),
    ModelCase("densenet40", "densenet40", "cifar10", cpu_image_size=8),
    ModelCase("resnet50", "resnet50", "imagenette", cpu_image_size=32, gpu_image_size=224, cpu_batch=4, lr=0.002),
)}
TIMED_CASE = "cifar_resnet20"  # ours_vs_bare, data_vs_step and ddp_nccl: bench compare's and bench loader's model


@dataclass
class Check:
    """One check's outcome, as selfcheck.json lists it."""

    name: str
    status: str  # passed | failed | skipped
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def passed(name: str, reason: str, **figures: Any) -> Check:
    return Check(name, "passed", reason, figures)


def failed(name: str, reason: str, **figures: Any) -> Check:
    return Check(name, "failed", reason, figures)


def skipped(name: str, reason: str) -> Check:
    return Check(name, "skipped", reason)


# ------------------------------------------------------------------------------------------------ our loop
def case_config(case: ModelCase, device: torch.device, iterations: int, amp: str | None = None,
                compile_model: bool = False, extra: tuple[str, ...] = ()) -> DictConfig:
    """The train config of ``case`` on ``device``: ``iterations`` at a constant LR, one evaluation at the end, no
    checkpoints, no tracking, no progress bar."""
    cuda = device.type == "cuda"
    size = case.gpu_image_size if cuda else case.cpu_image_size
    return compose_stage_config("train", [
        f"model={case.group}", f"dataset={case.dataset}", *case.overrides,
        *([f"dataset.image_size={size}"] if size else []), "schedule=constant",
        f"++recipe.constant={{unit: iteration, length: {iterations}, base_lr: {case.lr}, momentum: 0.9}}",
        f"trainer.total_batch={case.gpu_batch if cuda else case.cpu_batch}", f"trainer.max_iterations={iterations}",
        f"trainer.eval_every={iterations}", "trainer.checkpoint_every=0", "trainer.progress=false",
        f"trainer.device={device.type}", f"trainer.amp={amp or 'null'}",
        f"trainer.compile={str(compile_model).lower()}", "tracking.enabled=false", *extra])


def synthetic_device_data(cfg: DictConfig, device: torch.device, images: int) -> DeviceData:
    """``images`` random images of the config's dataset shape, normalised, laid out and augmented as
    ``stages.common.device_data`` builds the training split."""
    ds = cfg.dataset
    split = synthetic_split(images, int(cfg.seed), ds.image_size, ds.num_classes, ds.channels)
    return DeviceData(split, device, input_scale=ds.input_scale, mean=ds.mean, std=ds.std, seed=cfg.seed,
                      channels_last=cfg.trainer.channels_last, augment=Augment.from_config(cfg.augment))


@dataclass(frozen=True)
class Run:
    """A finished run of our loop, with its trainable (the DDP check reads the wrapper and the weights)."""

    result: LoopResult
    seconds: float  # model build + loop, evaluation excluded (bench compare's "ours")
    trainable: Trainable


def train_run(cfg: DictConfig, data: DeviceData, tracker: Tracker | None = None) -> Run:
    """A training run as the train stage runs it (``stages.training``: the trainable at the schedule's first
    lr/momentum, then ``train_loop``), on ``data`` for training and the evaluation at the last iteration."""
    schedule = build_schedule(cfg.schedule, len(data) / cfg.trainer.total_batch)
    seed_everything(int(cfg.seed))
    synchronize(data.device)
    start = time.perf_counter()
    stepped = trainable(*composed(cfg), data.device, schedule.lr_at(0), schedule.momentum_at(0))
    result = train_loop(stepped, cfg.trainer, schedule, data, data, tracker or Tracker())
    synchronize(data.device)
    return Run(result, time.perf_counter() - start - result.eval_s, stepped)


def loss_falls(name: str, losses: list[float], stop_reason: str | None, iterations: int, **figures: Any) -> Check:
    """Passed when a run did all its iterations with finite losses, the mean of the last few below the first few."""
    k = max(1, min(3, len(losses) // 3))
    first, last = statistics.fmean(losses[:k]), statistics.fmean(losses[-k:])
    figures = {**figures, "iterations": len(losses), "first_loss": round(first, 4), "last_loss": round(last, 4),
               "losses": [round(v, 4) for v in losses]}
    if stop_reason:
        return failed(name, f"stopped: {stop_reason}", **figures)
    if len(losses) != iterations or not all(math.isfinite(v) for v in losses):
        return failed(name, f"{len(losses)} of {iterations} iterations, losses {losses}", **figures)
    if last >= first:
        return failed(name, f"loss did not fall: mean of the first {k} {first:.4g}, of the last {k} {last:.4g}",
                      **figures)
    return passed(name, f"loss {first:.3g} -> {last:.3g} (means of the first and last {k})", **figures)


# --------------------------------------------------------------------------------------------------- checks
def check_cuda(device: torch.device) -> Check:
    """A GPU the driver shows but torch cannot use is the one failure a CPU-only self-check would hide."""
    if device.type == "cuda":
        return passed("cuda_device", f"{torch.cuda.device_count()} GPU(s)", gpus=torch.cuda.device_count())
    build = f"torch {torch.__version__} built for CUDA {torch.version.cuda}" if torch.version.cuda else \
        f"torch {torch.__version__} is a CPU-only build"
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None:
        return skipped("cuda_device", f"CUDA_VISIBLE_DEVICES={hidden!r} hides the GPUs ({build}): the CUDA checks "
                                      "are skipped")
    if Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi"):
        return failed("cuda_device", f"an NVIDIA driver is present but torch sees no GPU ({build}): match the "
                                     "torch wheel's CUDA to the driver (nvidia-smi)")
    return skipped("cuda_device", f"{NO_CUDA} on this machine ({build}): the CUDA checks are skipped")


def train_check(case: ModelCase, precision: str, mode: str, device: torch.device, iterations: int) -> Check:
    name = f"train_{case.name}_{precision}_{mode}"
    if device.type != "cuda" and (precision == "fp16" or mode == "compile"):
        what = "fp16 autocast with a GradScaler" if precision == "fp16" else "torch.compile"
        return skipped(name, f"{NO_CUDA}: {what} is checked on CUDA only")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return skipped(name, f"{torch.cuda.get_device_name(device)} has no bf16 support")
    if case.group == "resnet50" and importlib.util.find_spec("torchvision") is None:
        return skipped(name, "torchvision missing: ResNet-50 is torchvision's (pip install torchvision for this torch)")
    cfg = case_config(case, device, iterations, PRECISIONS[precision], mode == "compile")
    data = synthetic_device_data(cfg, device, int(cfg.trainer.total_batch))  # one batch, seen every iteration
    run = train_run(cfg, data)
    return loss_falls(name, [row["train_loss"] for row in run.result.rows], run.result.stop_reason, iterations,
                      batch=int(cfg.trainer.total_batch), image_size=int(cfg.dataset.image_size),
                      seconds=round(run.seconds, 3))


def ours_vs_bare(device: torch.device, iterations: int, repeats: int) -> Check:
    """Images/s of our loop (tracking off) over the bare loop's, medians of paired interleaved repeats."""
    cfg = case_config(CASES[TIMED_CASE], device, iterations)
    data = synthetic_device_data(cfg, device, 4 * int(cfg.trainer.total_batch))
    schedule = build_schedule(cfg.schedule, len(data) / cfg.trainer.total_batch)
    runners: dict[str, Callable[[], float]] = {"ours": lambda: train_run(cfg, data).seconds,
                                               "bare": lambda: run_bare(cfg, data, iterations, schedule)["seconds"]}
    seconds = interleaved(runners, repeats)
    images = iterations * int(cfg.trainer.total_batch)
    ratio = median([b / o for o, b in zip(seconds["ours"], seconds["bare"], strict=True)])
    return passed("ours_vs_bare", f"ours/bare images/s {ratio:.3f} (a figure, not asserted; bench compare's "
                                  "target is >= 0.95 at real lengths)", ours_over_bare=round(ratio, 4),
                  ours_images_per_s=round(images / median(seconds["ours"]), 1),
                  bare_images_per_s=round(images / median(seconds["bare"]), 1), model=TIMED_CASE,
                  iterations=iterations, repeats=repeats)


def data_vs_step(device: torch.device, iterations: int) -> Check:
    """Our crop+flip batches' time against the step's, as ``bench loader`` times them."""
    cfg = case_config(CASES[TIMED_CASE], device, iterations, extra=("augment=crop_flip",))
    batch = int(cfg.trainer.total_batch)
    data = synthetic_device_data(cfg, device, 4 * batch)
    timing = time_data_and_step(partial(data.batch, total_batch=batch), cfg, device, iterations, warmup=1)
    return passed("data_vs_step", f"data {timing['data_percent_of_step']:.2f} % of step time (a figure, not "
                                  "asserted; bench loader's target is < 5 %)",
                  **{k: round(v, 4) for k, v in timing.items()}, model=TIMED_CASE, augment="crop_flip")


def _ddp_rank(rank: int, world: int, port: int, device_type: str, iterations: int, out: str) -> None:
    """One spawned rank: torchrun's environment, the stage's process group, our loop on this rank's share."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    device = resolve_device(device_type)
    with process_group(device):  # NCCL on CUDA, gloo on the CPU
        cfg = case_config(CASES[TIMED_CASE], device, iterations)
        run = train_run(cfg, synthetic_device_data(cfg, device, int(cfg.trainer.total_batch)))
        weights = torch.stack([p.detach().double().sum() for p in run.trainable.model.parameters()]).sum()
        gathered = [torch.zeros_like(weights) for _ in range(world)]
        dist.all_gather(gathered, weights)
        if rank == 0:
            Path(out).write_text(json.dumps({
                "losses": [row["train_loss"] for row in run.result.rows], "stop_reason": run.result.stop_reason,
                "seconds": run.seconds, "wrapped": isinstance(run.trainable.step_model, DistributedDataParallel),
                "weight_sums": [float(w) for w in gathered]}))


def ddp_run(device_type: str, iterations: int, world: int = 2) -> dict[str, Any]:
    """``world`` spawned ranks train the timed case under DDP; rank 0's losses, wrapper and every rank's weight sum."""
    import torch.multiprocessing as mp

    with socket.socket() as sock:  # a free port for the ranks' rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="superconv-selfcheck-") as tmp:
        out = Path(tmp, "rank0.json")
        mp.spawn(_ddp_rank, args=(world, port, device_type, iterations, str(out)), nprocs=world)
        return json.loads(out.read_text())


def ddp_nccl(device: torch.device, iterations: int) -> Check:
    """Two ranks over NCCL: the loss falls, the step model is DDP, and the ranks end with the same weights."""
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    if gpus < 2:
        return skipped("ddp_nccl", f"needs 2+ CUDA GPUs, found {gpus}")
    import torch.distributed as dist

    if not dist.is_nccl_available():
        return failed("ddp_nccl", f"torch {torch.__version__} has no NCCL backend")
    found = ddp_run("cuda", iterations)
    check = loss_falls("ddp_nccl", found["losses"], found["stop_reason"], iterations, ranks=2, model=TIMED_CASE,
                       seconds=round(found["seconds"], 3), weight_sums=found["weight_sums"])
    if not found["wrapped"]:
        return failed("ddp_nccl", "the step model is not DistributedDataParallel", **check.figures)
    if len(set(found["weight_sums"])) != 1:
        return failed("ddp_nccl", "the ranks' weights differ after training", **check.figures)
    return check


def tracked_metrics(cfg: DictConfig, data: DeviceData, seconds: float) -> dict[str, float]:
    """The last value of every metric of a run (``tracked_run`` on a temporary SQLite store, system metrics sampled
    every second) in which our loop trains on ``data`` for at least ``seconds``."""
    import mlflow

    mlflow.set_system_metrics_sampling_interval(1)
    mlflow.set_system_metrics_samples_before_logging(1)
    try:
        with tempfile.TemporaryDirectory(prefix="superconv-selfcheck-") as tmp:
            tracking = {"stage": "selfcheck", "tracking": {
                "enabled": True, "uri": f"sqlite:///{tmp}/mlflow.db", "experiment": "superconv-selfcheck",
                "system_metrics": True}}
            with tracked_run(tracking, "selfcheck", "selfcheck", {}) as tracker:
                start = time.perf_counter()
                while time.perf_counter() - start < seconds:
                    train_run(cfg, data, tracker)
            return tracker.client.get_run(tracker.run_id).data.metrics
    finally:
        mlflow.set_system_metrics_sampling_interval(None)
        mlflow.set_system_metrics_samples_before_logging(None)


def mlflow_system_metrics(device: torch.device, iterations: int, seconds: float) -> Check:
    """A tracked run with system metrics on, as the study's runs are, receives the GPU's metrics."""
    name = "mlflow_system_metrics"
    missing = [why for absent, why in (
        (device.type != "cuda", f"{NO_CUDA}: MLflow logs GPU metrics from a GPU"),
        (importlib.util.find_spec("mlflow") is None, "MLflow not installed: tracking off"),
        (importlib.util.find_spec("pynvml") is None,
         "nvidia-ml-py missing: pip install superconv[gpu] (or nvidia-ml-py)")) if absent]
    if missing:
        return skipped(name, "; ".join(missing))
    cfg = case_config(CASES["lenet"], device, iterations)
    metrics = tracked_metrics(cfg, synthetic_device_data(cfg, device, int(cfg.trainer.total_batch)), seconds)
    gpu = sorted(key for key in metrics if key.startswith("system/gpu_"))
    figures = {"gpu_metrics": gpu, "train_loss_logged": "train_loss" in metrics, "seconds": round(seconds, 1)}
    if not gpu:
        return failed(name, f"no system/gpu_* metric after {seconds:.0f} s (logged: {sorted(metrics)})", **figures)
    return passed(name, f"{len(gpu)} system/gpu_* metrics, e.g. {gpu[0]}", **figures)


def guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that raises fails with the error as its reason; the other checks still run."""
    try:
        return check()
    except Exception as err:  # any error is this check's finding
        return failed(name, f"{type(err).__name__}: {' '.join(str(err).split())[:500]}")


# ------------------------------------------------------------------------------------------------- the report
def _distribution_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict[str, Any]:
    import torch.distributed as dist

    gpus = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())] \
        if device.type == "cuda" else []
    nccl = dist.is_available() and dist.is_nccl_available()
    return {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
        else None, "nccl": ".".join(map(str, torch.cuda.nccl.version())) if nccl else None,
        "gpus": [{"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)} for p in gpus],
        "cpu": device_name(torch.device("cpu")), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "packages": {name: _distribution_version(name) for name in {**REQUIRED, **OPTIONAL}.values() if name},
    }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def markdown(report: dict[str, Any]) -> str:
    env = report["environment"]
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in env["gpus"]) or "none"
    packages = ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) or "none"
    rows = [("python", env["python"]), ("torch", env["torch"]), ("CUDA", env["cuda"]), ("cuDNN", env["cudnn"]),
            ("NCCL", env["nccl"]), ("GPUs", gpus), ("CPU", f"{env['cpu']}, {env['cpu_count']} cores, "
                                                          f"torch threads: {env['torch_threads']}"),
            ("packages", packages)]
    lines = ["# superconv self-check", "", "| environment | |", "|---|---|",
             *(f"| {k} | {_cell(v)} |" for k, v in rows), "",
             "| check | status | reason | figures |", "|---|---|---|---|"]
    for c in report["checks"]:
        figures = ", ".join(f"{k}={v}" for k, v in c["figures"].items() if not isinstance(v, list | dict))
        lines.append(f"| {c['name']} | {c['status']} | {_cell(c['reason'])} | {_cell(figures)} |")
    counts = {s: sum(c["status"] == s for c in report["checks"]) for s in ("passed", "failed", "skipped")}
    lines += ["", ", ".join(f"{n} {s}" for s, n in counts.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench selfcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory of selfcheck.json and selfcheck.md")
    parser.add_argument("--iterations", type=positive_int, default=10, help="iterations of every run (at least 2)")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated, of: fp32, bf16, fp16")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of: eager, compile")
    parser.add_argument("--repeats", type=positive_int, default=3, help="interleaved repeats of ours_vs_bare")
    parser.add_argument("--mlflow-seconds", type=float, default=5.0, help="training time of the MLflow check")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads (1: a CPU run beside other work stalls less than with 2)")
    args = parser.parse_args(argv)
    try:
        models = split_names(args.models, CASES, "model")
        precisions = split_names(args.precisions, PRECISIONS, "precision")
        modes = split_names(args.modes, dict.fromkeys(MODES), "mode")
    except ValueError as err:
        parser.error(str(err))
    if args.iterations < 2:
        parser.error("--iterations must be >= 2 (the loss's first and last iterations are compared)")
    device = resolve_device("auto")
    torch.set_num_threads(args.threads)
    planned: list[tuple[str, Callable[[], Check]]] = [("cuda_device", partial(check_cuda, device))]
    planned += [(f"train_{m}_{p}_{mode}", partial(train_check, CASES[m], p, mode, device, args.iterations))
                for m in models for p in precisions for mode in modes]
    planned += [("ours_vs_bare", partial(ours_vs_bare, device, args.iterations, args.repeats)),
                ("data_vs_step", partial(data_vs_step, device, args.iterations)),
                ("ddp_nccl", partial(ddp_nccl, device, args.iterations)),
                ("mlflow_system_metrics", partial(mlflow_system_metrics, device, args.iterations, args.mlflow_seconds))]
    checks = []
    for name, check in planned:
        start = time.perf_counter()
        checks.append(guarded(name, check))
        print(f"selfcheck: {name} {checks[-1].status} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    report = {"device": str(device), "environment": environment(device), "checks": [asdict(c) for c in checks]}
    write_json(args.out / "selfcheck.json", report)
    text = markdown(report)
    atomic_write(args.out / "selfcheck.md", lambda path: path.write_text(text))
    print(text + f"-> {args.out / 'selfcheck.json'}, {args.out / 'selfcheck.md'}")
    if any(c.status == "failed" for c in checks):
        raise SystemExit(1)
    return report


if __name__ == "__main__":
    main()
