"""A study on the tiny digits profile, end to end with real processes: the runner (two at a time, per-seed values,
a range test over seeds), what each run directory carries, which runs a change re-runs, and the study report with
a factor sweep feeding a claim, the range test's spread and the independent-reproduction column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from superconv.common.provenance import changed_code, loaded_code
from superconv.common.tracking import flatten
from superconv.report.build import build_study_report
from superconv.report.reference import load_reference
from superconv.stages import study
from superconv.stages.study import load_study, plans
from tests.conftest import ROOT, run_cli, run_entry

TINY = ["experiment=tiny_digits_lenet"]


def study_file(tmp: Path, data_root: Path, nesterov_extra: list[str] | None = None) -> Path:
    common = [*TINY, f"data_root={data_root}", "schedule=one_cycle", "trainer.max_iterations=30"]
    untracked = "tracking.enabled=false"  # MLflow is checked on the nesterov runs; logging costs ~3 s a run
    spec = {
        "name": "tiny_study", "results": str(tmp / "results"), "seeds": [0, 1], "jobs": 2, "threads": 1,
        "report": {"out": str(tmp / "report"), "policy": "one_cycle", "baseline": "nesterov"},
        "runs": {
            # capped by trainer.max_iterations: the run's config.yaml says 30, and the study must agree
            "range_test": {"stage": "range_test", "overrides": [*TINY, f"data_root={data_root}",
                                                                 "range_test.iterations=40",
                                                                 "trainer.max_iterations=30", untracked]},
            "one_cycle": {"overrides": [*common, untracked]},
            "nesterov": {"overrides": [*common, "optimizer.nesterov=true", *(nesterov_extra or [])],
                         "per_seed": {"trainer.total_batch": [128, 120]}},
        },
    }
    path = tmp / "study.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def study_cli(path: Path, *args: str) -> tuple[int, str]:
    """pipelines/study.py as a process of its own: its exit code and everything it wrote."""
    proc = run_cli([sys.executable, "pipelines/study.py", str(path), *args], cwd=ROOT, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def study_main(path: Path, *args: str) -> tuple[int, str]:
    """pipelines/study.py in this process (run_entry): its exit code and what it printed (stdout, then stderr).
    Every job it runs is still a process of its own; only the CLI's own start-up (torch, Hydra, scipy imports) is
    saved, so the many --check/--verify/--accept calls below cost what they compute."""
    proc = run_entry(["python", "pipelines/study.py", str(path), *args])
    return proc.returncode, proc.stdout + proc.stderr


def tiny_reference(tmp: Path) -> Path:
    """published.yaml for the tiny profile: one row (out of reach, so it fails), a factor sweep naming the nesterov
    run, an ablation claim and an independent reproduction."""
    data = {
        "datasets": {"digits": 1437},
        "groups": {"tiny": {"title": "tiny digits", "experiment": "tiny_digits_lenet", "dataset": "digits",
                            "model": "LeNet", "source": "test fixture", "verified": "UNVERIFIED", "n": 4}},
        "rows": [{"group": "tiny", "run": "one_cycle", "policy": "1cycle", "family": "1cycle", "epochs": 6,
                  "mean": 99.99, "std": 0.01, "independent": {"mean": 91.5, "n": 5, "source": "someone"}},
                 ],
        "claims": [{"id": "tiny_matches", "type": "matches_published", "tolerance_pp": 0.1,
                    "rows": ["tiny_digits_lenet/one_cycle"], "text": "tiny matches",
                    "factors": {"tiny_digits_lenet/one_cycle": {"Nesterov": ["nesterov"], "absent": ["not_a_run"]}}},
                   {"id": "tiny_better", "type": "better", "experiment": "tiny_digits_lenet", "policy": "one_cycle",
                    "baseline": "nesterov", "text": "plain momentum beats Nesterov"}],
        "study_claims": [],
        "independent_sources": {"someone": "someone/repo @ abc (a test fixture)"},
    }
    path = tmp / "published.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.slow
def test_study_runs_keeps_and_reports(tmp_path, data_root, mlflow_uri) -> None:
    path = study_file(tmp_path, data_root)
    rc, first = study_cli(path)
    assert rc == 0, first
    assert "6 of 6 runs to do, 2 at a time, 1 torch threads each" in first
    results = tmp_path / "results"
    for name in ("one_cycle-0", "one_cycle-1", "nesterov-0", "nesterov-1"):
        assert (results / name / "summary.json").is_file(), name
    assert (results / "range_test-0" / "suggestion.json").is_file()
    assert (results / "range_test-1" / "suggestion.json").is_file()
    assert yaml.safe_load((results / "range_test-1" / "config.yaml").read_text())["range_test"]["iterations"] == 30

    # Each run directory carries its whole resolved config, the same values MLflow got as params, and its code.
    config = yaml.safe_load((results / "nesterov-1" / "config.yaml").read_text())
    assert config["optimizer"]["nesterov"] is True and config["trainer"]["total_batch"] == 120
    assert config["trainer"]["threads"] == 1 and config["seed"] == 1
    summary = json.loads((results / "nesterov-1" / "summary.json").read_text())
    params = MlflowClient(mlflow_uri).get_run(summary["tracking_run_id"]).data.params
    assert params == {k: v for k, v in flatten(config).items() if k != "tracking.uri"}
    provenance = json.loads((results / "nesterov-1" / "provenance.json").read_text())
    assert "superconv/core/loop.py" in provenance["code"] and "pipelines/train.py" in provenance["code"]
    assert "superconv/report/build.py" not in provenance["code"]  # report code is not what made the run
    assert provenance["torch_threads"] == 1

    # Nothing changed: every run is kept. One run's config changed: only its seeds re-run, and say why.
    rc, again = study_main(path, "--dry-run")
    assert rc == 0 and "0 of 6 runs to do" in again
    verify_and_accept(path, results)
    sequential_seeds(path, results, tiny_reference(tmp_path))
    path = study_file(tmp_path, data_root, ["optimizer.weight_decay=1.0e-3"])
    rc, changed = study_main(path, "--dry-run")
    assert rc == 0 and "2 of 6 runs to do" in changed
    assert "nesterov-0" in changed and "config changed: optimizer.weight_decay" in changed

    # The study report: the failed row says what its factor did, the range test reports its spread over seeds,
    # the independent reproduction has its own column.
    ref = load_reference(tiny_reference(tmp_path))
    built = build_study_report(results, tmp_path / "report", "one_cycle", "nesterov", ["range_test"], ref)
    row = next(line for line in built["verdicts"] if "tiny matches" in line)
    assert not row.startswith("**REPRODUCED**") and "gap analysis (published − ours" in row
    assert "nesterov (Nesterov:" in row and "not run in these results: not_a_run" in row
    assert any("plain momentum beats Nesterov" in line for line in built["verdicts"])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Gap analysis: factors tested for verdicts that failed" in report
    assert "Over 2 seeds, each rule's suggested max_lr, median [min–max]" in report
    assert "91.50 (n=5, someone)" in report and "Independent (someone): someone/repo @ abc" in report
    for figure in ("range_test_range_test", "factors_tiny_digits_lenet_one_cycle", "ablations",
                   "iterations_to_target"):
        assert (tmp_path / "report" / "figures" / f"{figure}.png").stat().st_size > 10_000, figure
    spread = json.loads((tmp_path / "report" / "tables" / "range_test_range_test.json").read_text())
    assert spread["seeds"] == [0, 1] and spread["max_lr"] == spread["spread"][spread["method"]]["median"]

    # compare labels runs by any config key (config.yaml), not only the schedule block.
    out = run_cli([sys.executable, "-m", "superconv.report.compare", "--dirs", str(results / "nesterov-*"),
                   str(results / "one_cycle-*"), "--label", "optimizer.nesterov", "trainer.total_batch",
                   "--out", str(tmp_path / "compare")], cwd=ROOT).stdout
    labels = (tmp_path / "compare" / "report.md").read_text()
    for label in ("one_cycle [nesterov=True, total_batch=120]", "one_cycle [nesterov=True, total_batch=128]",
                  "one_cycle [nesterov=False, total_batch=128]"):
        assert f"| {label} |" in labels, (label, out)


def verify_and_accept(path: Path, results: Path) -> None:
    """--check, --verify and --accept on the study's committed runs (the runs of the test above)."""
    assert study_cli(path, "--check") == (0, "tiny_study: 0 committed runs stale\n")
    # One committed digit changed: --verify names the row, its iteration, the column and both values; the other run
    # it re-runs is bit-identical, and neither committed run directory is touched (the re-runs are elsewhere).
    metrics = results / "one_cycle-0" / "metrics.csv"
    good = metrics.read_text()
    rows = [line.split(",") for line in good.splitlines()]
    column = rows[0].index("train_loss")
    here = rows[3][column]
    rows[3][column] = here[:-1] + ("1" if here[-1] != "1" else "2")
    metrics.write_text("\n".join(",".join(r) for r in rows) + "\n")
    before = {p: p.stat().st_mtime_ns for run in ("one_cycle-0", "range_test-1") for p in (results / run).iterdir()}
    rc, out = study_main(path, "--verify", "one_cycle-0", "range_test-1")
    assert rc == 1, out
    assert "range_test-1: bit-identical (curve.csv; committed under cpu_mode pinned, ATen AVX2, 1 thread(s))" in out
    assert (f"one_cycle-0: DIFFERS: row 3 (iteration {rows[3][0]}), column train_loss: {rows[3][column]} "
            f"committed, {here} here") in out
    assert {p: p.stat().st_mtime_ns for run in ("one_cycle-0", "range_test-1")
            for p in (results / run).iterdir()} == before
    assert study_main(path, "--verify", "one_cycle-7")[0] == 2  # no such seed: refused before any compute

    # A code change every run loaded (its recorded digest no longer matches): --check fails, naming it. --accept
    # re-runs one seed per named run; while one of them differs it re-stamps nothing.
    for provenance in results.glob("*/provenance.json"):
        record = json.loads(provenance.read_text())
        record["code"]["superconv/common/errors.py"] = "0" * 64
        provenance.write_text(json.dumps(record))
    rc, out = study_cli(path, "--check")
    assert rc == 1 and "stale nesterov-1: code changed: superconv/common/errors.py" in out
    assert "6 committed runs stale" in out
    rc, out = study_main(path, "--accept")
    assert rc == 1
    assert "re-running 3 of 6 code-stale runs (one per named run): range_test-0 one_cycle-0 nesterov-0" in out
    assert "CHANGED one_cycle-0: row 3" in out and "nothing re-stamped" in out
    assert study_main(path, "--check")[0] == 1

    # The committed curve restored: every sample is bit-identical, so all six are re-stamped, with the evidence. A
    # run that recorded other code than its named run's first seed (made under an older pin, say) is sampled too:
    # the first seed's evidence says nothing of it.
    metrics.write_text(good)
    older = results / "one_cycle-1" / "provenance.json"
    record = json.loads(older.read_text())
    record["code"]["superconv/common/io.py"] = "1" * 64
    older.write_text(json.dumps(record))
    rc, out = study_main(path, "--accept")
    assert rc == 0, out
    assert "re-running 4 of 6 code-stale runs (one per named run): range_test-0 one_cycle-0 one_cycle-1 nesterov-0" \
        in out, out
    assert "accepted 1 runs of one_cycle: one_cycle-0 re-ran bit-identical" in out
    assert "accepted 1 runs of one_cycle: one_cycle-1 re-ran bit-identical" in out
    assert study_main(path, "--check")[0] == 0
    record = json.loads((results / "nesterov-1" / "provenance.json").read_text())
    assert record["accepted"][-1]["changed"] == ["superconv/common/errors.py"]
    assert record["accepted"][-1]["evidence"] == "nesterov-0 re-run bit-identical (metrics.csv)"
    assert not changed_code(record["code"])

    # A run made before the pinned CPU mode (no trainer.cpu_mode, no CPU record) is stale; a study being re-run
    # under the pin may list such runs as legacy (allow_legacy) without failing --check, and no other stale run.
    run = results / "one_cycle-1"
    saved = {name: (run / name).read_text() for name in ("config.yaml", "provenance.json")}
    config = yaml.safe_load(saved["config.yaml"])
    del config["trainer"]["cpu_mode"]
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "provenance.json").write_text(json.dumps({k: v for k, v in json.loads(saved["provenance.json"]).items()
                                                     if k != "cpu"}))
    rc, out = study_main(path, "--check")
    assert rc == 1 and "stale one_cycle-1: config changed: trainer.cpu_mode: '<absent>' -> 'pinned'" in out
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "allow_legacy": True}, sort_keys=False))
    rc, out = study_main(path, "--check")
    assert rc == 0
    assert "tiny_study: 1 legacy runs (made before the pinned CPU mode) wait to be re-run: one_cycle-1" in out
    for name, text in saved.items():
        (run / name).write_text(text)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def sequential_seeds(path: Path, results: Path, reference: Path) -> None:
    """A sequential claim (tiny_better: one_cycle beats nesterov, margin 0) with a cap of 3 seeds, one more per
    look: the runner adds seeds to both runs while the claim is undecided, and the report says which looks it took
    and why it stopped. A second call takes no look and runs nothing."""
    spec = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**spec, "published": str(reference),
                                    "sequential": {"tiny_better": {"max_seeds": 3, "batch": 1}}}, sort_keys=False))
    rc, dry = study_main(path, "--dry-run")  # lists the next look's seeds too, and runs nothing
    assert rc == 0 and not (results / "one_cycle-2").exists(), dry
    rc, out = study_main(path)
    assert rc == 0, out
    ref = load_reference(reference)
    built = build_study_report(results, path.parent / "seq-report", "one_cycle", "nesterov", [], ref,
                               plans(load_study(path)))
    line = next(v for v in built["verdicts"] if "plain momentum beats Nesterov" in v)
    assert "Sequential: Bonferroni over the looks at n = 2, 3 (each CI at 97.5%" in line, line
    looks = [int(n) for n in line.split("looks taken: ")[1].split(";")[0].replace("n=", "").split(", ")]
    assert looks == list(range(2, looks[-1] + 1)), line
    seeds = {run: sorted(int(p.name.rsplit("-", 1)[1]) for p in results.glob(f"{run}-*")) for run in
             ("one_cycle", "nesterov")}
    assert seeds["one_cycle"] == seeds["nesterov"] == list(range(looks[-1])), (seeds, line)
    if looks[-1] < 3:
        assert f"stopped: decided at n={looks[-1]}" in line, line
    else:
        assert "stopped: decided at n=3" in line or "stopped: cap of 3 seeds reached" in line, line
    if looks[-1] > 2:
        for text in (out, dry):
            assert "sequential: the next looks need nesterov at 3 seeds, one_cycle at 3 seeds" in text, text
        assert "run  one_cycle-2" in dry and "2 of 6 runs to do" in dry, dry
        assert "sequential: any later look depends on these seeds' results" in dry, dry
    again = study_main(path)[1]
    assert "sequential: the next looks" not in again and f"0 of {2 + 2 * looks[-1]} runs to do" in again, again
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_code_change_makes_a_result_stale(tmp_path) -> None:
    recorded = loaded_code()
    assert recorded and not changed_code(recorded)
    name = next(iter(k for k in recorded if k.startswith("superconv/")))
    assert changed_code({**recorded, name: "0" * 64}) == [name]
    assert changed_code({"superconv/no_such_module.py": "0" * 64}) == ["superconv/no_such_module.py"]


