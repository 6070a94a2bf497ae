"""`torchrun --nproc_per_node=2 pipelines/train.py` with gloo: the same curve as one process, one MLflow run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

# Flip augmentation on: its draws are made per global batch, so they too must not depend on the world size.
RUN = [*TINY, "schedule=one_cycle", "seed=5", "augment=flip", "trainer.max_iterations=40", "trainer.device=cpu"]


def test_two_gloo_ranks_train_like_one_process_and_log_one_run(tmp_path, cli, data_root, mlflow_uri) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    cli(["python", "pipelines/train.py", *RUN, f"out={single}", f"data_root={data_root}", "tracking.enabled=false"])
    cli(["torchrun", "--standalone", "--nproc_per_node=2", "pipelines/train.py", *RUN, f"out={ddp}",
         f"data_root={data_root}", "study=test_train_ddp"])
    one, two = pd.read_csv(single / "metrics.csv"), pd.read_csv(ddp / "metrics.csv")
    assert len(one) == len(two) == 40
    # Each rank averages its half of the batch and DDP averages the gradients: the same update, summed
    # in another order, so the curves agree to float tolerance, not bit for bit.
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=2e-3, atol=1e-4)
    assert two["train_loss"].iloc[-5:].mean() < two["train_loss"].iloc[:5].mean() / 2, "it learned"
    one_acc, two_acc = one["test_acc"].dropna().to_numpy(), two["test_acc"].dropna().to_numpy()
    assert len(one_acc) == len(two_acc) == 4
    np.testing.assert_allclose(two_acc, one_acc, atol=0.34)  # at most one of the 300 test images differs
    summary = json.loads((ddp / "summary.json").read_text())
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("superconv")
    parent = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study' and "
                                "tags.`superconv.study` = 'test_train_ddp'")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    assert len(parent) == 1 and [c.info.run_id for c in children] == [summary["tracking_run_id"]]
    assert len(client.get_metric_history(summary["tracking_run_id"], "train_loss")) == 40, "rank 1 logged nothing"
    assert sorted(p.name for p in ddp.iterdir()) == ["checkpoint.pt", "metrics.csv", "summary.json"]
