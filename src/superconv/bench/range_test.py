"""Benchmark: does a range test of N iterations cost no more than N training iterations plus evaluations?

Both are the one loop (``core.loop.run_loop``): training as the train stage drives it (constant LR, divergence
guard, evaluation time excluded) against the range test as the range-test stage drives it
(``core.range_test.run_range_test``: LR ramp, smoothing and stop rules) with evaluation off and on, on the same
model, data, batch and thread count, each saving its final checkpoint as the stages do. Repeats are interleaved and
the median kept, so a background load hits every variant alike.
Run: ``python -m superconv.bench range_test`` (or ``python -m superconv.bench.range_test``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from superconv.bench.common import interleaved, median, stage_data, synthetic_prepared
from superconv.common.io import write_json
from superconv.common.tracking import Tracker
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import load_prepared
from superconv.core.engine import FP32, Trainable, classification_step, held_out, seed_everything
from superconv.core.loop import Checkpointing
from superconv.core.range_test import run_range_test
from superconv.core.schedules import build_schedule
from superconv.stages.compose import compose_stage_config
from superconv.stages.training import composed, run_training, trainable


def _config(iterations: int, batch: int, threads: int, eval_every: int, eval_size: int) -> DictConfig:
    cfg = compose_stage_config("train", ["experiment=tiny_digits_lenet", "schedule=constant", "tracking.enabled=false",
                                         "trainer.progress=false", "trainer.device=cpu", f"trainer.threads={threads}",
                                         f"trainer.total_batch={batch}", f"trainer.eval_every={iterations + 1}",
                                         f"++recipe.constant={{unit: iteration, length: {iterations}, "
                                         "base_lr: 0.01, momentum: 0.9}"])
    rt = compose_stage_config("range_test", ["experiment=tiny_digits_lenet", "range_test=linear"]).range_test
    rt.update(start_lr=0.0, end_lr=0.001, iterations=iterations, eval_every=eval_every, eval_size=eval_size,
              stop_factor=None)  # a safe range on random data: every variant runs all N iterations
    with open_dict(cfg):
        cfg.range_test = rt  # OmegaConf copies on assignment, so rt is set up first
    return cfg


def _train_its(cfg: DictConfig, data: DeviceData, test: DeviceData) -> float:
    seed_everything(0, cfg.trainer.threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_training(*composed(cfg), build_schedule(cfg.schedule, 1.0), data, test, Tracker(),
                              Checkpointing(Path(tmp) / "ckpt.pt"))
    return result.iterations / (result.wall_s - result.eval_s)


def _range_its(cfg: DictConfig, data: DeviceData, test: DeviceData, evaluated: bool) -> float:
    seed_everything(0, cfg.trainer.threads)
    rt, trainer = cfg.range_test.copy(), cfg.trainer
    with open_dict(rt):
        rt.eval_every = rt.eval_every if evaluated else None
    built = trainable(*composed(cfg), data.device, float(rt.start_lr), float(rt.momentum))  # the ramp's first values
    sgd = classification_step(built, data, int(trainer.total_batch))
    stepped: list[int] = []

    def step(it: int) -> torch.Tensor:
        stepped.append(it)
        return sgd(it)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_range_test(rt, built, step, held_out(built, test, int(trainer.eval_batch), int(rt.eval_size)),
                       Tracker(), iterations_per_epoch=len(data) / trainer.total_batch, batch=int(trainer.total_batch),
                       log_every=int(trainer.log_every), progress=False,
                       checkpointing=Checkpointing(Path(tmp) / "ckpt.pt"))
        seconds = time.perf_counter() - start
    # Steps taken, not rows kept: a test that stops on a non-finite loss has stepped on to the next flush point
    # (at most trainer.log_every - 1 steps) before the loop reads the losses back.
    return len(stepped) / seconds


def loop_overhead_us(iterations: int = 20_000) -> float:
    """Per-iteration cost of the range-test loop itself (ramp, smoothing, records, stop check), step excluded."""
    model = torch.nn.Linear(2, 1)
    bare = Trainable(model, model, torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9), FP32)
    rt = OmegaConf.create({"protocol": "linear", "start_lr": 0.0, "end_lr": 0.1, "iterations": iterations,
                           "eval_every": None, "momentum": 0.9, "smooth_beta": 0.98, "stop_factor": None,
                           "diverge_factor": 4.0})
    loss = torch.tensor(1.0)
    start = time.perf_counter()
    run_range_test(rt, bare, lambda it: loss, None, Tracker(), progress=False)
    return (time.perf_counter() - start) / iterations * 1e6


def bench(iterations: int, batch: int, threads: int, repeats: int, eval_every: int, eval_size: int,
          data_dir: Path | None) -> dict[str, Any]:
    """Median iterations/s of each variant over interleaved repeats, and the ratios to plain training."""
    cfg = _config(iterations, batch, threads, eval_every, eval_size)
    prepared = synthetic_prepared(cfg, 4096, 1000) if data_dir is None else load_prepared(data_dir)
    source = "synthetic" if data_dir is None else str(data_dir)
    data, test = stage_data(cfg, prepared, torch.device("cpu"))
    variants = {"train": lambda: _train_its(cfg, data, test),
                "range_test_no_eval": lambda: _range_its(cfg, data, test, evaluated=False),
                "range_test_eval": lambda: _range_its(cfg, data, test, evaluated=True)}
    samples = interleaved(variants, repeats)  # a first round warms up (allocator, kernels)
    its = {name: median(values) for name, values in samples.items()}
    return {"iterations": iterations, "total_batch": batch, "threads": threads, "repeats": repeats,
            "eval_every": eval_every, "eval_size": min(eval_size, len(test)), "data": source,
            "model": cfg.model._target_, "iterations_per_s": its, "samples": samples,
            "ratio_to_train": {name: its[name] / its["train"] for name in its},
            "range_test_loop_overhead_us": loop_overhead_us()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench range_test", description=__doc__.splitlines()[0])
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
    write_json(args.out, report)
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
