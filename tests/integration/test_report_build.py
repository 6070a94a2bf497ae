"""build_report on fixture results: every output written, HTML self-contained, missing and diverged runs shown."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from superconv.report.build import build_report
from tests.report_data import write_run
from tests.unit.test_report_claims import MNIST, mnist_study

FIGURES = ("accuracy_vs_iteration", "schedules", "published_comparison", "accuracy_vs_epochs")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    mnist_study(root / "results" / "train")
    write_run(root / "results" / "train", "step", 0, [10.0], experiment=MNIST, diverged="loss nan at iteration 7")
    out = root / "reports"
    result = build_report(root / "results", out, "one_cycle", "inv", None)
    return out, result


def test_every_output_is_written(built) -> None:
    out, _ = built
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    for name in ("accuracy", "speed", "runs", "claims", "accuracy_curves", "schedules"):
        assert len(pd.read_csv(out / "tables" / f"{name}.csv")) > 0
    curves = pd.read_csv(out / "tables" / "accuracy_curves.csv")
    assert {"iteration", "run", "seed", "test_acc"} <= set(curves.columns)
    assert len(curves) == 3 * 3 + 3 * 10 + 2 + 1  # every evaluation of every seed, diverged ones included


def test_metrics_keep_the_dvc_keys(built) -> None:
    out, result = built
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result["metrics"]
    assert metrics["one_cycle_final_test_acc_mean"] == pytest.approx(99.2)
    assert metrics["inv_final_test_acc_std"] == pytest.approx(0.1)
    assert metrics["speedup_iterations_ratio"] == pytest.approx(0.2)
    assert metrics["inv_diverged"] == 1 and metrics["step_diverged"] == 1 and metrics["claims_reproduced"] >= 1


def test_report_lists_verdicts_diverged_and_not_run_rows(built) -> None:
    out, result = built
    text = (out / "report.md").read_text()
    assert text.startswith("# superconv report: MNIST / LeNet — one_cycle vs inv")
    assert "## Verdicts" in text and "**INCONCLUSIVE**: 1cycle reaches the Caffe inv baseline" in text
    assert "| inv | MNIST / LeNet | Caffe inv" in text and "3 (+1 diverged)" in text
    assert "| 98.92 (n=5, coxy) |" in text and "Independent (coxy): coxy1989/superconv @ 5feadb6" in text
    assert "**diverged**: loss nan at iteration 7" in text  # the diverged seeds are listed, not dropped
    assert "| step | MNIST / LeNet |" in text and "| **diverged** |" in text
    assert re.search(r"\| paper_cifar10_resnet56/clr \|.*\| not run \| CIFAR-10 and a GPU", text)
    assert "**NOT RUN**: super-convergence" in text
    assert all("NOT RUN" not in line for line in result["verdicts"])


def test_html_is_self_contained_with_every_figure(built) -> None:
    out, _ = built
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(list((out / "figures").glob("*.png")))
    assert re.findall(r'src="(?!data:)', page) == []
    assert "http" not in page and "<link" not in page and "<script" not in page
    assert "<table>" in page and "figures/" not in page


def test_limited_data_figure_only_with_train_size(tmp_path) -> None:
    exp = "paper_cifar10_resnet56"
    for size, gain in ((None, 1.0), (40000, 2.0), (30000, 3.0), (20000, 4.0), (10000, 9.0)):
        extra = {"train_size": size} if size else {}
        for seed in (0, 1):
            write_run(tmp_path / "results" / "train", "clr", seed, [80.0 + gain + seed / 10], experiment=exp, **extra)
            write_run(tmp_path / "results" / "train", "pc", seed, [80.0 + seed / 10], experiment=exp, **extra)
    out = tmp_path / "reports"
    build_report(tmp_path / "results", out, "clr", "pc", None)
    assert (out / "figures" / "accuracy_vs_train_size.png").stat().st_size > 10_000
    text = (out / "report.md").read_text()
    assert "Table 1 analogue" in text and "**REPRODUCED**: the CLR gain over PC grows" in text
    limited = pd.read_csv(out / "tables" / "limited_data.csv")
    assert sorted(set(limited["train_size"])) == [10000, 20000, 30000, 40000, 50000]


def test_the_paper_report_gathers_every_study_and_marks_what_none_ran(built, tmp_path) -> None:
    """Two studies' reports side by side: the paper report lists both, each claim's verdicts with their study, every
    row either with the studies that ran it or "not run" with what it needs; it reads reports only."""
    from superconv.report.paper import build_paper_report

    out, _ = built
    reports = tmp_path / "reports"
    shutil.copytree(out, reports / "study_a")
    other = tmp_path / "other"
    write_run(other / "train", "one_cycle", 0, [99.3], experiment=MNIST)
    write_run(other / "train", "one_cycle", 1, [99.2], experiment=MNIST)
    build_report(other, reports / "study_b", "one_cycle", "inv", None)
    text = build_paper_report(reports)
    assert (reports / "paper.html").read_text().count("<table>") >= 3
    assert "[study_a](study_a/report.md)" in text and "[study_b](study_b/report.md)" in text
    rows = [line for line in text.splitlines() if line.startswith("| paper_mnist_lenet/one_cycle |")]
    assert len(rows) == 2 and "(n=3)" in rows[0] and "(n=2)" in rows[1]  # most seeds first
    assert re.search(r"\| paper_cifar10_resnet56/clr \|.*\| not run \| – \| needs: CIFAR-10", text)
    assert "**NOT RUN** (sc_speed)" in text
    assert re.search(r"\*\*(REPRODUCED|NOT REPRODUCED|INCONCLUSIVE)\*\* \(mnist_speed, \[study_a\]", text)


def test_a_study_with_no_finished_run_says_what_it_runs_and_the_paper_lists_it(tmp_path, monkeypatch) -> None:
    from superconv.report.paper import build_paper_report
    from superconv.stages.report import study_report_stage

    monkeypatch.chdir(tmp_path)
    study = tmp_path / "studies" / "s" / "study.yaml"
    study.parent.mkdir(parents=True)
    study.write_text("name: s\nresults: results/s\nseeds: [0, 1]\nreport: {out: reports/s, policy: a, baseline: b}\n"
                     "runs: {a: {overrides: [x=1]}, b: {stage: range_test, seeds: [3]}}\n")
    (tmp_path / "results" / "s" / "a-0").mkdir(parents=True)  # started, not finished
    assert study_report_stage(study)["verdicts"] == []
    text = (tmp_path / "reports/s/report.md").read_text()
    assert "No training run of this study has finished yet" in text
    assert "dvc repro studies/dvc.yaml:report@s" in text and "| a | train | 0 1 | `x=1` |" in text
    assert "| b | range_test | 3 |  |" in text
    assert json.loads((tmp_path / "reports/s/verdicts.json").read_text())["verdicts"] == []
    paper = build_paper_report(tmp_path / "reports")
    assert "| [s: not run yet](s/report.md) | `results/s` | none tested |" in paper


def test_variants_of_one_published_run_keep_its_name_and_are_told_apart_by_size(tmp_path) -> None:
    """A study's `clr@40000` and `clr@30000` are the published run `clr` at two training-set sizes."""
    from superconv.report.results import load_study_runs

    for size in (40000, 30000):
        made = write_run(tmp_path / "tmp", "clr", 0, [90.0], experiment="paper_cifar10_resnet56", train_size=size,
                         full_train_size=50000)
        made.rename(tmp_path / f"clr@{size}-0")
    runs = load_study_runs(tmp_path)
    assert set(runs.summaries["base_run"]) == {"clr"}
    assert set(runs.summaries["run"]) == {"clr [train_size=40000]", "clr [train_size=30000]"}


