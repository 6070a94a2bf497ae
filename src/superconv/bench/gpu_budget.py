"""Device-hours of the study: iterations x total batch / images/s for every preset's recipe, per run and per seeds.

For each experiment preset in ``conf/experiment/`` and each policy in its ``recipe``, the train config is composed
as the train stage composes it (``experiment=<name> schedule=<policy>``), the schedule built to get the iteration
count (``trainer.max_iterations`` caps it), and the run's cost is

    hours = (iterations x trainer.total_batch / train images/s + evaluations x test images / eval images/s) / 3600

with evaluations every ``trainer.eval_every`` iterations and at the last one. images/s come from a throughput JSON
(``python -m superconv.bench throughput``), from a measurement now (``--measure``), or from an assumption:
``--images-per-s`` (all models, or ``MODEL=VALUE``), or ``--peak-tflops``/``--gpu`` with ``--utilization``
(images/s = peak x utilization / FLOPs per image; utilization 1 is the compute-bound floor).

Run: ``python -m superconv.bench budget [--markdown]`` (or ``python -m superconv.bench.gpu_budget``).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from superconv.bench.common import RESULTS_DIR, check_amp
from superconv.bench.throughput import MODELS, PEAKS, device_peak, find_peak, flops_per_image, model_config, throughput
from superconv.common.io import write_json
from superconv.core.engine import resolve_device
from superconv.core.schedules import build_schedule
from superconv.stages.compose import CONF_DIR, compose_stage_config
from superconv.stages.rules import iterations_per_epoch
from superconv.stages.study import expand, load_study

DEFAULT_SEEDS = 4  # the paper's runs per row: paper 2 (arXiv:1803.09820) Table 2, mean ± std of 4 runs
EVAL_SPEEDUP_ASSUMED = 3.0  # forward only ~ 1/3 of forward + backward, when no eval images/s was measured


# ---------------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class RunPlan:
    """One training run of a preset: what it costs in images and evaluations."""

    preset: str
    policy: str
    model: str | None  # the key of superconv.bench.throughput.MODELS, or None when no benchmarked model matches
    input_shape: tuple[int, int, int]
    iterations: int
    total_batch: int
    eval_every: int
    evaluations: int
    test_images: int

    @property
    def train_images(self) -> int:
        return self.iterations * self.total_batch


def model_key(model: DictConfig | Mapping[str, Any]) -> str | None:
    """The benchmark's name for a composed model config (cifar_resnet56, wide_resnet32, ...), or None."""
    target = str(model["_target_"]).rsplit(".", 1)[-1]
    if target == "LeNet":
        return "lenet"
    if target == "CifarResNet":
        widths = list(model.get("widths", [16, 32, 64]))
        if widths == [16, 64, 256] and int(model["depth"]) == 32:
            return "wide_resnet32"
        return f"cifar_resnet{int(model['depth'])}" if widths == [16, 32, 64] else None
    if target == "DenseNet":
        return f"densenet{int(model['depth'])}"
    if target == "ResNet50":
        return "resnet50"
    return None


def evaluations(iterations: int, eval_every: int) -> int:
    """How often the loop evaluates: every ``eval_every`` iterations and at the last (core.loop.run_loop)."""
    return iterations // eval_every + (1 if iterations % eval_every else 0)


def preset_names() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _plan(cfg: DictConfig, preset: str, policy: str, notes: list[str]) -> RunPlan:
    schedule = build_schedule(cfg.schedule, iterations_per_epoch(cfg))
    n = schedule.iterations if cfg.trainer.max_iterations is None else min(schedule.iterations,
                                                                           int(cfg.trainer.max_iterations))
    ds, key = cfg.dataset, model_key(cfg.model)
    if key is None:
        notes.append(f"{preset} / {policy}: no benchmarked model matches {cfg.model._target_}")
    every = int(cfg.trainer.eval_every)
    return RunPlan(preset, policy, key, (int(ds.channels), int(ds.image_size), int(ds.image_size)), n,
                   int(cfg.trainer.total_batch), every, evaluations(n, every), int(ds.test_size))


