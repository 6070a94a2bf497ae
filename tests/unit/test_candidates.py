"""Every run as a candidate explanation of a failed row: read by config diff (not by name), ranked by distance
from the published value, the single change that reaches the published spread named."""

from __future__ import annotations

import yaml

from superconv.report.candidates import candidate_rows, candidates_markdown, config_changes
from superconv.report.reference import load_reference
from superconv.report.results import load_study_runs
from superconv.report.tables import accuracy_table
from tests.report_data import write_run

MNIST = "paper_mnist_lenet"
RECIPE = {"schedule": {"policy": "one_cycle", "max_lr": 0.1, "momentum_min": 0.8}, "optimizer": {"weight_decay": 5e-4},
          "trainer": {"total_batch": 512}, "recipe": {"one_cycle": {"max_lr": 0.1}}, "out": "x"}


def _run(root, name: str, finals: list[float], **changes) -> None:
    for seed, final in enumerate(finals):
        out = write_run(root, name, seed, [97.0, final], experiment=MNIST)
        config = {**{k: dict(v) if isinstance(v, dict) else v for k, v in RECIPE.items()}, "seed": seed,
                  "out": str(out)}
        for key, value in changes.items():
            group, leaf = key.split("__")
            config[group][leaf] = value[seed] if isinstance(value, list) else value
        (out / "config.yaml").write_text(yaml.safe_dump(config))


def test_candidates_rank_every_run_by_its_config_diff(tmp_path) -> None:
    """one_cycle (99.10 over 3 seeds) fails the published 99.25 ± 0.03. Three other runs, named so their names say
    nothing: a momentum change lands on 99.25 (within the spread: a single change), a max_lr change (two keys, one
    also in the recipe table that only feeds it) lands at 99.18, a per-seed batch change at 99.05."""
    _run(tmp_path, "one_cycle", [99.10, 99.08, 99.12])
    _run(tmp_path, "a", [99.25, 99.24, 99.26], schedule__momentum_min=0.95)
    _run(tmp_path, "b", [99.18, 99.17, 99.19], schedule__max_lr=0.3, optimizer__weight_decay=1e-4)
    _run(tmp_path, "c", [99.05, 99.04, 99.06], trainer__total_batch=[524, 520, 512])
    runs, ref = load_study_runs(tmp_path), load_reference()
    assert config_changes(runs, "b", "one_cycle") == ["optimizer.weight_decay: 0.0005 -> 0.0001",
                                                      "schedule.max_lr: 0.1 -> 0.3"]
    assert config_changes(runs, "c", "one_cycle") == ["trainer.total_batch: 512 -> 524 | 512 -> 520"]
    frame = candidate_rows(ref, runs, accuracy_table(runs, ref))
    mine = frame[frame["row"] == f"{MNIST}/one_cycle"]
    assert list(mine["run"]) == ["a", "b", "c"]
    first = mine.iloc[0]
    assert first["n_changes"] == 1 and first["within_spread"] and first["matches"]
    assert first["effect_ci_low"] > 0 and first["vs_published_ci_low"] < 0 < first["vs_published_ci_high"]
    assert not mine.iloc[1]["within_spread"]
    text = candidates_markdown(frame, ref)
    assert ("A single change brings our number within the published spread (99.25 ± 0.03): **a** (99.25 over 3 "
            "seeds; `schedule.momentum_min: 0.8 -> 0.95`)") in text
    assert "| c | 3 | 99.05 |" in text and "trainer.total_batch: 512 -> 524 / 512 -> 520" in text
