"""Training-step benchmark: our training loop against a bare PyTorch loop, and images/s + FLOPs per model.

``python -m superconv.bench [compare]`` times the real ``training.train`` loop (MLflow tracking on a real SQLite
store, tqdm bar on, a preset's schedule, evaluation and checkpoints effectively off) against a plain
``for x, y in batches: loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()`` on the
same model, DeviceData batches, total batch, channels_last setting and thread count, and ours with tracking off
for the MLflow overhead. Variants alternate within each repeat and medians are kept.

``python -m superconv.bench throughput`` measures training images/s (and evaluation images/s) of every model in
``conf/model/`` at its dataset's shape, counts FLOPs per image with ``torch.utils.flop_counter`` and states the
compute-bound floor against the device's peak (``superconv.gpu_budget.PEAKS``, or ``--peak-tflops``).

``python -m superconv.bench budget`` is ``python -m superconv.gpu_budget``: device-hours per experiment preset.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, open_dict
from torch.utils.flop_counter import FlopCounterMode

from superconv.bench_range_test import synthetic_split
from superconv.config import compose_stage_config, iterations_per_epoch
from superconv.data.prepared import Prepared
from superconv.engine import AMP_DTYPES, Precision, place_model, resolve_device, seed_everything, sgd_step
from superconv.io import write_json
from superconv.models import build_model, count_parameters
from superconv.schedules import build_schedule
from superconv.stages import _device_data
from superconv.tracking import Tracker, tracked_run
from superconv.training import train

RESULTS_DIR = Path("outputs/bench")
BENCH_EXPERIMENT = "superconv-bench"  # MLflow experiment of the benchmark's runs (never the study's)


# --------------------------------------------------------------------------------------------------- helpers
def synchronize(device: torch.device) -> None:
    """Wait for queued device work (a no-op on the CPU), so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's marketing name (the key of the peak table), or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU {line.split(':', 1)[1].strip()}"
    return f"CPU {platform.processor() or platform.machine()}"


def check_amp(amp: str | None) -> str | None:
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f"--amp {amp!r} is not a precision; allowed: {', '.join(AMP_DTYPES)} (or leave it out: fp32)")
    return amp


def positive_int(text: str) -> int:
    """argparse type: an integer > 0, else an error that names the value."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be > 0")
    return value


def split_names(text: str, known: Mapping[str, Any], what: str) -> list[str]:
    """Comma-separated names, each checked against ``known`` (the error names the bad one)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    if not names:
        raise ValueError(f"no {what} given; known: {', '.join(known)}")
    return names


