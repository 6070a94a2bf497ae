"""Benchmark: does a range test of N iterations cost no more than N training iterations plus evaluations?

Times the real training loop (``training.train``, constant LR, evaluation time excluded) against the real
range-test loop (``range_test.run_range_test``, state copy/restore included) with evaluation off and on,
on the same model, data, batch and thread count, and prints the ratios. Repeats are interleaved and the
median kept, so a background load hits every variant alike. Run: ``python -m superconv.bench_range_test``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from superconv.config import compose_stage_config
from superconv.data.loader import DeviceData
from superconv.data.prepared import Split, load_prepared
from superconv.engine import place_model, seed_everything
from superconv.models import build_model
from superconv.optim import build_optimizer
from superconv.range_test import classification_step, held_out_evaluation, run_range_test
from superconv.schedules import build_schedule
from superconv.tracking import Tracker
from superconv.training import train


def synthetic_split(n: int, seed: int, image_size: int = 28, classes: int = 10, channels: int = 1) -> Split:
    """Random uint8 images (1 channel unless told) and labels: the speed of a step does not depend on the pixels."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, image_size, image_size), generator=g, dtype=torch.uint8)
    return Split(images, torch.randint(0, classes, (n,), generator=g))


def _config(iterations: int, batch: int, threads: int, eval_every: int, eval_size: int) -> DictConfig:
    cfg = compose_stage_config("train", ["experiment=tiny_digits_lenet", "schedule=constant", "tracking.enabled=false",
                                         "trainer.progress=false", "trainer.device=cpu", f"trainer.threads={threads}",
                                         f"trainer.total_batch={batch}", f"trainer.eval_every={iterations + 1}",
                                         f"++recipe.constant={{unit: iteration, length: {iterations}, "
                                         "base_lr: 0.01, momentum: 0.9}"])
    rt = compose_stage_config("range_test", ["experiment=tiny_digits_lenet", "range_test=linear"]).range_test
    with open_dict(cfg):
        cfg.range_test = rt
        rt.update(start_lr=0.0, end_lr=0.01, iterations=iterations, eval_every=eval_every, eval_size=eval_size,
                  stop_factor=None)  # a safe range: every variant runs all N iterations
    return cfg


def _train_its(cfg: DictConfig, data: DeviceData, test: DeviceData) -> float:
    seed_everything(0, cfg.trainer.threads)
    with tempfile.TemporaryDirectory() as tmp:  # train() always writes its final checkpoint
        result = train(cfg, data, test, build_schedule(cfg.schedule, 1.0), Tracker(), Path(tmp) / "checkpoint.pt")
    return result.iterations / (result.wall_s - result.eval_s)


def _range_its(cfg: DictConfig, data: DeviceData, test: DeviceData, evaluated: bool) -> float:
    seed_everything(0, cfg.trainer.threads)
    model = place_model(build_model(cfg.model), data.device, cfg.trainer.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model)
    rt = cfg.range_test.copy()
    with open_dict(rt):
        rt.eval_every = rt.eval_every if evaluated else None
    start = time.perf_counter()
    result = run_range_test(rt, model, optimizer, classification_step(model, optimizer, data, cfg.trainer.total_batch),
                            held_out_evaluation(model, test, cfg.trainer.eval_batch, rt.eval_size), Tracker(),
                            progress=False)
    return len(result.rows) / (time.perf_counter() - start)


def loop_overhead_us(iterations: int = 20_000) -> float:
    """Per-iteration cost of the range-test loop itself (ramp, smoothing, records, stop check), step excluded."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    rt = OmegaConf.create({"protocol": "linear", "start_lr": 0.0, "end_lr": 0.1, "iterations": iterations,
                           "eval_every": None, "momentum": 0.9, "smooth_beta": 0.98, "stop_factor": None,
                           "diverge_factor": 4.0})
    loss = torch.tensor(1.0)
    start = time.perf_counter()
    run_range_test(rt, model, optimizer, lambda it: loss, None, Tracker(), progress=False)
    return (time.perf_counter() - start) / iterations * 1e6


def bench(iterations: int, batch: int, threads: int, repeats: int, eval_every: int, eval_size: int,
          data_dir: Path | None) -> dict[str, Any]:
    """Median iterations/s of each variant over interleaved repeats, and the ratios to plain training."""
    cfg = _config(iterations, batch, threads, eval_every, eval_size)
    device = torch.device("cpu")
    if data_dir is None:
        train_split, test_split, source = synthetic_split(4096, 0), synthetic_split(1000, 1), "synthetic"
    else:
        prepared = load_prepared(data_dir)
        train_split, test_split, source = prepared.train, prepared.test, str(data_dir)
    kwargs = {"device": device, "input_scale": 1 / 256, "channels_last": cfg.trainer.channels_last}
    data, test = DeviceData(train_split, **kwargs), DeviceData(test_split, **kwargs)
    variants = {"train": lambda: _train_its(cfg, data, test),
                "range_test_no_eval": lambda: _range_its(cfg, data, test, evaluated=False),
                "range_test_eval": lambda: _range_its(cfg, data, test, evaluated=True)}
    for run in variants.values():  # warm-up (allocator, kernels)
        run()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            samples[name].append(run())
    its = {name: statistics.median(values) for name, values in samples.items()}
    return {"iterations": iterations, "total_batch": batch, "threads": threads, "repeats": repeats,
            "eval_every": eval_every, "eval_size": min(eval_size, len(test)), "data": source,
            "model": cfg.model._target_, "iterations_per_s": its, "samples": samples,
            "ratio_to_train": {name: its[name] / its["train"] for name in its},
            "range_test_loop_overhead_us": loop_overhead_us()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--eval-size", type=int, default=300)
    parser.add_argument("--data-dir", type=Path, default=None, help="a prepared dataset dir (default: synthetic)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_range_test.json"))
    args = parser.parse_args(argv)
    report = bench(args.iterations, args.batch, args.threads, args.repeats, args.eval_every, args.eval_size,
                   args.data_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    its, ratio = report["iterations_per_s"], report["ratio_to_train"]
    print(f"{report['model']} on {report['data']}, batch {args.batch}, {args.threads} threads, "
          f"{args.iterations} iterations, median of {args.repeats}:")
    for name in its:
        print(f"  {name:<20} {its[name]:8.1f} it/s   x{ratio[name]:.3f} of training")
    print(f"  (evaluation: {report['eval_size']} samples every {args.eval_every} iterations)")
    print(f"  range-test loop overhead without the step: {report['range_test_loop_overhead_us']:.1f} us/iteration "
          f"-> {args.out}")
    return report


if __name__ == "__main__":
    main()
