"""Numbers both a training run and the report derive from an evaluation curve, defined once."""

from __future__ import annotations

import pandas as pd


def iterations_to_target(evals: pd.DataFrame, target: float) -> float | None:
    """First evaluated iteration count (updates done) whose test accuracy reaches ``target``."""
    hit = evals[evals["test_acc"] >= target]
    return float(hit["iteration"].iloc[0] + 1) if len(hit) else None