def _median(values: list[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------------------------------- compare
@dataclass(frozen=True)
class Case:
    """One ours-vs-bare comparison: a preset composed with ``overrides``, at ``batch`` for ``iterations``."""

    name: str
    overrides: tuple[str, ...]
    batch: int
    iterations: int
    train_images: int = 4096


CASES = {
    "lenet_mnist": Case("lenet_mnist", ("experiment=paper_mnist_lenet",), batch=512, iterations=20),
    "resnet20_cifar10": Case("resnet20_cifar10", ("experiment=paper_cifar10_resnet56_1cycle", "model.depth=20"),
                             batch=128, iterations=10),
}
VARIANTS = ("bare", "ours_tracked", "ours_untracked")


def case_config(case: Case, iterations: int, batch: int, threads: int, device: str, amp: str | None,
                tracking_uri: str, system_metrics: bool = True) -> DictConfig:
    """The preset's training config with the loop settings of the benchmark (the preset's schedule, capped)."""
    return compose_stage_config("train", [
        *case.overrides, f"trainer.total_batch={batch}", f"trainer.max_iterations={iterations}",
        f"trainer.eval_every={iterations}", "trainer.checkpoint_every=0", "trainer.progress=true",
        f"trainer.device={device}", f"trainer.threads={threads}", f"trainer.amp={amp or 'null'}",
        "tracking.enabled=true", f"tracking.uri={tracking_uri}", f"tracking.experiment={BENCH_EXPERIMENT}",
        f"tracking.system_metrics={str(system_metrics).lower()}", "study=bench"])


def synthetic_data(cfg: DictConfig, train_images: int, test_images: int, device: torch.device) -> tuple[Any, Any]:
    """DeviceData of random uint8 images of the config's dataset shape, built as the train stage builds them."""
    ds = cfg.dataset
    train_split = synthetic_split(train_images, 0, ds.image_size, ds.num_classes, ds.channels)
    test_split = synthetic_split(test_images, 1, ds.image_size, ds.num_classes, ds.channels)
    return _device_data(cfg, Prepared(train_split, test_split, {}), device, cfg.seed)


class TimedTracker(Tracker):
    """A Tracker on the same client and run that adds up the seconds spent in its calls (the loop's MLflow cost)."""

    def __init__(self, inner: Tracker) -> None:
        super().__init__(inner.client, inner.run_id, inner._flush_every)
        self.seconds = 0.0
        self._depth = 0

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        self._depth += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.seconds += time.perf_counter() - start

    def log_metrics(self, metrics: Mapping[str, float | None], step: int) -> None:
        with self._timed():
            super().log_metrics(metrics, step)

    def flush(self, wait: bool = True) -> list[list[Any]]:
        with self._timed():
            return super().flush(wait)


@contextlib.contextmanager
def _progress_sink(show: bool) -> Iterator[None]:
    """The tqdm bar stays on (its cost is measured) but draws into /dev/null unless ``show``."""
    if show:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        yield


def run_ours(cfg: DictConfig, data: Any, test: Any, tracked: bool, workdir: Path, show_progress: bool = False
             ) -> dict[str, float]:
    """``training.train`` as the train stage runs it.

    seconds: the whole ``train()`` call less its evaluation: model and optimizer built, the loop, the final
    metrics flush to MLflow and the final checkpoint. (``TrainResult.wall_s``, which summary.json's images/s
    uses, counts the loop, its checkpoints and that final save but not the model build; it is kept as ``loop_s``.)"""
    seed_everything(cfg.seed, cfg.trainer.threads)
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    run_cfg = cfg.copy()
    with open_dict(run_cfg):
        run_cfg.tracking.enabled = tracked
    start = time.perf_counter()
    with _progress_sink(show_progress), tracked_run(run_cfg, "bench", "bench", {"superconv.bench": "true"}) as tracker:
        timed = TimedTracker(tracker)
        entered = time.perf_counter()
        result = train(run_cfg, data, test, schedule, timed, workdir / "checkpoint.pt")
        left = time.perf_counter()
    end = time.perf_counter()
    return {"seconds": left - entered - result.eval_s, "loop_s": result.wall_s - result.eval_s,
            "iterations": result.iterations, "tracking_call_s": timed.seconds,
            "run_open_close_s": (entered - start) + (end - left), "diverged": result.diverged is not None}


def bare_optimizer(cfg: DictConfig, model: torch.nn.Module, lr: float, momentum: float) -> torch.optim.Optimizer:
    """Plain ``torch.optim.SGD`` with the preset's momentum, weight decay and Nesterov flag."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=float(cfg.optimizer.weight_decay),
                           nesterov=bool(cfg.optimizer.nesterov))


def run_bare(cfg: DictConfig, data: Any, iterations: int) -> dict[str, float]:
    """The plain PyTorch loop over the same DeviceData batches (autocast only when ``trainer.amp`` asks);
    seconds include building the model and optimizer, as ours do."""
    seed_everything(cfg.seed, cfg.trainer.threads)
    device = data.device
    synchronize(device)
    start = time.perf_counter()
    model = place_model(build_model(cfg.model), device, cfg.trainer.channels_last)
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    opt = bare_optimizer(cfg, model, schedule.lr_at(0), schedule.momentum_at(0))
    amp = cfg.trainer.amp
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    batch = int(cfg.trainer.total_batch)
    model.train()
    for it in range(iterations):
        x, y = data.batch(it, batch)
        with torch.autocast(device.type, dtype=AMP_DTYPES.get(amp, torch.bfloat16), enabled=amp is not None):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    synchronize(device)
    return {"seconds": time.perf_counter() - start, "iterations": iterations}


def _with_iterations(cfg: DictConfig, iterations: int) -> DictConfig:
    short = cfg.copy()
    with open_dict(short):
        short.trainer.max_iterations = iterations
        short.trainer.eval_every = iterations
    return short


def compare_case(case: Case, *, iterations: int, batch: int, threads: int, device: torch.device, amp: str | None,
                 repeats: int, warmup_iterations: int, tracking_uri: str, workdir: Path,
                 system_metrics: bool = True, show_progress: bool = False) -> dict[str, Any]:
    """Median images/s of bare, ours tracked and ours untracked over interleaved repeats, and their ratios."""
    cfg = case_config(case, iterations, batch, threads, str(device), amp, tracking_uri, system_metrics)
    data, test = synthetic_data(cfg, max(case.train_images, batch), 16, device)
    runners: dict[str, Callable[[DictConfig], dict[str, float]]] = {
        "bare": lambda c: run_bare(c, data, int(c.trainer.max_iterations)),
        "ours_tracked": lambda c: run_ours(c, data, test, True, workdir, show_progress),
        "ours_untracked": lambda c: run_ours(c, data, test, False, workdir, show_progress),
    }
    warm = _with_iterations(cfg, warmup_iterations)
    for run in runners.values():  # allocator, kernels, MLflow store and experiment
        run(warm)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    for r in range(repeats):
        order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]  # rotate: no variant always first
        for name in order:
            samples[name].append(runners[name](cfg))
    ips = {name: [batch * s["iterations"] / s["seconds"] for s in runs] for name, runs in samples.items()}
    paired_ours = [o / b for o, b in zip(ips["ours_tracked"], ips["bare"], strict=True)]
    paired_untracked = [u / b for u, b in zip(ips["ours_untracked"], ips["bare"], strict=True)]
    paired_tracking = [t / u for t, u in zip(ips["ours_tracked"], ips["ours_untracked"], strict=True)]
    tracked = samples["ours_tracked"]
    return {
        "case": case.name, "overrides": list(case.overrides), "model": cfg.model._target_,
        "input_shape": [cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size],
        "schedule": cfg.schedule.policy, "iterations": iterations, "total_batch": batch,
        "log_every": cfg.trainer.log_every, "channels_last": cfg.trainer.channels_last, "amp": amp,
        "images_per_s": {name: _median(values) for name, values in ips.items()},
        "images_per_s_samples": ips,
        "ours_over_bare": _median(paired_ours),
        "ours_untracked_over_bare": _median(paired_untracked),
        "ours_over_bare_of_medians": _median(ips["ours_tracked"]) / _median(ips["bare"]),
        "mlflow_overhead": 1.0 - _median(paired_tracking),
        "mlflow_call_share": _median([s["tracking_call_s"] / s["seconds"] for s in tracked]),
        "mlflow_call_ms_per_iteration": _median([1e3 * s["tracking_call_s"] / s["iterations"] for s in tracked]),
        "ours_loop_only_over_bare": _median([batch * o["iterations"] / o["loop_s"] / b for o, b in
                                             zip(tracked, ips["bare"], strict=True)]),
        "mlflow_run_open_close_s": _median([s["run_open_close_s"] for s in tracked]),
        "diverged": any(s.get("diverged") for s in tracked + samples["ours_untracked"]),
    }


class TinyNet(torch.nn.Module):
    """Flatten + one linear layer: a step that costs next to nothing, so the loop's own cost shows."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(in_channels * image_size * image_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def loop_overhead(case: Case, *, iterations: int, threads: int, device: torch.device, repeats: int,
                  tracking_uri: str, workdir: Path, system_metrics: bool = True) -> dict[str, float]:
    """Per-iteration cost of our loop itself (schedule, bookkeeping, flushes, tqdm, MLflow), step excluded:
    ours minus bare on TinyNet at batch 1, medians of interleaved repeats, in microseconds. A small constant LR
    and no divergence guard keep every run at ``iterations`` (a batch-1 loss can spike past the guard)."""
    case = Case(case.name, (*case.overrides, "schedule=constant", "trainer.divergence_factor=null",
                            f"++recipe.constant={{unit: iteration, length: {iterations}, base_lr: 1.0e-4, "
                            "momentum: 0.9}"), 1, iterations)
    cfg = case_config(case, iterations, 1, threads, str(device), None, tracking_uri, system_metrics)
    with open_dict(cfg):
        cfg.model = {"_target_": f"{__name__}.TinyNet", "in_channels": cfg.dataset.channels,
                     "image_size": cfg.dataset.image_size, "num_classes": cfg.dataset.num_classes}
    data, test = synthetic_data(cfg, 256, 4, device)
    runners = {"bare": lambda: run_bare(cfg, data, iterations),
               "ours_tracked": lambda: run_ours(cfg, data, test, True, workdir),
               "ours_untracked": lambda: run_ours(cfg, data, test, False, workdir)}
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(repeats + 1):  # the first round warms up
        for name in VARIANTS[r % 3:] + VARIANTS[:r % 3]:
            run = runners[name]()
            if run["iterations"] != iterations:
                raise RuntimeError(f"the {name} loop-overhead run stopped after {run['iterations']} of {iterations}")
            if r:
                seconds[name].append(run["seconds"])
    us = {name: 1e6 * _median(values) / iterations for name, values in seconds.items()}
    return {"iterations": iterations, "log_every": cfg.trainer.log_every, "bare_step_us": us["bare"],
            "tracked_us": us["ours_tracked"] - us["bare"], "untracked_us": us["ours_untracked"] - us["bare"]}


def compare_main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m superconv.bench [compare]",
        description="Our training loop (MLflow + tqdm on) vs a bare PyTorch loop; also: `throughput`, `budget`.")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--iterations", type=positive_int, default=None, help="timed iterations (default: per case)")
    parser.add_argument("--batch", type=positive_int, default=None, help="total batch (default: per case)")
    parser.add_argument("--repeats", type=positive_int, default=9)
    parser.add_argument("--warmup-iterations", type=positive_int, default=5)
    parser.add_argument("--train-images", type=positive_int, default=None,
                        help="synthetic training images (default 4096, at least one batch)")
    parser.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("--amp", default=None, help="bf16 or fp16 (default fp32)")
    parser.add_argument("--tracking-uri", default=None,
                        help="an MLflow store to log to (default: a new SQLite store in a temporary directory)")
    parser.add_argument("--no-system-metrics", action="store_true",
                        help="tracking.system_metrics=false (default: on, as in the study's runs)")
    parser.add_argument("--show-progress", action="store_true", help="let the tqdm bars draw on stderr")
    parser.add_argument("--overhead-iterations", type=positive_int, default=2000,
                        help="iterations of the loop-overhead measurement (TinyNet, batch 1)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "train_bench.json")
    args = parser.parse_args(argv)
    try:
        names = split_names(args.cases, CASES, "case")
        amp = check_amp(args.amp)
    except ValueError as err:
        parser.error(str(err))
    device = resolve_device(args.device)
    seed_everything(0, args.threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="superconv-bench-") as tmp:
        workdir = Path(tmp)
        uri = args.tracking_uri or f"sqlite:///{workdir / 'mlflow.db'}"
        _prepare_store(uri, workdir)
        for name in names:
            case = CASES[name]
            if args.train_images:
                case = Case(case.name, case.overrides, case.batch, case.iterations, args.train_images)
            results.append(compare_case(
                case, iterations=args.iterations or case.iterations, batch=args.batch or case.batch,
                threads=args.threads, device=device, amp=amp, repeats=args.repeats,
                warmup_iterations=args.warmup_iterations, tracking_uri=uri, workdir=workdir,
                system_metrics=not args.no_system_metrics, show_progress=args.show_progress))
        with _progress_sink(args.show_progress):
            overhead = loop_overhead(CASES["lenet_mnist"], iterations=args.overhead_iterations, threads=args.threads,
                                     device=device, repeats=args.repeats, tracking_uri=uri, workdir=workdir,
                                     system_metrics=not args.no_system_metrics)
    for r in results:  # what the loop's own cost predicts for the case's step time
        step_us = 1e6 * r["total_batch"] / r["images_per_s"]["bare"]
        r["predicted_ours_over_bare"] = step_us / (step_us + max(overhead["tracked_us"], 0.0))
        r["predicted_mlflow_overhead"] = max(overhead["tracked_us"] - overhead["untracked_us"], 0.0) / step_us
    report = {"device": device_name(device), "device_type": device.type, "threads": args.threads,
              "repeats": args.repeats, "torch": torch.__version__, "targets": {"ours_over_bare": 0.95,
                                                                                 "mlflow_overhead": 0.02},
              "loop_overhead_us": overhead, "cases": {r["case"]: r for r in results}}
    write_json(args.out, report)
    print_compare(report, args.out)
    return report


def _prepare_store(uri: str, workdir: Path) -> None:
    """Create the store's schema and the benchmark's experiment (artifacts under ``workdir``, not ./mlruns)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(BENCH_EXPERIMENT) is None:
        client.create_experiment(BENCH_EXPERIMENT, artifact_location=(workdir / "artifacts").as_uri())


def print_compare(report: dict[str, Any], out: Path) -> None:
    print(f"ours (training.train, MLflow + tqdm on) vs bare PyTorch loop on {report['device']}, "
          f"{report['threads']} threads, median of {report['repeats']} interleaved repeats")
    header = f"{'case':<18} {'batch':>5} {'its':>4} {'bare img/s':>11} {'ours img/s':>11} {'untracked':>10} " \
             f"{'ours/bare':>9} {'MLflow':>7} {'calls':>7}"
    print(header)
    for r in report["cases"].values():
        ips = r["images_per_s"]
        print(f"{r['case']:<18} {r['total_batch']:>5} {r['iterations']:>4} {ips['bare']:>11.1f} "
              f"{ips['ours_tracked']:>11.1f} {ips['ours_untracked']:>10.1f} {r['ours_over_bare']:>9.3f} "
              f"{100 * r['mlflow_overhead']:>6.2f}% {100 * r['mlflow_call_share']:>6.2f}%")
    targets = report["targets"]
    for r in report["cases"].values():
        ok_ratio = "meets" if r["ours_over_bare"] >= targets["ours_over_bare"] else "MISSES"
        ok_mlflow = "meets" if r["mlflow_overhead"] <= targets["mlflow_overhead"] else "MISSES"
        print(f"  {r['case']}: ours/bare {r['ours_over_bare']:.3f} {ok_ratio} the >= {targets['ours_over_bare']} "
              f"target; MLflow overhead {100 * r['mlflow_overhead']:.2f}% {ok_mlflow} the <= "
              f"{100 * targets['mlflow_overhead']:.0f}% target (time inside tracker calls: "
              f"{100 * r['mlflow_call_share']:.2f}% of the loop, {r['mlflow_call_ms_per_iteration']:.3f} "
              f"ms/iteration; opening + closing the run: {r['mlflow_run_open_close_s']:.2f} s per run)")
    o = report["loop_overhead_us"]
    print(f"  loop overhead without the step (TinyNet, batch 1, {o['iterations']} iterations): "
          f"{o['untracked_us']:.1f} us/iteration untracked, {o['tracked_us']:.1f} us tracked (bare step "
          f"{o['bare_step_us']:.1f} us); predicted ours/bare: " + ", ".join(
              f"{r['case']} {r['predicted_ours_over_bare']:.4f} (MLflow {100 * r['predicted_mlflow_overhead']:.3f}%)"
              for r in report["cases"].values()))
    print("  ours = the whole train() call less evaluation (model build, loop, final MLflow flush, final checkpoint); "
          "bare = model build + loop. ours/bare and MLflow overhead are medians of per-repeat ratios (adjacent runs); "
          f"calls = seconds inside Tracker.log_metrics/flush / ours seconds -> {out}")


# ------------------------------------------------------------------------------------------------ throughput
@dataclass(frozen=True)
class ModelSpec:
    """A model of ``conf/model/<group>.yaml`` at its dataset's shape, with a CPU-sized default batch."""

    name: str
    group: str
    dataset: str
    overrides: tuple[str, ...] = ()
    cpu_batch: int = 16
    gpu_batch: int = 128


MODELS = {spec.name: spec for spec in (
    ModelSpec("lenet", "lenet", "mnist", cpu_batch=64, gpu_batch=512),
    ModelSpec("cifar_resnet20", "cifar_resnet", "cifar10", ("model.depth=20",), cpu_batch=32),
    ModelSpec("cifar_resnet56", "cifar_resnet", "cifar10", ("model.depth=56",), cpu_batch=16),
    ModelSpec("cifar_resnet110", "cifar_resnet", "cifar10", ("model.depth=110",), cpu_batch=8),
    ModelSpec("wide_resnet32", "wide_resnet32", "cifar10", cpu_batch=8),
    ModelSpec("densenet40", "densenet40", "cifar10", cpu_batch=8),
    ModelSpec("resnet50", "resnet50", "imagenette", ("dataset.image_size=224",), cpu_batch=4, gpu_batch=64),
)}


def model_config(spec: ModelSpec, image_size: int | None = None, extra: tuple[str, ...] = ()) -> DictConfig:
    """The train config with the spec's model and dataset (``image_size`` overrides the dataset's)."""
    overrides = [f"model={spec.group}", f"dataset={spec.dataset}", *spec.overrides, *extra]
    if image_size is not None:
        overrides.append(f"dataset.image_size={image_size}")
    return compose_stage_config("train", overrides)


def count_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, backward: bool = True) -> int:
    """FLOPs of one forward (+ backward) pass on the batch ``x`` as torch.utils.flop_counter counts them:
    matmuls and convolutions at 2 per multiply-add; elementwise ops, BN, pooling and the optimizer not counted."""
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            F.cross_entropy(model(x), y).backward()
        else:
            with torch.no_grad():
                model(x)
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def flops_per_image(cfg: DictConfig, device: torch.device | None = None, images: int = 2) -> dict[str, float]:
    """Training (forward + backward) and evaluation (forward) FLOPs per image of ``cfg``'s model and shape."""
    device = device or torch.device("cpu")
    model = place_model(build_model(cfg.model), device, bool(cfg.trainer.channels_last))
    ds = cfg.dataset
    x = torch.randn(images, ds.channels, ds.image_size, ds.image_size, device=device)
    if cfg.trainer.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(images, dtype=torch.long, device=device)
    model.train()
    train_flops = count_flops(model, x, y) / images
    model.eval()
    return {"train": train_flops, "eval": count_flops(model, x, y, backward=False) / images}