def test_bad_study_file_is_one_clear_error(tmp_path) -> None:
    bad = tmp_path / "study.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "results": "r", "seeds": [0], "jobs": 0,
                                   "report": {"out": "o", "policy": "a", "baseline": "b"}, "runs": {}}))
    proc = run_entry(["python", "pipelines/study.py", str(bad)])
    assert proc.returncode == 2 and "jobs" in proc.stderr and "greater than or equal to 1" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_entry(["python", "pipelines/study.py", str(tmp_path / "missing.yaml")])
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_one_check_covers_several_studies_and_only_check_takes_several() -> None:
    """`make check-current` checks every committed study in one process; any other action takes one study file."""
    studies = ["studies/paper_cifar10_wrn/study.yaml", "studies/paper_cifar10_fig1a/study.yaml"]
    rc, out = study_main(Path(studies[0]), studies[1], "--check")
    assert rc == 0, out
    assert "paper_cifar10_wrn: 0 committed runs stale" in out and "paper_cifar10_fig1a: 0 committed runs stale" in out
    assert study_main(Path(studies[0]), studies[1], "--dry-run")[0] == 2


def test_sigterm_stops_the_study_and_the_next_call_resumes(tmp_path, data_root) -> None:
    """SIGTERM to the runner: its running job checkpoints and stops (no FAILED), the runner exits 143, and the
    next call resumes that job from its checkpoint to the end."""
    import os
    import signal
    import subprocess
    import time

    spec = {"name": "tiny_stop", "results": str(tmp_path / "results"), "seeds": [0], "jobs": 1, "threads": 1,
            "report": {"out": str(tmp_path / "report"), "policy": "inv", "baseline": "inv"},
            "runs": {"inv": {"overrides": [*TINY, f"data_root={data_root}", "schedule=inv", "tracking.enabled=false",
                                           "trainer.checkpoint_every=10", "trainer.log_every=5",
                                           "trainer.max_iterations=40"]}}}  # 30 iterations after the first checkpoint
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "pipelines/study.py", str(path)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoint = tmp_path / "results" / "inv-0" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "stopped inv-0" in out and "FAILED" not in out
    assert not (tmp_path / "results" / "inv-0" / "summary.json").exists()
    assert study_cli(path)[0] == 0
    summary = json.loads((tmp_path / "results" / "inv-0" / "summary.json").read_text())
    assert summary["resumed"] is True and summary["iterations"] == 40


@pytest.mark.parametrize(("jobs", "expected"), [(1, "unset"), (2, "PASSIVE")])
def test_parallel_jobs_run_with_passive_openmp_waits(tmp_path, monkeypatch, jobs: int, expected: str) -> None:
    """Jobs that share the cores must not spin-wait (OpenMP's default burns the other job's core); one job alone
    keeps the environment it was given."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    seen = tmp_path / "policy"
    job = study.Job("probe", 0, "train", (str(seen),), tmp_path / "out",
                    ("sh", "-c", 'echo "${OMP_WAIT_POLICY:-unset}" > "$1"'))
    [(_, rc, _)] = study.Runner(jobs).run([job])
    assert rc == 0 and seen.read_text().strip() == expected
