"""Both DVC pipelines of the project in one temp git repo: `dvc repro` of the default study (dvc.yaml, on the tiny
profile), every study pipeline (studies/dvc.yaml) under each study's `ci` profile, then a DVC remote and
`dvc exp run -S` through the experiment queue.

The tests share one reproduced repo (module scope; `--dist loadfile` keeps them on one worker) and run in file
order: the studies pipeline reuses the default study the first test reproduced (the paper report reads it), and
the remote and queue tests reuse the stages the earlier ones cached, so they add little time.

The studies run on tiny synthetic data in each dataset's official format (CIFAR pickle archives, MNIST IDX files,
an ImageNet ImageFolder of JPEGs) and their `ci` profile (SUPERCONV_PROFILE=ci: a few iterations of each study's
policy and baseline). The committed pipelines are unchanged: only params (which data to prepare) differ from a
user's checkout.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, project_repo, run_cli
from tests.synthetic import raw_sources

pytestmark = pytest.mark.slow

TINY_STUDY = {"experiment": "tiny_digits_lenet", "dataset": "digits", "study": "e2e_tiny",
              "runs": ["one_cycle", "inv"], "seeds": [0], "range_test_seeds": "0,1",
              "overrides": ""}  # one training seed: every stage kind; two range-test seeds: their spread
CAPPED = "trainer.max_iterations=8"
DEFAULT_STAGES = {"prepare", "range_test", "range_spread", "train@one_cycle-0", "train@inv-0",
                  "train_lr_from_range_test@0", "report"}

STUDIES = yaml.safe_load((ROOT / "studies/params.yaml").read_text())["studies"]
# What to prepare from the synthetic raw files (the committed params name the real datasets' sizes). MNIST, which
# a user's checkout prepares in the default study, is prepared here by the studies pipeline (the default study is
# the tiny one), at full size as the presets take it.
SYNTHETIC_DATA = {
    "cifar10": "dataset=cifar10 dataset.full_train_size=40 dataset.download=false",
    "cifar100": "dataset=cifar100 dataset.full_train_size=200 dataset.download=false",
    "cifar10_limited": "-m dataset=cifar10 dataset.full_train_size=40 dataset.download=false dataset.train_size=30,20 "
                       "data_root=data/prepared/cifar10_limited hydra.sweep.dir=data/prepared/cifar10_limited",
    "imagenet_subset": "dataset=imagenet_subset dataset.images_per_class=2 dataset.train_size=20 "
                       "dataset.image_size=32 data_root=data/prepared/imagenet_subset",
}
MNIST = {"mnist": "dataset=mnist dataset.download=false"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mlflow_uri):
    """A copy of the committed project files as a fresh git + DVC repo with the tiny study, every dataset's raw
    files as a user's download (or local copy) leaves them, and the studies' params naming the synthetic data."""
    dest = project_repo(tmp_path_factory.mktemp("e2e") / "project", TINY_STUDY,
                        skip=("reports/", "dvc.lock", "studies/dvc.lock", "results/"))  # no committed results
    params = yaml.safe_load((dest / "studies/params.yaml").read_text())
    assert set(params["datasets"]) == set(SYNTHETIC_DATA), "a dataset of studies/params.yaml needs synthetic data"
    params["datasets"] = {**SYNTHETIC_DATA, **MNIST}
    (dest / "studies/params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _commit_all(dest, "the synthetic data's params")
    raw_sources(dest / "data/raw", (60000, 10000), "imagenet")  # git-ignored, as in a user's checkout
    return dest


@pytest.fixture(scope="module")
def reproduced(repo):
    run_cli(["dvc", "repro"], cwd=repo)
    return repo


def test_repro_builds_every_stage_of_the_default_study_and_nothing_else(reproduced, mlflow_uri) -> None:
    repo = reproduced
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert set(lock["stages"]) == DEFAULT_STAGES
    assert not (repo / "studies/dvc.lock").exists() and not any((repo / "results").glob("paper_*"))
    for run in ("one_cycle-0", "inv-0"):
        assert (repo / "results/train" / run / "metrics.csv").is_file()
    for seed in (0, 1):
        assert (repo / f"results/range_test/tiny_digits_lenet/seed-{seed}/suggestion.json").is_file()
    report = (repo / "reports/e2e_tiny/report.md").read_text()
    assert "Over 2 seeds, each rule's suggested max_lr, median [min–max]" in report
    assert "## Verdicts" in report and "one_cycle" in report and "inv" in report
    for fig in ("accuracy_vs_iteration", "schedules", "range_test"):
        assert (repo / "reports/e2e_tiny/figures" / f"{fig}.png").stat().st_size > 10_000
    metrics = json.loads((repo / "reports/e2e_tiny/metrics.json").read_text())
    assert metrics["one_cycle_final_test_acc_mean"] > 80
    found = json.loads((repo / "results/range_spread/tiny_digits_lenet/suggestion.json").read_text())
    assert found["seeds"] == [0, 1] and found["max_lr"] == found["spread"][found["method"]]["median"]
    fed = json.loads((repo / "results/train/one_cycle_lr_from_range_test-0/summary.json").read_text())
    assert fed["schedule"]["max_lr"] == found["max_lr"] and fed["run"] == "one_cycle_lr_from_range_test"
    status = run_cli(["dvc", "status", "dvc.yaml"], cwd=repo).stdout
    assert "up to date" in status
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("superconv")
    parent = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study' and "
                                "tags.`superconv.study` = 'e2e_tiny'")
    assert len(parent) == 1
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent[0].info.run_id}'")
    assert sorted(c.data.tags["superconv.role"] for c in children) == ["range_test"] * 2 + ["train"] * 3
    assert "report/report.md" in {a.path for a in client.list_artifacts(parent[0].info.run_id, "report")}


@pytest.fixture(scope="module")
def studies(reproduced):
    """Every study under its `ci` profile: `dvc repro studies/dvc.yaml`, on top of the reproduced default study."""
    out = run_cli(["dvc", "repro", "studies/dvc.yaml"], cwd=reproduced, env={"SUPERCONV_PROFILE": "ci"}).stdout
    assert "Running stage 'train" not in out and "Running stage 'range_test'" not in out, out  # already current
    return reproduced


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_study_ran_its_profile_and_reported_it(studies, study: str) -> None:
    spec = yaml.safe_load((ROOT / "studies" / study / "study.yaml").read_text())
    profile = spec["profiles"]["ci"]
    runs = profile.get("only") or list(spec["runs"])
    for run in runs:
        seeds = profile.get("seeds") or spec["runs"][run].get("seeds") or spec["seeds"]
        kind = spec["runs"][run].get("stage", "train")
        for seed in seeds:
            out = studies / spec["results"] / f"{run}-{seed}"
            assert (out / ("summary.json" if kind == "train" else "suggestion.json")).is_file(), out
            config = yaml.safe_load((out / "config.yaml").read_text())
            assert config["trainer"]["max_iterations"] == 3 and config["tracking"]["enabled"] is False
    report = studies / spec["report"]["out"]
    text = (report / "report.md").read_text()
    assert "No training run of this study has finished yet" not in text and "## Verdicts" in text
    assert json.loads((report / "verdicts.json").read_text())["built_from"] == f"`{spec['results']}`"


def test_the_paper_report_gathers_every_study_and_dvc_is_up_to_date(studies) -> None:
    paper = (studies / "reports/paper.md").read_text()
    for study in [*STUDIES, TINY_STUDY["study"]]:
        assert f"]({study}/report.md)" in paper, study
    assert (studies / "reports/paper.html").stat().st_size > 1000
    status = run_cli(["dvc", "status", "studies/dvc.yaml"], cwd=studies).stdout
    assert "up to date" in status, status
    again = run_cli(["dvc", "repro", "-s", "studies/dvc.yaml:paper"], cwd=studies).stdout
    assert "didn't change, skipping" in again, again


def _lock(repo: Path, *args: str, own_code: bool = False) -> tuple[int, str]:
    """pipelines/lock.py in ``repo``; ``own_code``: with the repo's own package first on the path, so provenance is
    compared with the repo's copy of the code (the one the test edits)."""
    env = {"PYTHONPATH": str(repo / "src")} if own_code else None
    proc = run_cli([sys.executable, "pipelines/lock.py", *args, "dvc.yaml"], cwd=repo, env=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_lock_check_and_accepting_only_a_change_proven_number_neutral(reproduced) -> None:
    """Every stage depends on whole code folders, so any edit makes every stage stale: --check says so. --accept
    re-stamps a stage whose runs loaded no changed module as it is; for one whose runs did, it re-runs the first
    seed of each named run and re-stamps only when the curve comes out byte for byte the same: a change that moves
    the range test's smoothed loss is refused with the first difference named, a comment in the loop every run
    loads is accepted with the evidence in each run's provenance. An edit of conf/ is accepted only for the stages
    whose runs it leaves with the same resolved config. `dvc repro` then re-runs only what records no provenance
    (prepare, range_spread, report), and trains nothing."""
    repo = reproduced
    assert _lock(repo, "--check") == (0, "0 recorded stages stale\n")
    study, loop = repo / "src/superconv/stages/study.py", repo / "src/superconv/core/loop.py"
    smoothing, inv = repo / "src/superconv/core/range_test.py", repo / "conf/schedule/inv.yaml"
    triangular = repo / "conf/schedule/triangular.yaml"
    loop_text, smoothing_text, inv_text = loop.read_text(), smoothing.read_text(), inv.read_text()
    study.write_text(study.read_text() + "\n# a comment no run loads\n")
    smoothing.write_text(smoothing_text.replace("return self.avg / (1 - self.beta**self.count)",
                                                "return 2 * self.avg / (1 - self.beta**self.count)"))
    inv.write_text(inv_text.replace("power: ${recipe.inv.power}", "power: 0.5"))  # the inv runs' config changes
    rc, out = _lock(repo, "--check")
    assert rc == 1 and "stale dvc.yaml:train@inv-0: deps: src/superconv/core, src/superconv/stages" in out, out
    rc, out = _lock(repo, "--accept", "--jobs", "2", own_code=True)
    assert rc == 1, out
    assert "CHANGED dvc.yaml:range_test-0: row 1 (iteration 0), column smoothed_loss" in out, out
    assert "re-run dvc.yaml:range_test: its runs loaded changed code: superconv/core/range_test.py" in out
    assert "accepted dvc.yaml:range_test" not in out
    assert "re-run dvc.yaml:train@inv-0: non-code deps changed: conf/schedule" in out, out
    # no training run loads the smoothing, and the 1cycle runs compose the config they recorded
    assert "accepted dvc.yaml:train@one_cycle-0: no module its runs loaded changed" in out, out
    smoothing.write_text(smoothing_text)
    inv.write_text(inv_text)
    loop.write_text(loop_text + "\n# a comment every training run and range test loads\n")
    triangular.write_text(triangular.read_text().replace("recipe.triangular.gamma,1.0", "recipe.triangular.gamma,0.5"))
    lock_before = (repo / "dvc.lock").read_text()
    rc, out = _lock(repo, "--accept", "--jobs", "2", own_code=True)
    assert rc == 1, out  # prepare, range_spread and report record no provenance: they re-run
    sample = out.split("(one per named run): ", 1)[1].splitlines()[0].split()
    assert sorted(sample) == ["range_test-0", "train@inv-0", "train@one_cycle-0", "train_lr_from_range_test-0"], out
    for stage in ("range_test", "train@one_cycle-0", "train@inv-0", "train_lr_from_range_test@0"):
        assert f"accepted dvc.yaml:{stage}: its named run re-ran bit-identical" in out, out
    assert "re-run dvc.yaml:report: its outputs record no provenance" in out
    assert (repo / "dvc.lock").read_text() != lock_before
    record = json.loads((repo / "results/train/inv-0/provenance.json").read_text())
    assert record["accepted"][-1]["evidence"] == "train@inv-0 re-run bit-identical (metrics.csv)"
    assert record["accepted"][-1]["changed"] == ["superconv/core/loop.py"]
    repro = run_cli(["dvc", "repro"], cwd=repo).stdout
    assert "Running stage 'train" not in repro and "Running stage 'range_test'" not in repro, repro
    assert _lock(repo, "--check") == (0, "0 recorded stages stale\n")


def _commit_all(repo: Path, message: str) -> None:
    for cmd in (["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message]):
        subprocess.run(cmd, cwd=repo, check=True)


def _train_runs(client: MlflowClient, where: str = "") -> list:
    exp = client.get_experiment_by_name("superconv")
    return client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'train' and "
                              f"tags.`superconv.study` = '{TINY_STUDY['study']}'{where}", max_results=1000)


def test_a_pushed_repo_reproduces_nothing_in_a_second_clone(reproduced, tmp_path, mlflow_uri) -> None:
    """Second-machine reuse: local directory remote, push, git clone, pull; the clone is up to date as is."""
    first, second = reproduced, tmp_path / "second"
    run_cli(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "dvc-storage")], cwd=first)
    _commit_all(first, "tiny study results and the shared remote")  # dvc.lock, reports/, .dvc/config
    run_cli(["dvc", "push"], cwd=first)
    subprocess.run(["git", "clone", "-q", str(first), str(second)], check=True)
    # A fresh clone already holds every result (committed): only the prepared data (in DVC's cache) is absent, and
    # that is not staleness. This is CI's check on a clean clone of main.
    assert _lock(second, "--check") == (0, "0 recorded stages stale\n")
    client = MlflowClient(mlflow_uri)
    runs_before = len(_train_runs(client))
    run_cli(["dvc", "pull", "dvc.yaml"], cwd=second)  # a bare pull also asks for the studies' outputs
    assert "Data and pipelines are up to date" in run_cli(["dvc", "status", "dvc.yaml"], cwd=second).stdout
    repro = run_cli(["dvc", "repro"], cwd=second).stdout
    stages = yaml.safe_load((second / "dvc.lock").read_text())["stages"]
    assert "Running stage" not in repro, repro
    assert repro.count("didn't change, skipping") == len(stages) == 7, repro
    assert len(_train_runs(client)) == runs_before  # nothing trained
    ignored = ("checkpoint.pt", "multirun.yaml", "stage.log")  # not results: not committed (.gitignore)
    files = sorted(p.relative_to(first) for p in (first / "results").rglob("*") if p.is_file()
                   and p.name not in ignored)
    assert files == sorted(p.relative_to(second) for p in (second / "results").rglob("*") if p.is_file())
    assert len([f for f in files if f.parent.parent.name == "train" and f.name == "metrics.csv"]) == 3
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