def test_a_rebuild_from_the_same_runs_is_byte_identical(built, tmp_path) -> None:
    """The committed report is a DVC output: rebuilt from unchanged runs it must not change (the iterations-to-target
    strip plot's jitter included), or every `dvc repro` would rewrite it."""
    out, _ = built
    again = tmp_path / "again"
    build_report(out.parent / "results", again, "one_cycle", "inv", None)
    figures = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert "iterations_to_target.png" in figures
    for rel in [*(f"figures/{name}" for name in figures), "report.html", "report.md"]:
        assert (again / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_a_report_reads_only_its_own_results_not_the_reports_beside_it(built) -> None:
    """Another study's verdicts.json beside this report (as reports/<study>/ lie) changes nothing in it: those are
    outside its DVC deps, so only the paper report (which depends on every report) gathers them."""
    out, _ = built
    before = (out / "report.md").read_text()
    assert "[the paper report](../paper.md)" in before
    other = out.parent / "other_study"
    other.mkdir()
    (other / "verdicts.json").write_text(json.dumps({"title": "Other", "built_from": "`results/other`",
                                                     "verdicts": ["**REPRODUCED**: something else"]}))
    try:
        build_report(out.parent / "results", out, "one_cycle", "inv", None)
        assert (out / "report.md").read_text() == before
    finally:
        shutil.rmtree(other)
