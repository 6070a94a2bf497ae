"""The report's seaborn figures, one function each (a single run's figures are in ``superconv.common.plots``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from superconv.common.plots import seaborn  # noqa: E402

sns = seaborn()
POLICY_LABELS = {"one_cycle": "1cycle", "inv": "inv (Caffe)", "multistep": "piecewise constant",
                 "triangular": "CLR triangular", "step": "step"}


def _label(run: str) -> str:
    return POLICY_LABELS.get(run, run)


def accuracy_vs_iteration_figure(evals: pd.DataFrame, published: dict[str, float] | None = None) -> plt.Figure:
    """Test accuracy against iteration per run: mean line, band = min..max over seeds (Fig 1a analogue).

    ``published`` maps run -> the paper's final accuracy, drawn as dashed lines on the zoomed panel.
    """
    fig, (ax_full, ax_zoom) = plt.subplots(1, 2, figsize=(12, 4.5))
    frame = evals.assign(policy=evals["run"].map(_label))
    order = list(dict.fromkeys(frame["policy"]))
    palette = dict(zip(order, sns.color_palette("deep", len(order)), strict=True))
    for ax in (ax_full, ax_zoom):
        sns.lineplot(data=frame, x="iteration", y="test_acc", hue="policy", hue_order=order, palette=palette,
                     errorbar=("pi", 100), ax=ax)
        ax.set_ylabel("test accuracy (%)")
    final = frame.groupby("policy")["test_acc"].max()
    low, high = final.min() - 1.0, final.max() + 0.2
    for run, value in (published or {}).items():
        if _label(run) in palette:
            ax_zoom.axhline(value, color=palette[_label(run)], linestyle="--", linewidth=1,
                            label=f"{_label(run)}: paper {value:.2f}")
            low, high = min(low, value - 0.3), max(high, value + 0.2)
    ax_zoom.set_ylim(max(low, 0), min(high, 100))
    ax_zoom.legend(fontsize=8)
    ax_zoom.set_title("zoom on the final accuracies (dashed: published)")
    ax_full.set_title("test accuracy (mean; band = range over seeds)")
    return fig


def schedules_figure(schedules: pd.DataFrame) -> plt.Figure:
    """LR and momentum against iteration for each policy, as the runs applied them."""
    fig, (ax_lr, ax_m) = plt.subplots(1, 2, figsize=(12, 4))
    frame = schedules.assign(policy=schedules["run"].map(_label))
    sns.lineplot(data=frame, x="iteration", y="lr", hue="policy", ax=ax_lr)
    sns.lineplot(data=frame, x="iteration", y="momentum", hue="policy", ax=ax_m)
    ax_lr.set_title("learning rate")
    ax_m.set_title("momentum")
    return fig


def limited_data_figure(ours: pd.DataFrame, published: pd.DataFrame) -> plt.Figure:
    """Final accuracy against training-set size per run (Table 1 analogue): ours mean ± std, paper as hollow marks.

    ``ours``: base_run, train_size, final_test_acc (one row per seed); ``published``: base_run, train_size, mean.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    runs = list(dict.fromkeys([*ours["base_run"], *published["base_run"]]))
    palette = dict(zip(runs, sns.color_palette("deep", len(runs)), strict=True))
    sns.lineplot(data=ours, x="train_size", y="final_test_acc", hue="base_run", hue_order=runs, palette=palette,
                 errorbar="sd", marker="o", err_style="bars", ax=ax)
    for run, group in published.groupby("base_run"):
        ax.plot(group["train_size"], group["mean"], linestyle=":", marker="o", markerfacecolor="none",
                color=palette[run], label=f"{run} (paper)")
    ax.set_xlabel("training images")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title("accuracy by training-set size (ours: mean ± std; dotted: published)")
    ax.legend(fontsize=8)
    return fig


def accuracy_vs_epochs_figure(ours: pd.DataFrame, published: pd.DataFrame) -> plt.Figure:
    """Final accuracy against epochs per schedule family, one panel per table (Table 2 analogue).

    Both frames carry title, family, epochs and mean/std (ours: our runs; published: the paper's rows).
    """
    titles = list(dict.fromkeys(ours["title"]))
    families = list(dict.fromkeys([*published["family"], *ours["family"]]))
    palette = dict(zip(families, sns.color_palette("deep", len(families)), strict=True))
    fig, axes = plt.subplots(1, len(titles), figsize=(6 * len(titles), 4.5), squeeze=False)
    for ax, title in zip(axes[0], titles, strict=True):
        for family in families:
            pub = published[(published["title"] == title) & (published["family"] == family)].sort_values("epochs")
            mine = ours[(ours["title"] == title) & (ours["family"] == family)].sort_values("epochs")
            if len(pub):
                ax.errorbar(pub["epochs"], pub["mean"], yerr=pub["std"].fillna(0), linestyle=":", marker="o",
                            markerfacecolor="none", color=palette[family], capsize=3, label=f"{family} (paper)")
            if len(mine):
                ax.errorbar(mine["epochs"], mine["mean"], yerr=mine["std"].fillna(0), linestyle="none",
                            marker="s", color=palette[family], capsize=3, label=f"{family} (ours)")
        ax.set_xscale("log")
        ax.set_xlabel("epochs")
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    return fig