QUEUE_TIMEOUT_S = 900


def _queue_status(repo: Path) -> dict[str, str]:
    """Task name -> status, from `dvc queue status` ("Task  Name  Created  Status" rows)."""
    rows = {}
    for line in run_cli(["dvc", "queue", "status"], cwd=repo).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[-1] in {"Queued", "Running", "Success", "Failed"}:
            rows[parts[1]] = parts[-1]
    return rows


def test_queued_ablations_on_two_workers_log_every_step_to_one_store(reproduced, tmp_path, mlflow_uri) -> None:
    """`dvc exp run -S` queued twice + `dvc queue start -j 2`: both succeed, the override changes the metrics, and
    the one SQLite store has every step.

    Each ablation is the default study capped at 8 iterations with one named run and one seed: the study's own
    1cycle run (its accuracy falls well below the uncapped run's) and `step`, which the study does not have. Each
    worker runs the capped range test, its range-test-fed run, its training run and the report; prepare is cached.
    """
    repo = reproduced
    assert mlflow_uri.startswith("sqlite:////"), "queued experiments run under .dvc/tmp/exps: use an absolute store"
    uncapped = json.loads((repo / "reports/e2e_tiny/metrics.json").read_text())["one_cycle_final_test_acc_mean"]
    ablations = {"abl-capped-one_cycle-0": ("one_cycle", 0), "abl-step-1": ("step", 1)}
    for name, (run, seed) in ablations.items():
        run_cli(["dvc", "exp", "run", "--queue", "-n", name, "-S", f"runs=[{run}]", "-S", f"seeds=[{seed}]",
                 "-S", f"overrides='{CAPPED}'"], cwd=repo)
    run_cli(["dvc", "queue", "start", "-j", "2"], cwd=repo)
    started = time.monotonic()
    deadline, done, status = started + QUEUE_TIMEOUT_S, False, {}
    try:
        while not done and time.monotonic() < deadline:
            time.sleep(5)
            status = _queue_status(repo)
            done = ablations.keys() <= status.keys() and all(status[n] in ("Success", "Failed") for n in ablations)
    finally:
        run_cli(["dvc", "queue", "stop", *([] if done else ["--kill"])], cwd=repo, check=False)
    logs = {n: run_cli(["dvc", "queue", "logs", n], cwd=repo, check=False).stdout for n in ablations}
    workers = "".join(p.read_text(errors="replace") for p in (repo / ".dvc/tmp/exps/celery").glob("*.out"))
    assert done and all(status[n] == "Success" for n in ablations), (status, logs, workers[-5000:])
    if (elapsed := time.monotonic() - started) > 300:  # once took 853 s (vs ~140 s) on a loaded machine
        warnings.warn(f"the queue took {elapsed:.0f} s; worker logs:\n{workers[-4000:]}", stacklevel=1)
    for text in (*logs.values(), workers):
        assert "database is locked" not in text and "FileLocked" not in text, text[-5000:]

    shown = json.loads(run_cli(["dvc", "exp", "show", "--json"], cwd=repo).stdout)
    found = {run["name"]: run for rev in shown for exp in rev.get("experiments") or [] for run in exp["revs"]
             if run["name"] in ablations}
    assert found.keys() == ablations.keys(), shown
    client = MlflowClient(mlflow_uri)
    parents = set()
    for name, (named, seed) in ablations.items():
        assert found[name].get("error") is None, found[name]
        data = found[name]["data"]
        assert data["params"]["params.yaml"]["data"]["seeds"] == [seed]
        metrics = data["metrics"]["reports/e2e_tiny/metrics.json"]["data"]
        assert metrics[f"{named}_n"] == 1, metrics
        runs = _train_runs(client, f" and tags.`superconv.run` = '{named}' and tags.`superconv.seed` = '{seed}'"
                                   " and params.`trainer.max_iterations` = '8'")
        assert len(runs) == 1, runs
        run = runs[0]
        assert run.info.status == "FINISHED"
        assert metrics[f"{named}_final_test_acc_mean"] == pytest.approx(run.data.metrics["final_test_acc"])
        parents.add(run.data.tags["mlflow.parentRunId"])
        local = client.download_artifacts(run.info.run_id, "metrics.csv", str(tmp_path / name))
        with open(local, newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 8  # CAPPED
        history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
        assert [m.step for m in history] == [int(r["iteration"]) for r in rows]  # every step, exactly once
        assert [m.value for m in history] == pytest.approx([float(r["train_loss"]) for r in rows])
    assert len(parents) == 1  # both under the study's one parent run
    capped = found["abl-capped-one_cycle-0"]["data"]["metrics"]["reports/e2e_tiny/metrics.json"]["data"]
    assert capped["one_cycle_final_test_acc_mean"] < uncapped - 5, (capped, uncapped)