def plan_study(path: Path) -> tuple[list[RunPlan], list[str]]:
    """Every training run x seed of a study (studies/<name>/study.yaml), each one plan (so count it at 1 seed);
    range tests are noted, not planned."""
    spec = load_study(path)
    plans, notes = [], []
    for job in expand(spec, threads=1):
        if job.stage != "train":
            notes.append(f"{spec.name} / {job.label}: a range test, not planned")
            continue
        plans.append(_plan(compose_stage_config("train", list(job.overrides)), spec.name, job.label, notes))
    return plans, notes


def plan_preset(name: str) -> tuple[list[RunPlan], list[str]]:
    """The runs of preset ``name``, one per recipe policy, and a note for each policy that does not compose."""
    if name not in preset_names():
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    plans, notes = [], []
    for policy in compose_stage_config("train", [f"experiment={name}"]).recipe:
        try:
            plans.append(_plan(compose_stage_config("train", [f"experiment={name}", f"schedule={policy}"]), name,
                               policy, notes))
        except Exception as err:  # a recipe without a schedule group, or with keys its group does not fill
            notes.append(f"{name} / {policy}: skipped, does not compose ({str(err).splitlines()[0][:160]})")
    return plans, notes


# ------------------------------------------------------------------------------------------------- rates
@dataclass(frozen=True)
class Rate:
    """A model's training and evaluation images/s, where they come from, and its FLOPs per image if known."""

    images_per_s: float
    eval_images_per_s: float | None
    source: str
    train_flops_per_image: float | None = None
    input_shape: tuple[int, ...] | None = None
    batch: int | None = None  # the batch it was measured at