def _median_step_s(step: Callable[[], Any], device: torch.device, warmup: int, iterations: int) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return _median(times)


def measure_model(spec: ModelSpec, *, device: torch.device, batch: int, iterations: int, warmup: int,
                  amp: str | None, image_size: int | None = None) -> dict[str, Any]:
    """Median training-step and evaluation-batch time of ``spec`` at ``batch``, as images/s, plus FLOPs/image."""
    cfg = model_config(spec, image_size)
    seed_everything(0)
    data, _ = synthetic_data(cfg, batch, 1, device)
    model = place_model(build_model(cfg.model), device, bool(cfg.trainer.channels_last))
    from superconv.optim import build_optimizer

    optimizer = build_optimizer(cfg.optimizer, model)
    for group in optimizer.param_groups:
        group["lr"] = 1e-4  # small and constant: the speed of a step does not depend on it
    precision = Precision.for_device(device, amp)
    x, y = data.batch(0, batch)
    model.train()
    train_s = _median_step_s(lambda: sgd_step(model, optimizer, x, y, precision), device, warmup, iterations)
    model.eval()

    def forward() -> None:
        with torch.no_grad(), precision.autocast():
            model(x)

    eval_s = _median_step_s(forward, device, warmup, iterations)
    flops = flops_per_image(cfg, device)
    ds = cfg.dataset
    return {"group": spec.group, "dataset": spec.dataset, "model": cfg.model._target_,
            "input_shape": [ds.channels, ds.image_size, ds.image_size], "num_classes": ds.num_classes,
            "parameters": count_parameters(model), "batch": batch, "iterations": iterations, "warmup": warmup,
            "images_per_s": batch / train_s, "eval_images_per_s": batch / eval_s,
            "train_flops_per_image": flops["train"], "eval_flops_per_image": flops["eval"]}


