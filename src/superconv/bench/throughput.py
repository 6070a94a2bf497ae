"""Training images/s and FLOPs per image of every model in ``conf/model/``, and the compute-bound floor.

Each model is measured at its dataset's shape: the median time of an ``engine.sgd_step`` and of an evaluation
forward on one synthetic batch, as images/s. FLOPs per image are counted with ``torch.utils.flop_counter``; the
floor is the device's peak (the table below, or ``--peak-tflops``) over them. The GPU budget
(``superconv.bench.gpu_budget``) turns these rates into device-hours.

Run: ``python -m superconv.bench throughput`` (or ``python -m superconv.bench.throughput``).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from superconv.bench.common import (
    RESULTS_DIR,
    check_amp,
    device_name,
    median,
    positive_int,
    split_names,
    synchronize,
    synthetic_data,
)
from superconv.common.io import write_json
from superconv.core.engine import Precision, place_model, resolve_device, seed_everything, sgd_step
from superconv.core.models import count_parameters
from superconv.core.optim import build_optimizer
from superconv.stages.compose import compose_stage_config
from superconv.stages.training import build_model, composed, optimizer_spec


# ------------------------------------------------------------------------------------------------ peak table
@dataclass(frozen=True)
class Peak:
    """Dense (no structured sparsity) peak TFLOP/s of a GPU per precision; None: no such tensor-core path."""

    name: str
    pattern: str  # regex searched in torch.cuda.get_device_name()
    fp32: float
    tf32: float | None
    fp16: float | None
    bf16: float | None
    source: str


# Vendor figures; "with sparsity" ones are halved to dense. Checked against NVIDIA's datasheets and whitepapers
# (A100 datasheet; H100 datasheet, SXM5 and PCIe columns; V100 datasheet, SXM2 and PCIe; Ada Lovelace
# architecture whitepaper appendix for the RTX 4090, FP16/BF16 tensor with FP32 accumulate; L4, A10 and T4
# datasheets). More specific patterns come first (A100 before A10, H100 PCIe before H100).
PEAKS: tuple[Peak, ...] = (
    Peak("H100 PCIe", r"H100.*PCIe", 51.0, 378.0, 756.0, 756.0, "NVIDIA H100 datasheet (PCIe; sparse / 2)"),
    Peak("H100 SXM", r"H100", 67.0, 494.5, 989.0, 989.0, "NVIDIA H100 datasheet (SXM5; sparse / 2)"),
    Peak("A100", r"A100", 19.5, 156.0, 312.0, 312.0, "NVIDIA A100 datasheet"),
    Peak("V100 PCIe", r"V100.*PCIE", 14.0, None, 112.0, None, "NVIDIA V100 datasheet (PCIe; no bf16/tf32 cores)"),
    Peak("V100 SXM2", r"V100", 15.7, None, 125.0, None, "NVIDIA V100 datasheet (SXM2; no bf16/tf32 cores)"),
    Peak("RTX 4090", r"RTX 4090", 82.6, 82.6, 165.2, 165.2,
         "NVIDIA Ada Lovelace whitepaper (FP32 accumulate, dense)"),
    Peak("L4", r"\bL4\b", 30.3, 60.0, 121.0, 121.0, "NVIDIA L4 datasheet (sparse / 2)"),
    Peak("A10", r"\bA10\b", 31.2, 62.5, 125.0, 125.0, "NVIDIA A10 datasheet (sparse / 2)"),
    Peak("T4", r"\bT4\b", 8.1, None, 65.0, None, "NVIDIA T4 datasheet (fp16 mixed precision; no bf16/tf32 cores)"),
)


def find_peak(device_name: str) -> Peak | None:
    """The table row whose pattern matches a device name (torch.cuda.get_device_name or a short name like A100)."""
    for peak in PEAKS:
        if re.search(peak.pattern, device_name, flags=re.IGNORECASE):
            return peak
    return None


def device_peak(device_name: str, amp: str | None) -> tuple[float | None, str]:
    """(peak TFLOP/s for training at ``amp`` on this device or None, a sentence saying where it comes from).

    fp32 takes the TF32 tensor-core rate where the GPU has one and cuDNN may use it (PyTorch's default,
    ``torch.backends.cudnn.allow_tf32``): convolutions dominate these nets, so that is the floor's peak.
    """
    peak = find_peak(device_name)
    if peak is None:
        return None, f"unknown for {device_name!r}: give --peak-tflops"
    if amp in ("bf16", "fp16"):
        value = getattr(peak, amp)
        if value is None:
            return None, f"{peak.name} has no {amp} tensor cores ({peak.source}): give --peak-tflops"
        return value, f"{peak.name} {amp} dense, {peak.source}"
    if peak.tf32 is not None and torch.backends.cudnn.allow_tf32:
        return peak.tf32, f"{peak.name} tf32 dense (cuDNN convolutions use TF32 by default), {peak.source}"
    return peak.fp32, f"{peak.name} fp32, {peak.source}"


# -------------------------------------------------------------------------------------------------- models
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
    model = place_model(build_model(composed(cfg)[0]), device, bool(cfg.trainer.channels_last))
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
    return median(times)


def measure_model(spec: ModelSpec, *, device: torch.device, batch: int, iterations: int, warmup: int,
                  amp: str | None, image_size: int | None = None) -> dict[str, Any]:
    """Median training-step and evaluation-batch time of ``spec`` at ``batch``, as images/s, plus FLOPs/image."""
    cfg = model_config(spec, image_size)
    seed_everything(0)
    data, _ = synthetic_data(cfg, batch, 1, device)
    model = place_model(build_model(composed(cfg)[0]), device, bool(cfg.trainer.channels_last))
    optimizer = build_optimizer(optimizer_spec(composed(cfg)[1]), model, lr=1e-4, momentum=0.9)  # speed: any lr
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
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


if __name__ == "__main__":
    main()
