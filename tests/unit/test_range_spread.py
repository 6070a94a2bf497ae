"""The range test over seeds: each rule's median and min-max, the chosen LR from the median, disagreement flagged."""

from __future__ import annotations

import pytest

from superconv.report.range_spread import DISAGREEMENT, spread, spread_sentence


def one(seed: int, rules: dict, diverged: float | None = None, **changed) -> dict:
    return {"seed": seed, "method": "valley", "max_lr": rules["valley"], "min_lr_divisor": 10, "rules": rules,
            "diverged_lr": diverged, "iterations_run": 1000 if diverged is None else 929,
            "protocol": "linear", "start_lr": 0.0, "end_lr": 0.5, "iterations_planned": 1000,
            "eval_every": 20, "eval_size": 2000, "momentum": 0.9, "smooth_beta": 0.98, "stop_factor": None,
            "diverge_factor": 4.0, "dataset": "mnist", "model": "LeNet", "total_batch": 512,
            "weight_decay": 5e-4, "warnings": [], **changed}


def test_median_and_range_per_rule_and_the_chosen_median() -> None:
    found = spread([one(0, {"valley": 0.20, "steepest": 0.05}), one(1, {"valley": 0.35, "steepest": 0.47}, 0.45),
                    one(2, {"valley": 0.27, "steepest": None})])
    assert found["spread"]["valley"] == {"median": 0.27, "min": 0.20, "max": 0.35, "values": [0.20, 0.35, 0.27],
                                         "found": 3}
    assert found["spread"]["steepest"]["found"] == 2 and found["spread"]["steepest"]["median"] == pytest.approx(0.26)
    assert found["max_lr"] == 0.27 and found["min_lr"] == pytest.approx(0.027)
    assert found["seeds"] == [0, 1, 2] and found["diverged_seeds"] == 1
    assert found["iterations_run"]["min"] == 929
    assert not found["rules_disagree"]  # 0.27 vs 0.26
    assert "steepest 0.26 [0.05–0.47, 2 of 3 seeds]" in spread_sentence(found)


def test_rules_more_than_a_factor_two_apart_disagree() -> None:
    found = spread([one(s, {"valley": 0.3, "min_loss_div10": 0.3 / (DISAGREEMENT + 0.1)}) for s in range(3)])
    assert found["rules_disagree"] and "The rules disagree by a factor of 2.1" in spread_sentence(found)


def test_seeds_of_different_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="end_lr"):
        spread([one(0, {"valley": 0.3}), one(1, {"valley": 0.3}, end_lr=1.0)])


def test_the_chosen_rule_must_find_a_value_on_some_seed() -> None:
    with pytest.raises(ValueError, match="'valley' found no value"):
        spread([one(0, {"valley": None, "steepest": 0.1})])