def throughput(names: list[str], *, device: torch.device, amp: str | None, batch: int | None = None,
               iterations: int | None = None, warmup: int | None = None, peak_tflops: float | None = None,
               resnet50_size: int | None = None, threads: int | None = None) -> dict[str, Any]:
    """images/s and FLOPs/image of each named model, and the compute-bound floor against the device's peak."""
    from superconv.gpu_budget import device_peak

    if threads:
        torch.set_num_threads(threads)
    on_gpu = device.type == "cuda"
    iterations = iterations or (20 if on_gpu else 3)
    warmup = 5 if warmup is None and on_gpu else 1 if warmup is None else warmup
    name = device_name(device)
    peak, peak_source = (peak_tflops, "--peak-tflops") if peak_tflops else device_peak(name, amp)
    models = {}
    for model_name in names:
        spec = MODELS[model_name]
        size = resnet50_size if model_name == "resnet50" else None
        row = measure_model(spec, device=device, batch=batch or (spec.gpu_batch if on_gpu else spec.cpu_batch),
                            iterations=iterations, warmup=warmup, amp=amp, image_size=size)
        if peak:
            row["floor_images_per_s"] = peak * 1e12 / row["train_flops_per_image"]
            row["fraction_of_peak"] = row["images_per_s"] / row["floor_images_per_s"]
        else:
            row["floor_images_per_s"] = row["fraction_of_peak"] = None
        models[model_name] = row
    return {"device": name, "device_type": device.type, "amp": amp or "fp32", "threads": torch.get_num_threads(),
            "torch": torch.__version__, "peak_tflops": peak, "peak_source": peak_source, "models": models}


