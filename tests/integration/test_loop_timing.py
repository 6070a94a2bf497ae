"""The loop's wall_s against an outside clock, for a run that ends between two checkpoints.

A bug once lost the last segment (from the last checkpoint to the end) whenever the run length was not a
multiple of trainer.checkpoint_every, so summary.json over-reported images/s; this pins the accounting.
"""

from __future__ import annotations

import time

import torch

from superconv.common.tracking import Tracker
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import load_prepared
from superconv.core.engine import FP32, Trainable, classification_step, held_out
from superconv.core.loop import Checkpointing, DivergenceGuard, LoopSettings, run_loop
from superconv.core.schedules import range_ramp
from tests.synthetic import conf_model


def test_wall_s_counts_every_segment_and_the_final_save(tmp_path, data_root) -> None:
    torch.manual_seed(0)
    prepared = load_prepared(data_root / "digits")
    train = DeviceData(prepared.train, torch.device("cpu"), input_scale=1 / 256)
    test = DeviceData(prepared.test, torch.device("cpu"), input_scale=1 / 256)
    model = conf_model("lenet", "digits")
    trainable = Trainable(model, model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), FP32)
    schedule = range_ramp("linear", 0.01, 0.02, 33, 0.9)
    settings = LoopSettings(iterations=33, iterations_per_epoch=10.0, batch=64, eval_every=10, log_every=5,
                            checkpoint_every=20, progress=False, desc="timing")
    started = time.perf_counter()
    result = run_loop(trainable, schedule, classification_step(trainable, train, 64), held_out(trainable, test, 300),
                      settings, DivergenceGuard(None), Tracker(), Checkpointing(tmp_path / "checkpoint.pt"))
    outside = time.perf_counter() - started
    assert result.iterations == 33 and (tmp_path / "checkpoint.pt").is_file()
    # Everything between the loop's first and last clock reading is inside wall_s; the only time outside it is
    # the loop's set-up (a dataclass and a disabled tqdm bar), so the two clocks agree to a few percent.
    assert 0.9 * outside <= result.wall_s <= outside, (result.wall_s, outside)
    assert 0 < result.eval_s < result.wall_s
