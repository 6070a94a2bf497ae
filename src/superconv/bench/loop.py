"""Training-step benchmark: our training loop against a bare PyTorch loop.

``python -m superconv.bench compare`` (or ``python -m superconv.bench.loop``) times the real ``core.loop.run_loop``
as the train stage drives it (``engine.build_trainable``, ``classification_step``, ``held_out``, the divergence guard
the config sets; MLflow tracking on a real SQLite store, tqdm bar on, a preset's schedule, evaluation and periodic
checkpoints effectively off) against a plain
``for x, y in batches: loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()`` on the
same model, DeviceData batches, total batch, channels_last setting and thread count, and ours with tracking off
for the MLflow overhead. Variants alternate within each repeat and medians are kept.

Images/s and FLOPs per model are ``superconv.bench.throughput``; device-hours per preset ``superconv.bench.gpu_budget``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from superconv.bench.common import (
    RESULTS_DIR,
    check_amp,
    device_name,
    interleaved,
    median,
    positive_int,
    run_bare,
    split_names,
    synthetic_data,
)
from superconv.common.io import write_json
from superconv.common.tracking import Tracker, tracked_run
from superconv.core.data.loader import DeviceData
from superconv.core.engine import resolve_device, seed_everything
from superconv.core.loop import Checkpointing
from superconv.core.schedules import build_schedule
from superconv.stages.compose import compose_stage_config
from superconv.stages.rules import iterations_per_epoch
from superconv.stages.train import run_summary
from superconv.stages.training import composed, run_training

BENCH_EXPERIMENT = "superconv-bench"  # MLflow experiment of the benchmark's runs (never the study's)


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


def run_ours(cfg: DictConfig, data: DeviceData, test: DeviceData, tracked: bool, workdir: Path,
             show_progress: bool = False) -> dict[str, float]:
    """``core.loop.run_loop`` as the train stage runs it (``stages.training.run_training``).

    seconds: build_trainable (model and optimizer), the loop, the final metrics flush to MLflow and the final
    checkpoint, less evaluation. (``LoopResult.wall_s``, which summary.json's images/s uses, counts the loop, its
    checkpoints and that final save but not the model build; it is kept as ``loop_s``.)"""
    seed_everything(cfg.seed, cfg.trainer.threads)
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    run_cfg = cfg.copy()
    with open_dict(run_cfg):
        run_cfg.tracking.enabled = tracked
    start = time.perf_counter()
    with _progress_sink(show_progress), tracked_run(OmegaConf.to_container(run_cfg, resolve=True), "bench", "bench",
                                                        {"superconv.bench": "true"}) as tracker:
        timed = TimedTracker(tracker)
        entered = time.perf_counter()
        result = run_training(*composed(run_cfg), schedule, data, test, timed, Checkpointing(workdir / "checkpoint.pt"))
        left = time.perf_counter()
    end = time.perf_counter()
    summary = run_summary(result, run_cfg, schedule)
    return {"seconds": left - entered - result.eval_s, "loop_s": summary["train_s"],
            "iterations": result.iterations, "tracking_call_s": timed.seconds,
            "run_open_close_s": (entered - start) + (end - left), "diverged": summary["diverged"]}


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
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    runners: dict[str, Callable[[DictConfig], dict[str, float]]] = {
        "bare": lambda c: run_bare(c, data, int(c.trainer.max_iterations), schedule),
        "ours_tracked": lambda c: run_ours(c, data, test, True, workdir, show_progress),
        "ours_untracked": lambda c: run_ours(c, data, test, False, workdir, show_progress),
    }
    warm = _with_iterations(cfg, warmup_iterations)
    for run in runners.values():  # allocator, kernels, MLflow store and experiment, at the short length
        run(warm)
    samples = interleaved({name: partial(runners[name], cfg) for name in VARIANTS}, repeats, warmup=False)
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
        "images_per_s": {name: median(values) for name, values in ips.items()},
        "images_per_s_samples": ips,
        "ours_over_bare": median(paired_ours),
        "ours_untracked_over_bare": median(paired_untracked),
        "ours_over_bare_of_medians": median(ips["ours_tracked"]) / median(ips["bare"]),
        "mlflow_overhead": 1.0 - median(paired_tracking),
        "mlflow_call_share": median([s["tracking_call_s"] / s["seconds"] for s in tracked]),
        "mlflow_call_ms_per_iteration": median([1e3 * s["tracking_call_s"] / s["iterations"] for s in tracked]),
        "ours_loop_only_over_bare": median([batch * o["iterations"] / o["loop_s"] / b for o, b in
                                             zip(tracked, ips["bare"], strict=True)]),
        "mlflow_run_open_close_s": median([s["run_open_close_s"] for s in tracked]),
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
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    runners = {"bare": lambda: run_bare(cfg, data, iterations, schedule),
               "ours_tracked": lambda: run_ours(cfg, data, test, True, workdir),
               "ours_untracked": lambda: run_ours(cfg, data, test, False, workdir)}

    def checked(name: str) -> dict[str, float]:
        run = runners[name]()
        if run["iterations"] != iterations:
            raise RuntimeError(f"the {name} loop-overhead run stopped after {run['iterations']} of {iterations}")
        return run

    samples = interleaved({name: partial(checked, name) for name in VARIANTS}, repeats)  # a first round warms up
    us = {name: 1e6 * median([run["seconds"] for run in runs]) / iterations for name, runs in samples.items()}
    return {"iterations": iterations, "log_every": cfg.trainer.log_every, "bare_step_us": us["bare"],
            "tracked_us": us["ours_tracked"] - us["bare"], "untracked_us": us["ours_untracked"] - us["bare"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m superconv.bench compare",
        description="Our training loop (MLflow + tqdm on) vs a bare PyTorch loop.")
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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        argv = argv[1:]
    elif argv[:1] in (["throughput"], ["budget"]):
        parser.error(f"{argv[0]} is `python -m superconv.bench {argv[0]}` (this module is compare only)")
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
    print(f"ours (core.loop.run_loop, MLflow + tqdm on) vs bare PyTorch loop on {report['device']}, "
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
    print("  ours = build_trainable + run_loop less evaluation (model build, loop, final MLflow flush and checkpoint); "
          "bare = model build + loop. ours/bare and MLflow overhead are medians of per-repeat ratios (adjacent runs); "
          f"calls = seconds inside Tracker.log_metrics/flush / ours seconds -> {out}")


if __name__ == "__main__":
    main()