def published_comparison_figure(rows: pd.DataFrame) -> plt.Figure:
    """Ours (mean, 95% CI) beside the published value (± std), the authors' log and an independent reproduction,
    one line per reproduced row."""
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    y = range(len(rows))
    ci_low = (rows["ours_mean"] - rows["ci95_low"]).fillna(0)
    ci_high = (rows["ci95_high"] - rows["ours_mean"]).fillna(0)
    colors = sns.color_palette("deep", 4)
    ax.errorbar(rows["ours_mean"], y, xerr=[ci_low, ci_high], linestyle="none", marker="s", capsize=3,
                color=colors[0], label="ours (mean, 95% CI)")
    pub = rows["published_mean"].astype(float)
    ax.errorbar(pub, y, xerr=rows["published_std"].astype(float).fillna(0), linestyle="none", marker="o",
                markerfacecolor="none", capsize=3, color=colors[1], label="published (± std)")
    ax.plot(rows["authors_log"].astype(float), list(y), linestyle="none", marker="x", color=colors[2],
            label="authors' log")
    if "independent_mean" in rows and rows["independent_mean"].notna().any():
        ax.plot(rows["independent_mean"].astype(float), list(y), linestyle="none", marker="D", markersize=5,
                color=colors[3], label="independent reproduction")
    ax.set_yticks(list(y), rows["label"])
    ax.invert_yaxis()
    ax.set_xlabel("final test accuracy (%)")
    ax.set_title("our runs against the published numbers")
    ax.legend(fontsize=8, loc="best")
    return fig


def effects_figure(rows: pd.DataFrame, title: str, reference: dict[str, float] | None = None) -> plt.Figure:
    """One line per compared run: an effect in pp with its 95% CI (a forest plot), 0 marked, and optional reference
    lines (e.g. the gap to the published value a factor would have to close).

    ``rows``: label, effect, effect_ci_low, effect_ci_high, finding (the colour).
    """
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.8))
    y = list(range(len(rows)))
    findings = list(dict.fromkeys(rows["finding"]))
    palette = dict(zip(findings, sns.color_palette("deep", len(findings)), strict=True))
    for finding in findings:
        part = rows[rows["finding"] == finding]
        ys = [y[i] for i, keep in enumerate(rows["finding"] == finding) if keep]
        ax.errorbar(part["effect"], ys, xerr=[(part["effect"] - part["effect_ci_low"]).fillna(0),
                                             (part["effect_ci_high"] - part["effect"]).fillna(0)],
                    linestyle="none", marker="s", capsize=3, color=palette[finding], label=finding)
    ax.axvline(0.0, color="black", linewidth=0.8)
    for name, value in (reference or {}).items():
        ax.axvline(value, color="red", linestyle="--", linewidth=1, label=f"{name}: {value:+.2f} pp")
    ax.set_yticks(y, rows["label"])
    ax.invert_yaxis()
    ax.set_xlabel("effect on final test accuracy (pp), 95% CI")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return fig


def iterations_to_target_figure(speed: pd.DataFrame) -> plt.Figure:
    """Per seed, the iterations each run needed to reach the baseline's mean final accuracy, beside the baseline's
    whole budget (the super-convergence claim as a picture); seeds that never reached it sit at the budget, hollow."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    budget = float(speed["baseline_iterations"].iloc[0])
    reached = speed.dropna(subset=["iterations_to_target"])
    missed = speed[speed["iterations_to_target"].isna()]
    runs = list(dict.fromkeys(speed["run"]))
    # seaborn's jitter draws from NumPy's global RNG: a fixed draw keeps the figure, and report.html that embeds it,
    # byte-identical when the report is rebuilt from the same runs (the caller's RNG state is left as it was).
    state = np.random.get_state()
    np.random.seed(0)
    try:
        sns.stripplot(data=reached, x="iterations_to_target", y="run", order=runs, ax=ax, size=7, jitter=0.15)
    finally:
        np.random.set_state(state)
    if len(missed):
        ax.scatter([budget] * len(missed), [runs.index(r) for r in missed["run"]], marker="o",
                   facecolors="none", edgecolors="black", label="never reached")
    ax.axvline(budget, color="red", linestyle="--", linewidth=1, label=f"baseline budget: {budget:.0f}")
    ax.set_xlim(0, budget * 1.05)
    ax.set_xlabel(f"iterations to {speed['target_acc'].iloc[0]:.2f}% (the baseline's mean final accuracy)")
    ax.set_ylabel("")
    ax.legend(fontsize=8)
    return fig
