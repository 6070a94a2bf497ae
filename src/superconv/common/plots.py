"""The figures of one run, drawn by the stages (MLflow artifacts, range_test.png) and by the report alike."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


@functools.cache
def seaborn() -> Any:
    """seaborn, themed once. Imported on first use: with scipy it costs a process seconds, which a run that
    draws nothing (tracking off) or fails its config check should not pay."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return sns


def save_figure(figure: plt.Figure, path: Path) -> None:
    """Write a PNG (directories created) and free the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def run_curves_figure(metrics: pd.DataFrame, title: str) -> plt.Figure:
    """One training run: train loss and test accuracy against iteration, LR on a twin axis."""
    sns = seaborn()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    sns.lineplot(data=metrics, x="iteration", y="train_loss", ax=ax_loss, linewidth=0.8)
    ax_lr = ax_loss.twinx()
    ax_lr.plot(metrics["iteration"], metrics["lr"], color="tab:orange", linewidth=1)
    ax_lr.set_ylabel("learning rate", color="tab:orange")
    ax_lr.grid(False)
    evaluated = metrics.dropna(subset=["test_acc"])
    sns.lineplot(data=evaluated, x="iteration", y="test_acc", ax=ax_acc, marker="o", markersize=3)
    ax_acc.set_ylabel("test accuracy (%)")
    fig.suptitle(title)
    return fig


def range_test_figure(curve: pd.DataFrame, found: dict[str, Any]) -> plt.Figure:
    """Range test: held-out accuracy and training loss against LR, each rule's suggestion and divergence marked.

    The LR axis is logarithmic for the exponential protocol (lr=0 points dropped) and linear for the
    linear one. The loss axis is scaled to the smoothed loss before divergence, so the blow-up (and raw
    spikes) do not flatten the part of the curve the rules read.
    """
    sns = seaborn()
    log_x = found["protocol"] == "exponential"
    curve = curve[curve["lr"] > 0] if log_x else curve
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    evaluated = curve.dropna(subset=["test_acc"])
    if evaluated.empty:
        ax_acc.text(0.5, 0.5, "not evaluated (range_test.eval_every=null)", ha="center", va="center",
                    transform=ax_acc.transAxes)
    else:
        sns.lineplot(data=evaluated, x="lr", y="test_acc", ax=ax_acc, marker="o", markersize=3)
    ax_acc.set_ylabel(f"held-out accuracy (%), {found.get('eval_size') or 0} samples")
    sns.lineplot(data=curve, x="lr", y="train_loss", ax=ax_loss, linewidth=0.6, alpha=0.4, label="raw")
    sns.lineplot(data=curve, x="lr", y="smoothed_loss", ax=ax_loss, linewidth=1.5, label="smoothed (EMA 0.98)")
    ax_loss.set_ylabel("training loss")
    diverged = found.get("diverged_lr")
    stable = curve[curve["lr"] < diverged] if diverged is not None else curve
    finite = stable["smoothed_loss"].replace([float("inf"), float("-inf")], float("nan")).dropna()
    if not finite.empty:
        ax_loss.set_ylim(0, max(float(finite.max()) * 1.6, 1e-3))
    colors = dict(zip(found["rules"], sns.color_palette("dark", len(found["rules"])), strict=True))
    for rule, lr in found["rules"].items():
        if lr is None:
            continue
        chosen = rule == found["method"]
        for ax in (ax_acc, ax_loss):
            ax.axvline(lr, color=colors[rule], linestyle="-" if chosen else ":", linewidth=2 if chosen else 1.2,
                       label=f"{rule}{' (chosen)' if chosen else ''}: {lr:.3g}" if ax is ax_loss else None)
    if diverged is not None:
        for ax in (ax_acc, ax_loss):
            ax.axvline(diverged, color="red", linewidth=1.5,
                       label=f"diverged: {diverged:.3g}" if ax is ax_loss else None)
    for ax in (ax_acc, ax_loss):
        ax.set_xlabel("learning rate" + (" (log)" if log_x else ""))
        if log_x:
            ax.set_xscale("log")
    ax_loss.legend(fontsize=8)
    fig.suptitle(f"LR range test, {found['protocol']} {found['start_lr']:g} -> {found['end_lr']:g} "
                 f"({found['iterations_run']}/{found['iterations_planned']} it); chosen {found['method']}: "
                 f"max_lr={found['max_lr']:.3g}, min_lr={found['min_lr']:.3g}", fontsize=10)
    return fig
