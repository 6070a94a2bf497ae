"""Tiny run results with known values, written by the report tests themselves (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def write_run(root: Path, run: str, seed: int, accs: list[float], every: int = 10, experiment: str = "exp",
              diverged: str | None = None, **extra: object) -> Path:
    """results-style dir <root>/<run>-<seed>/ whose test accuracies after every ``every`` updates are ``accs``."""
    out = Path(root) / f"{run}-{seed}{'-' + str(extra['train_size']) if 'train_size' in extra else ''}"
    out.mkdir(parents=True, exist_ok=True)
    iterations = every * len(accs)
    rows = []
    for i in range(iterations):
        evaluated = (i + 1) % every == 0
        rows.append({"iteration": i, "epoch": (i + 1) / 50, "lr": 0.01 * (1 + i % 7), "momentum": 0.9,
                     "train_loss": 1.0 / (i + 1), "test_loss": 0.1 if evaluated else None,
                     "test_acc": accs[(i + 1) // every - 1] if evaluated else None})
    pd.DataFrame(rows).to_csv(out / "metrics.csv", index=False)
    summary = {"final_test_acc": accs[-1], "best_test_acc": max(accs), "iterations": iterations,
               "epochs": iterations / 50, "wall_s": 1.0, "images_per_s": 1000.0, "diverged": diverged is not None,
               "divergence_reason": diverged, "run": run, "seed": seed, "experiment": experiment, "policy": run,
               "schedule": {"policy": run, "max_lr": 0.1}, "dataset_source": "fixture",
               "tracking_run_id": None, **extra}
    (out / "summary.json").write_text(json.dumps(summary))
    return out
