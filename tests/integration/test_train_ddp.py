"""pipelines/train.py under torchrun with gloo: 2 processes on one node, and 2 loopback "nodes" of one process
each (c10d rendezvous), train like one process with the same total batch and log one MLflow run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, TINY, run_cli

# Flip augmentation on: its draws are made per global batch, so they too must not depend on the world size.
RUN = [*TINY, "schedule=one_cycle", "seed=5", "augment=flip", "trainer.max_iterations=40", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def single(tmp_path_factory, data_root) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("single")
    run_cli(["python", "pipelines/train.py", *RUN, f"out={out}", f"data_root={data_root}", "tracking.enabled=false"])
    return pd.read_csv(out / "metrics.csv")


def assert_same_training(one: pd.DataFrame, two: pd.DataFrame) -> None:
    assert len(one) == len(two) == 40
    # Each rank averages its half of the batch and DDP averages the gradients: the same update, summed
    # in another order, so the curves agree to float tolerance, not bit for bit; the 1cycle peak LR
    # amplifies the rounding differences over the 40 iterations.
    np.testing.assert_allclose(two["train_loss"].iloc[:10], one["train_loss"].iloc[:10], rtol=1e-5)
    np.testing.assert_allclose(two["train_loss"], one["train_loss"], rtol=1e-2)
    assert two["train_loss"].iloc[-5:].mean() < two["train_loss"].iloc[:5].mean() / 2, "it learned"
    one_acc, two_acc = one["test_acc"].dropna().to_numpy(), two["test_acc"].dropna().to_numpy()
    assert len(one_acc) == len(two_acc) == 4
    np.testing.assert_allclose(two_acc, one_acc, atol=0.34)  # at most one of the 300 test images differs


def assert_one_run(uri: str, study: str, out: Path) -> None:
    summary = json.loads((out / "summary.json").read_text())
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("superconv")
    parent = client.search_runs([exp.experiment_id], f"tags.`superconv.role` = 'study' and "
                                f"tags.`superconv.study` = '{study}'")
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    assert len(parent) == 1 and [c.info.run_id for c in children] == [summary["tracking_run_id"]]
    assert len(client.get_metric_history(summary["tracking_run_id"], "train_loss")) == 40, "only rank 0 logs"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.yaml", "metrics.csv", "provenance.json",
                                                        "summary.json"]


def test_two_gloo_ranks_on_one_node(single, tmp_path, data_root, mlflow_uri) -> None:
    run_cli(["torchrun", "--standalone", "--nproc_per_node=2", "pipelines/train.py", *RUN, f"out={tmp_path}",
             f"data_root={data_root}", "study=test_train_ddp"])
    assert_same_training(single, pd.read_csv(tmp_path / "metrics.csv"))
    assert_one_run(mlflow_uri, "test_train_ddp", tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_loopback_nodes_with_c10d_rendezvous(single, tmp_path, data_root, mlflow_uri) -> None:
    """The README's multi-node command with --nnodes=2 on 127.0.0.1: one process per "node"."""
    endpoint = f"127.0.0.1:{free_port()}"
    torchrun = Path(sys.executable).parent / "torchrun"
    nodes = [subprocess.Popen([str(torchrun), "--nnodes=2", "--nproc_per_node=1", f"--node_rank={node}",
                               "--rdzv_backend=c10d", "--rdzv_id=superconv-test", f"--rdzv_endpoint={endpoint}",
                               "pipelines/train.py", *RUN, f"out={tmp_path}", f"data_root={data_root}",
                               "study=test_train_multinode"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for node in range(2)]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert_same_training(single, pd.read_csv(tmp_path / "metrics.csv"))
    assert_one_run(mlflow_uri, "test_train_multinode", tmp_path)
