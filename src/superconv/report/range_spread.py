"""A range test over several seeds: each rule's suggestion as median and min-max, the chosen LR from the median.

One range test's suggestion moves with the seed and the machine (the same config stopped at iteration 929 of
1000 on another machine and suggested 0.27 instead of 0.35; users of other LR finders report the same, fastai
issue 3295, neural_prophet issue 892), so a study runs k seeds and reports the spread. The median suggestion is
written as an ordinary suggestion.json, so ``lr_from=`` training takes the median.

    python pipelines/range_spread.py results/range_test/<experiment> results/range_spread/<experiment>
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from superconv.common.io import write_json
from superconv.common.plots import save_figure, seaborn

sns = seaborn()

# Rules whose medians differ by more than this factor disagree: the report says so.
DISAGREEMENT = 2.0
# suggestion.json keys that describe how the test ran; identical across seeds of one study.
SETTINGS = ("protocol", "start_lr", "end_lr", "iterations_planned", "eval_every", "eval_size", "momentum",
            "smooth_beta", "stop_factor", "diverge_factor", "min_lr_divisor", "method", "dataset", "model",
            "model_parameters", "total_batch", "weight_decay", "dataset_source", "dataset_sha256")


def _range(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def spread(found: list[dict[str, Any]]) -> dict[str, Any]:
    """The seeds' suggestions combined: every rule's median and min-max, the chosen rule's median as max_lr.

    A rule that found no value for a seed is counted (``found`` k of n), not averaged. Raises ValueError when the
    seeds were not run with one setting, or the chosen rule found no value for any of them.
    """
    if not found:
        raise ValueError("no range-test results to combine")
    differing = [k for k in SETTINGS if len({json.dumps(s.get(k)) for s in found}) > 1]
    if differing:
        raise ValueError(f"the range tests differ in {', '.join(differing)}: combine seeds of one setting only")
    first = found[0]
    rules: dict[str, Any] = {}
    for rule in first["rules"]:
        values = [s["rules"][rule] for s in found if s["rules"].get(rule) is not None]
        rules[rule] = {**(_range(values) if values else {"median": None, "min": None, "max": None, "values": []}),
                       "found": len(values)}
    chosen = rules[first["method"]]
    if chosen["median"] is None:
        raise ValueError(f"rule {first['method']!r} found no value for any seed")
    medians = {r: v["median"] for r, v in rules.items() if v["median"]}
    ratio = max(medians.values()) / min(medians.values())
    diverged = [s["diverged_lr"] for s in found if s.get("diverged_lr") is not None]
    max_lr = chosen["median"]
    return {
        **{k: first.get(k) for k in SETTINGS},
        "seeds": [s.get("seed") for s in found],
        "max_lr": max_lr,
        "min_lr": max_lr / first["min_lr_divisor"],
        "rules": {r: v["median"] for r, v in rules.items()},
        "spread": rules,
        "diverged_lr": _range(diverged) if diverged else None,
        "diverged_seeds": len(diverged),
        "iterations_run": _range([s["iterations_run"] for s in found]),
        "rules_ratio": ratio,
        "rules_disagree": ratio > DISAGREEMENT,
        "warnings": sorted({w for s in found for w in s.get("warnings", [])}),
    }


def spread_sentence(found: dict[str, Any]) -> str:
    """The report's words for a combined range test: each rule's median [min-max], and whether they disagree."""
    n = len(found["seeds"])
    parts = []
    for rule, v in found["spread"].items():
        if v["median"] is None:
            parts.append(f"{rule}: no value on any seed")
            continue
        seen = f", {v['found']} of {n} seeds" if v["found"] < n else ""
        parts.append(f"{rule} {v['median']:.3g} [{v['min']:.3g}–{v['max']:.3g}{seen}]")
    text = (f"Over {n} seeds, each rule's suggested max_lr, median [min–max]: {'; '.join(parts)}. The chosen rule "
            f"({found['method']}) gives max_lr = {found['max_lr']:.4g} (the median), min_lr = {found['min_lr']:.4g}.")
    if found["rules_disagree"]:
        text += (f" **The rules disagree by a factor of {found['rules_ratio']:.1f}** (more than {DISAGREEMENT:g}): "
                 "the choice of rule matters more than the seed.")
    return text


def spread_figure(curves: dict[int, pd.DataFrame], found: dict[str, Any]) -> plt.Figure:
    """Every seed's curve against LR, the median with a min-max band; each rule's median and min-max span."""
    long = pd.concat([c.assign(seed=s) for s, c in curves.items()], ignore_index=True)
    log_x = found["protocol"] == "exponential"
    if log_x:
        long = long[long["lr"] > 0]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    evaluated = long.dropna(subset=["test_acc"])
    for ax, frame, column in ((ax_acc, evaluated, "test_acc"), (ax_loss, long, "smoothed_loss")):
        if frame.empty:
            continue
        sns.lineplot(data=frame, x="lr", y=column, hue="seed", ax=ax, linewidth=0.6, alpha=0.5, legend=False,
                     palette="Greys")
        sns.lineplot(data=frame, x="lr", y=column, ax=ax, estimator="median", errorbar=("pi", 100),
                     linewidth=1.6, label=f"median, min–max band ({len(curves)} seeds)")
    finite = long["smoothed_loss"].replace([float("inf"), float("-inf")], float("nan")).dropna()
    if not finite.empty:
        ax_loss.set_ylim(0, max(float(finite.quantile(0.9)) * 1.6, 1e-3))
    colors = dict(zip(found["spread"], sns.color_palette("dark", len(found["spread"])), strict=True))
    for rule, v in found["spread"].items():
        if v["median"] is None:
            continue
        chosen = rule == found["method"]
        for ax in (ax_acc, ax_loss):
            ax.axvspan(v["min"], v["max"], color=colors[rule], alpha=0.12)
            ax.axvline(v["median"], color=colors[rule], linestyle="-" if chosen else ":",
                       linewidth=2 if chosen else 1.2,
                       label=(f"{rule}{' (chosen)' if chosen else ''}: {v['median']:.3g} "
                              f"[{v['min']:.3g}–{v['max']:.3g}]") if ax is ax_loss else None)
    ax_acc.set_ylabel(f"held-out accuracy (%), {found.get('eval_size') or 0} samples")
    ax_loss.set_ylabel("training loss (smoothed)")
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("learning rate" + (" (log)" if log_x else ""))
        if log_x:
            ax.set_xscale("log")
    ax_loss.legend(fontsize=7)
    fig.suptitle(f"LR range test over {len(curves)} seeds: {found['protocol']} {found['start_lr']:g} → "
                 f"{found['end_lr']:g}, {found['iterations_planned']} iterations")
    fig.tight_layout()
    return fig


def load_range_tests(directories: list[Path]) -> tuple[dict[int, pd.DataFrame], list[dict[str, Any]]]:
    """Curves (by seed) and suggestions of the range-test directories that finished (suggestion.json present)."""
    curves, found = {}, []
    for d in sorted(directories):
        if Path(d, "suggestion.json").is_file() and Path(d, "curve.csv").is_file():
            suggestion = json.loads(Path(d, "suggestion.json").read_text())
            curves[int(suggestion["seed"])] = pd.read_csv(Path(d, "curve.csv"))
            found.append(suggestion)
    return curves, found


def combine(directories: list[Path], out: Path) -> dict[str, Any]:
    """Write ``out``/suggestion.json (the medians: what lr_from reads) and ``out``/range_test.png."""
    curves, found = load_range_tests(directories)
    combined = spread(found)
    write_json(out / "suggestion.json", combined)
    save_figure(spread_figure(curves, combined), out / "range_test.png")
    return combined


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", type=Path, help="a directory whose seed-*/ hold one range test each")
    parser.add_argument("out", type=Path, help="where suggestion.json (the medians) and range_test.png go")
    args = parser.parse_args(argv)
    seeds = sorted(args.tests.glob("seed-*"))
    try:
        combined = combine(seeds, args.out)
    except ValueError as err:
        print(f"error: {args.tests}: {err}", file=sys.stderr)
        return 2
    print(spread_sentence(combined))
    return 0
