"""The range test under real DDP (2 gloo processes): every rank records the same curve and stops together."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf
from torch.nn.parallel import DistributedDataParallel

from superconv.common.tracking import Tracker
from superconv.core.data.loader import DeviceData
from superconv.core.data.prepared import load_prepared
from superconv.core.engine import FP32, Trainable, classification_step
from superconv.core.range_test import run_range_test
from superconv.stages.compose import compose_stage_config
from superconv.stages.training import build_model
from tests.conftest import TINY


def _rank_main(rank: int, world: int, rendezvous: str, data_root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        cfg = compose_stage_config("range_test", [*TINY, "range_test=exponential",
                                                  "range_test.exponential.end_lr=50"])
        torch.manual_seed(0)
        train = DeviceData(load_prepared(Path(data_root) / "digits").train, torch.device("cpu"), input_scale=1 / 256)
        model = build_model(OmegaConf.to_container(cfg.model, resolve=True))
        step_model = DistributedDataParallel(model)
        trainable = Trainable(model, step_model, torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9), FP32)
        result = run_range_test(cfg.range_test, trainable, classification_step(trainable, train, 128), None,
                                Tracker(), progress=False)
        Path(out, f"rank{rank}.json").write_text(json.dumps({
            "losses": [row["train_loss"] for row in result.rows], "diverged_lr": result.diverged_lr,
            "planned": cfg.range_test.iterations}))
    finally:
        dist.destroy_process_group()


def test_ranks_agree_on_the_curve_and_the_stop(tmp_path, data_root) -> None:
    mp.spawn(_rank_main, args=(2, str(tmp_path / "rendezvous"), str(data_root), str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["losses"] == ranks[1]["losses"], "the loss is averaged over ranks"
    assert ranks[0]["diverged_lr"] is not None and ranks[0]["diverged_lr"] == ranks[1]["diverged_lr"]
    assert len(ranks[0]["losses"]) < ranks[0]["planned"], "both ranks stopped early, at the same iteration"
