"""Every study pipeline (studies/dvc.yaml) end to end under `dvc repro`, in a temp git repo, on tiny synthetic data
in each dataset's official format (CIFAR pickle archives, MNIST IDX files, an ImageNet ImageFolder of JPEGs) and
each study's `ci` profile (SUPERCONV_PROFILE=ci: a few iterations of its policy and baseline). The default study
runs too (the paper report reads it), on the real paper_mnist_lenet preset with `+profile=ci`. The committed
pipeline is unchanged: only params (which data to prepare) differ from a user's checkout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, project_repo, run_cli
from tests.synthetic import raw_sources

pytestmark = pytest.mark.slow

STUDIES = yaml.safe_load((ROOT / "studies/params.yaml").read_text())["studies"]
DEFAULT = {"experiment": "paper_mnist_lenet", "dataset": "mnist", "study": "paper_mnist_lenet",
           "runs": ["one_cycle", "inv"], "seeds": [0], "range_test_seeds": "0", "overrides": "+profile=ci"}
# What to prepare from the synthetic raw files (the committed params name the real datasets' sizes).
SYNTHETIC_DATA = {
    "cifar10": "dataset=cifar10 dataset.full_train_size=40 dataset.download=false",
    "cifar100": "dataset=cifar100 dataset.full_train_size=200 dataset.download=false",
    "cifar10_limited": "-m dataset=cifar10 dataset.full_train_size=40 dataset.download=false dataset.train_size=30,20 "
                       "data_root=data/prepared/cifar10_limited hydra.sweep.dir=data/prepared/cifar10_limited",
    "imagenet_subset": "dataset=imagenet_subset dataset.images_per_class=2 dataset.train_size=20 "
                       "dataset.image_size=32 data_root=data/prepared/imagenet_subset",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = project_repo(tmp_path_factory.mktemp("studies") / "project", DEFAULT,
                        skip=("reports/", "dvc.lock", "studies/dvc.lock", "results/"))
    params = yaml.safe_load((dest / "studies/params.yaml").read_text())
    assert set(params["datasets"]) == set(SYNTHETIC_DATA), "a dataset of studies/params.yaml needs synthetic data"
    params["datasets"] = SYNTHETIC_DATA
    (dest / "studies/params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # data/raw/ as a user's download (or local copy) leaves it; MNIST at full size, as the presets take it
    raw_sources(dest / "data/raw", (60000, 10000), "imagenet")
    return dest


@pytest.fixture(scope="module")
def reproduced(repo: Path) -> Path:
    """`dvc repro` (the default study, as on a fresh clone), then every study under its `ci` profile."""
    run_cli(["dvc", "repro"], cwd=repo)
    top = {"lock": set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"]),
           "studies_ran": (repo / "studies/dvc.lock").exists() or any((repo / "results").glob("paper_*"))}
    (repo / "top.json").write_text(json.dumps({k: sorted(v) if isinstance(v, set) else v for k, v in top.items()}))
    run_cli(["dvc", "repro", "studies/dvc.yaml"], cwd=repo, env={"SUPERCONV_PROFILE": "ci"})
    return repo


def test_dvc_repro_at_the_top_runs_the_default_study_and_nothing_else(reproduced: Path) -> None:
    top = json.loads((reproduced / "top.json").read_text())
    assert set(top["lock"]) == {"prepare", "range_test", "range_spread", "train@one_cycle-0", "train@inv-0",
                                "train_lr_from_range_test@0", "report"}
    assert not top["studies_ran"]


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_study_ran_its_profile_and_reported_it(reproduced: Path, study: str) -> None:
    spec = yaml.safe_load((ROOT / "studies" / study / "study.yaml").read_text())
    profile = spec["profiles"]["ci"]
    runs = profile.get("only") or list(spec["runs"])
    for run in runs:
        seeds = profile.get("seeds") or spec["runs"][run].get("seeds") or spec["seeds"]
        kind = spec["runs"][run].get("stage", "train")
        for seed in seeds:
            out = reproduced / spec["results"] / f"{run}-{seed}"
            assert (out / ("summary.json" if kind == "train" else "suggestion.json")).is_file(), out
            config = yaml.safe_load((out / "config.yaml").read_text())
            assert config["trainer"]["max_iterations"] == 3 and config["tracking"]["enabled"] is False
    report = reproduced / spec["report"]["out"]
    text = (report / "report.md").read_text()
    assert "No training run of this study has finished yet" not in text and "## Verdicts" in text
    assert json.loads((report / "verdicts.json").read_text())["built_from"] == f"`{spec['results']}`"


def test_the_paper_report_gathers_every_study_and_dvc_is_up_to_date(reproduced: Path) -> None:
    paper = (reproduced / "reports/paper.md").read_text()
    for study in [*STUDIES, DEFAULT["study"]]:
        assert f"]({study}/report.md)" in paper, study
    assert (reproduced / "reports/paper.html").stat().st_size > 1000
    status = run_cli(["dvc", "status", "studies/dvc.yaml"], cwd=reproduced).stdout
    assert "up to date" in status, status
    again = run_cli(["dvc", "repro", "-s", "studies/dvc.yaml:paper"], cwd=reproduced).stdout
    assert "didn't change, skipping" in again, again