def print_throughput(report: dict[str, Any], out: Path | None) -> None:
    peak, source = report["peak_tflops"], report["peak_source"]
    stated = f"{peak:g} TFLOP/s ({source})" if peak else f"unknown ({source})"
    print(f"training throughput on {report['device']} ({report['amp']}, {report['threads']} threads); peak: {stated}")
    print(f"{'model':<16} {'shape':<10} {'batch':>5} {'train img/s':>11} {'eval img/s':>10} {'GFLOP/img':>9} "
          f"{'floor img/s':>11} {'of peak':>7}")
    for name, r in report["models"].items():
        shape = "x".join(map(str, r["input_shape"]))
        floor = f"{r['floor_images_per_s']:>11,.0f}" if r["floor_images_per_s"] else f"{'-':>11}"
        frac = f"{100 * r['fraction_of_peak']:>6.1f}%" if r["fraction_of_peak"] is not None else f"{'-':>7}"
        print(f"{name:<16} {shape:<10} {r['batch']:>5} {r['images_per_s']:>11,.1f} {r['eval_images_per_s']:>10,.1f} "
              f"{r['train_flops_per_image'] / 1e9:>9.3f} {floor} {frac}")
    print("  GFLOP/img: one forward + backward (torch.utils.flop_counter: matmul/conv only, 2 per multiply-add); "
          "floor img/s = peak / FLOPs per image (compute-bound: no step can be faster)"
          + (f" -> {out}" if out else ""))


