"""Every experiment preset x every policy of its recipe trains for 2 iterations in-process, on synthetic data in
each source's real format (CIFAR pickle archives, MNIST IDX files, an ImageFolder of JPEGs, sklearn digits) that
the real prepare stage turned into prepared datasets. Catches a preset that composes but cannot run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import DictConfig

from superconv.stages.compose import CONF_DIR, compose_stage_config
from superconv.stages.train import train_stage
from tests import synthetic
from tests.synthetic import prepare, raw_sources

PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SUBSET = 20  # a limited-data preset's training subset of the 40 synthetic CIFAR-10 images (2 per class)
# Per dataset: the overrides that describe the synthetic set (prepare and train alike).
DATASETS = {
    "cifar10": ["dataset.full_train_size=40"],
    "cifar100": ["dataset.full_train_size=200"],
    "mnist": ["dataset.train_size=40"],
    "digits": [],
    # 10 classes x 2 images (1 val image each), 32 px: the smallest input ResNet-50 takes
    "imagenet_subset": ["dataset.images_per_class=2", "dataset.train_size=20", "dataset.image_size=32"],
}
# One thread: on 2 busy cores two threads spin against each other and a ResNet-56 step takes seconds, not 0.1 s.
TINY_RUN = ["trainer.max_iterations=2", "trainer.total_batch=10", "trainer.eval_batch=10", "trainer.eval_every=2",
            "tracking.enabled=false", "trainer.progress=false", "trainer.device=cpu", "trainer.log_every=1",
            "trainer.threads=1"]


def _root_override(name: str, raw: Path) -> list[str]:
    return [] if name == "digits" else [f"dataset.root={raw / name}", "dataset.download=false"]


@pytest.fixture(scope="module", autouse=True)
def _restore_threads():
    """trainer.threads sets torch's process-wide thread count: give the next module its own back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic raw data for every dataset a preset uses, prepared once (plus the limited-data subset)."""
    tmp = tmp_path_factory.mktemp("presets")
    raw = tmp / "raw"
    # The same synthetic pixels whichever module ran before in this worker (tests.synthetic draws from one module
    # RNG): after test_prepare_sources had drawn from it, ResNet-110's multistep run went NaN in 2 iterations.
    synthetic.rng = np.random.default_rng(0)
    raw_sources(raw, (40, 10), "imagenet_subset")
    for name, overrides in DATASETS.items():
        prepare(tmp, [f"dataset={name}", *_root_override(name, raw), *overrides])
    prepare(tmp, ["dataset=cifar10", *_root_override("cifar10", raw), *DATASETS["cifar10"],
                  f"dataset.train_size={SUBSET}"])
    return tmp


@pytest.fixture(scope="module", autouse=True)
def _no_curves_figure():
    """Each run draws its curves (0.4 s of seaborn, a third of a LeNet run here); figures have their own tests."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("superconv.common.plots.run_curves_figure", lambda frame, title: plt.figure())
        yield


def _dataset_overrides(dataset: DictConfig) -> list[str]:
    """The synthetic set's overrides for the preset's dataset; a training subset stays a subset."""
    overrides = list(DATASETS[dataset.name])
    if "full_train_size" in dataset and dataset.train_size < dataset.full_train_size:
        overrides.append(f"dataset.train_size={SUBSET}")
    return overrides


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_policy_of_the_preset_trains_two_iterations(workdir: Path, preset: str) -> None:
    composed = compose_stage_config("train", [f"experiment={preset}"])
    dataset, policies = _dataset_overrides(composed.dataset), sorted(composed.recipe)
    assert policies, f"{preset} has no recipe"
    for policy in policies:
        out = workdir / "runs" / preset / policy
        cfg = compose_stage_config("train", [f"experiment={preset}", f"schedule={policy}", *TINY_RUN, *dataset,
                                             f"data_root={workdir / 'prepared'}", f"out={out}"])
        summary = train_stage(cfg, policy, experiment=preset)
        metrics = pd.read_csv(out / "metrics.csv")
        assert len(metrics) == 2, (preset, policy)
        losses = [*metrics["train_loss"], metrics["test_loss"].iloc[-1]]
        assert all(math.isfinite(x) for x in losses), (preset, policy, losses)
        written = json.loads((out / "summary.json").read_text())
        assert written["policy"] == summary["policy"] == policy
        assert (written["experiment"], written["iterations"], written["diverged"]) == (preset, 2, False)
