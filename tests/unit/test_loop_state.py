"""The loop state a checkpoint carries: rows saved as column tensors come back exactly as the loop wrote them."""

from __future__ import annotations

import math

import torch

from superconv.core.loop import EVAL_COLUMNS, TRAIN_COLUMNS, LoopState

COLUMNS = (*TRAIN_COLUMNS, "smoothed_loss")  # a range test's rows: the loop's columns plus its monitor's


def _state(iterations: int, eval_every: int) -> LoopState:
    state = LoopState(iteration=iterations, eval_s=1.25, wall_s=9.5, monitor={"avg": 1.5, "count": iterations})
    for i in range(iterations):
        state.rows.append({"iteration": i, "epoch": (i + 1) / 7.3, "lr": 0.1 * math.sin(i / 3) ** 2,
                           "momentum": 0.95 - 1e-3 * i, "train_loss": float(torch.tensor(2.3 / (i + 1))),
                           "smoothed_loss": 2.0 / (i + 1), "test_loss": None, "test_acc": None})
        if (i + 1) % eval_every == 0:
            done = {"iteration": i, "test_loss": 1.0 / (i + 1), "test_acc": 10.0 + i}
            state.evaluations.append(done)
            state.rows[-1].update(test_loss=done["test_loss"], test_acc=done["test_acc"])
    return state


def test_rows_round_trip_bit_exactly_through_a_weights_only_checkpoint(tmp_path) -> None:
    state = _state(iterations=23, eval_every=5)
    torch.save({"loop": state.to_checkpoint(COLUMNS)}, tmp_path / "c.pt")
    back = LoopState.from_checkpoint(torch.load(tmp_path / "c.pt", weights_only=True)["loop"])
    assert back == state
    assert [tuple(row) for row in back.rows] == [(*COLUMNS, *EVAL_COLUMNS)] * 23
    assert all(type(row["iteration"]) is int for row in back.rows)
    assert [row["test_acc"] for row in back.rows if row["test_acc"] is not None] == [14.0, 19.0, 24.0, 29.0]


def test_rows_are_saved_as_one_tensor_per_column_not_as_row_dicts() -> None:
    payload = _state(iterations=1000, eval_every=100).to_checkpoint(COLUMNS)
    assert "rows" not in payload
    assert {name: tuple(column.shape) for name, column in payload["columns"].items()} == {
        name: (1000,) for name in COLUMNS}


def test_an_empty_state_round_trips() -> None:
    assert LoopState.from_checkpoint(LoopState().to_checkpoint(COLUMNS)) == LoopState()