def throughput_main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench throughput",
                                     description="Training images/s and FLOPs per image of every conf/model/ model.")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument("--batch", type=positive_int, default=None, help="batch for every model (default: per model)")
    parser.add_argument("--iterations", type=positive_int, default=None, help="timed steps (default 3 CPU, 20 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 1 CPU, 5 GPU)")
    parser.add_argument("--amp", default=None, help="bf16 or fp16 (default fp32)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s at this precision (default: the table, for known GPUs)")
    parser.add_argument("--resnet50-size", type=positive_int, default=None,
                        help="ResNet-50 input side in px (default 224, ImageNet's; smaller is quicker on a CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "throughput.json")
    args = parser.parse_args(argv)
    try:
        names = split_names(args.models, MODELS, "model")
        amp = check_amp(args.amp)
        if args.peak_tflops is not None and not args.peak_tflops > 0:
            raise ValueError(f"--peak-tflops {args.peak_tflops} must be > 0")
    except ValueError as err:
        parser.error(str(err))
    report = throughput(names, device=resolve_device(args.device), amp=amp, batch=args.batch,
                        iterations=args.iterations, warmup=args.warmup, peak_tflops=args.peak_tflops,
                        resnet50_size=args.resnet50_size, threads=args.threads)
    write_json(args.out, report)
    print_throughput(report, args.out)
    return report


# ---------------------------------------------------------------------------------------------------- entry
def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "throughput":
        return throughput_main(argv[1:])
    if argv and argv[0] == "budget":
        from superconv.gpu_budget import main as budget_main

        return budget_main(argv[1:])
    if argv and argv[0] == "compare":
        argv = argv[1:]
    return compare_main(argv)


if __name__ == "__main__":
    main()