def positive(key: str, value: Any) -> float:
    """A finite number > 0, else a ValueError naming the option and the value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key}={value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{key}={value!r} must be a finite number > 0")
    return number


def parse_images_per_s(items: list[str], known: Mapping[str, Any]) -> tuple[float | None, dict[str, float]]:
    """``--images-per-s`` values: a bare number for every model, or MODEL=NUMBER; checked, errors name the value."""
    default, per_model = None, {}
    for item in items:
        if "=" in item:
            name, value = item.split("=", 1)
            if name not in known:
                raise ValueError(f"--images-per-s {item!r}: unknown model {name!r}; known: {', '.join(known)}")
            per_model[name] = positive(f"--images-per-s {name}", value)
        else:
            default = positive("--images-per-s", item)
    return default, per_model


def rates_from_throughput(report: Mapping[str, Any]) -> dict[str, Rate]:
    """Rates of a ``python -m superconv.bench throughput`` JSON."""
    source = f"measured on {report['device']} ({report['amp']})"
    return {name: Rate(positive(f"{name}.images_per_s", r["images_per_s"]), r.get("eval_images_per_s"), source,
                       r.get("train_flops_per_image"), tuple(r["input_shape"]) if "input_shape" in r else None,
                       r.get("batch"))
            for name, r in report["models"].items()}


def rates_from_peak(names: list[str], peak_tflops: float, utilization: float, label: str) -> dict[str, Rate]:
    """images/s = peak x utilization / FLOPs per image (counted now on the CPU, one forward + backward)."""
    rates = {}
    for name in names:
        cfg = model_config(MODELS[name])
        flops = flops_per_image(cfg)
        ips = peak_tflops * 1e12 * utilization / flops["train"]
        eval_ips = peak_tflops * 1e12 * utilization / flops["eval"]
        rates[name] = Rate(ips, eval_ips, f"{label}: {peak_tflops:g} TFLOP/s x {utilization:g} / FLOPs per image",
                           flops["train"], (cfg.dataset.channels, cfg.dataset.image_size, cfg.dataset.image_size))
    return rates


# -------------------------------------------------------------------------------------------------- budget
def run_hours(plan: RunPlan, rate: Rate) -> dict[str, float]:
    """Training, evaluation and total hours of one run at ``rate``."""
    train_h = plan.train_images / rate.images_per_s / 3600
    eval_ips = rate.eval_images_per_s or EVAL_SPEEDUP_ASSUMED * rate.images_per_s
    eval_h = plan.evaluations * plan.test_images / eval_ips / 3600
    return {"train_hours": train_h, "eval_hours": eval_h, "hours": train_h + eval_h}


def budget(presets: list[str], rates: Mapping[str, Rate], seeds: int = DEFAULT_SEEDS,
           peak_tflops: float | None = None,
           planned: Mapping[str, tuple[list[RunPlan], list[str]]] | None = None) -> dict[str, Any]:
    """Per-run and per-preset hours (x ``seeds``), with a note for everything skipped or assumed.

    ``planned``: ``plan_preset`` results already computed (composing every recipe takes a while)."""
    if seeds < 1:
        raise ValueError(f"--seeds={seeds} must be >= 1")
    runs, notes, totals = [], [], {}
    for name in presets:
        plans, preset_notes = planned[name] if planned and name in planned else plan_preset(name)
        notes += preset_notes
        total = 0.0
        for plan in plans:
            rate = rates.get(plan.model) if plan.model else None
            if rate is None:
                if plan.model is not None:
                    notes.append(f"{name} / {plan.policy}: no images/s for {plan.model}: skipped")
                continue
            if rate.input_shape is not None and tuple(rate.input_shape) != plan.input_shape:
                notes.append(f"{name} / {plan.policy}: {plan.model} was measured at "
                             f"{'x'.join(map(str, rate.input_shape))}, the preset uses "
                             f"{'x'.join(map(str, plan.input_shape))}")
            if rate.batch is not None and rate.batch != plan.total_batch:
                notes.append(f"{name} / {plan.policy}: {plan.model} was measured at batch {rate.batch}, the preset "
                             f"trains at total batch {plan.total_batch} (images/s depend on the batch, most on a CPU)")
            if rate.eval_images_per_s is None:
                notes.append(f"{name} / {plan.policy}: evaluation at {EVAL_SPEEDUP_ASSUMED:g}x the training "
                             "images/s (assumed: none measured)")
            hours = run_hours(plan, rate)
            floor_h = (plan.train_images * rate.train_flops_per_image / (peak_tflops * 1e12) / 3600
                       if peak_tflops and rate.train_flops_per_image else None)
            row = {**asdict(plan), "train_images": plan.train_images, "images_per_s": rate.images_per_s,
                   "eval_images_per_s": rate.eval_images_per_s, "rate_source": rate.source, **hours,
                   "floor_hours": floor_h, "seeds": seeds, "hours_all_seeds": hours["hours"] * seeds}
            runs.append(row)
            total += row["hours_all_seeds"]
        totals[name] = total
    return {"seeds": seeds, "peak_tflops": peak_tflops, "runs": runs, "preset_hours": totals,
            "total_hours": sum(totals.values()), "notes": notes}


def _hours(h: float | None) -> str:
    if h is None:
        return "-"
    if h < 1 / 60:
        return f"{h * 3600:.1f} s"
    return f"{h * 60:.1f} min" if h < 1 else f"{h:,.2f} h"


def render(report: Mapping[str, Any], markdown: bool = False) -> str:
    """The per-run table and the per-preset totals, as plain text or a markdown table for the README."""
    seeds = report["seeds"]
    scope = "every run x seed of the study" if report.get("studies") else f"all policies x {seeds} seeds"
    head = ["preset", "policy", "model", "iterations", "batch", "images (M)", "evals", "img/s", "per run",
            "floor/run", f"x {seeds} seeds"]
    rows = [[r["preset"], r["policy"], r["model"], f"{r['iterations']:,}", str(r["total_batch"]),
             f"{r['train_images'] / 1e6:.2f}", str(r["evaluations"]), f"{r['images_per_s']:,.0f}", _hours(r["hours"]),
             _hours(r["floor_hours"]), _hours(r["hours_all_seeds"])] for r in report["runs"]]
    totals = [[name, _hours(h)] for name, h in report["preset_hours"].items()]
    totals.append(["all presets", _hours(report["total_hours"])])
    lines = []
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i < 3 else "---:" for i in range(len(head)))
                  + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += ["", f"| {'study' if report.get('studies') else 'preset'} | hours, {scope} |", "|---|---:|"]
        lines += [f"| {name} | {h} |" for name, h in totals]
        lines += [""] + [f"- {note}" for note in report["notes"]]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
        for row in [head, *rows]:
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        lines += ["", f"hours, {scope}:"]
        lines += [f"  {name:<36} {h:>12}" for name, h in totals]
        lines += [f"  note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m superconv.bench budget", description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=None, help="comma-separated (default: every conf/experiment/ preset)")
    parser.add_argument("--studies", nargs="+", type=Path, default=None, metavar="STUDY_YAML",
                        help="plan these studies' runs x seeds instead of presets (each run counted once: --seeds 1)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--throughput", type=Path, default=None,
                        help=f"a `bench throughput` JSON (default {RESULTS_DIR / 'throughput.json'} if it exists)")
    parser.add_argument("--measure", action="store_true", help="measure the presets' models now (bench throughput)")
    parser.add_argument("--images-per-s", action="append", default=[], metavar="[MODEL=]N",
                        help="assume N training images/s (all models, or one); repeatable")
    parser.add_argument("--eval-images-per-s", type=float, default=None,
                        help=f"with --images-per-s: evaluation images/s (default {EVAL_SPEEDUP_ASSUMED:g}x training)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="assume this peak TFLOP/s")
    parser.add_argument("--gpu", default=None, help="take the peak of this GPU from the table (e.g. A100, H100)")
    parser.add_argument("--amp", default=None, help="precision of --gpu's peak: bf16, fp16 (default fp32/tf32)")
    parser.add_argument("--utilization", type=float, default=1.0,
                        help="fraction of the peak reached (default 1: the compute-bound floor)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "gpu_budget.json")
    args = parser.parse_args(argv)
    try:
        presets = preset_names() if args.presets is None else [p.strip() for p in args.presets.split(",") if p.strip()]
        for name in presets:
            if name not in preset_names():
                raise ValueError(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
        if args.seeds < 1:
            raise ValueError(f"--seeds={args.seeds} must be >= 1")
        default_ips, per_model = parse_images_per_s(args.images_per_s, MODELS)
        if args.eval_images_per_s is not None:
            positive("--eval-images-per-s", args.eval_images_per_s)
        if not 0 < args.utilization <= 1:
            raise ValueError(f"--utilization={args.utilization!r} must be in (0, 1]")
        check_amp(args.amp)
        peak = positive("--peak-tflops", args.peak_tflops) if args.peak_tflops is not None else None
        if args.gpu is not None:
            found = find_peak(args.gpu)
            if found is None:
                raise ValueError(f"--gpu {args.gpu!r} is not in the peak table ({', '.join(p.name for p in PEAKS)}): "
                                 "give --peak-tflops")
            peak, why = device_peak(found.name, args.amp)
            if peak is None:
                raise ValueError(f"--gpu {args.gpu!r} --amp {args.amp}: {why}")
    except ValueError as err:
        parser.error(str(err))
    if args.studies:
        planned = {path.parent.name: plan_study(path) for path in args.studies}
        presets, args.seeds = list(planned), 1
    else:
        planned = {name: plan_preset(name) for name in presets}
    needed = sorted({p.model for plans, _ in planned.values() for p in plans if p.model in MODELS})
    rates: dict[str, Rate] = {}
    if default_ips is not None or per_model:
        for name in needed:
            ips = per_model.get(name, default_ips)
            if ips is not None:
                rates[name] = Rate(ips, args.eval_images_per_s, "assumed (--images-per-s)")
    elif peak is not None:
        rates = rates_from_peak(needed, peak, args.utilization, args.gpu or "--peak-tflops")
    else:
        path = args.throughput or RESULTS_DIR / "throughput.json"
        if not args.measure and path.is_file():
            measured = json.loads(path.read_text())
            rates, peak = rates_from_throughput(measured), measured.get("peak_tflops")
        else:
            if args.throughput is not None and not args.measure:
                parser.error(f"--throughput {str(args.throughput)!r} does not exist: run "
                             "`python -m superconv.bench throughput` first, or pass --measure")
            measured = throughput(needed, device=resolve_device("auto"), amp=args.amp)
            rates, peak = rates_from_throughput(measured), measured["peak_tflops"]
    report = {**budget(presets, rates, args.seeds, peak, planned), "studies": bool(args.studies)}
    report["rates"] = {name: asdict(rate) for name, rate in rates.items()}
    write_json(args.out, report)
    print(render(report, args.markdown))
    return report


if __name__ == "__main__":
    main()
