"""pipelines/mlflow_import.py on a real SQLite store: a tiny study made of committed run directories of
results/paper_mnist_full (two seeds of one training run, one range test; curves cut to 200 rows to stay fast) is
logged as an experiment named after it, with exact curves, params, summaries and provenance, and a re-run logs
nothing twice: unchanged children are kept, a changed or half-logged one is replaced, a gone one removed, and a
changed report replaces the parent's report artifacts."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from superconv.common.tracking import flatten, store_client
from superconv.report.mlflow_import import import_study, read_study
from superconv.report.mlflow_runs import find_runs, run_record
from tests.conftest import ROOT, run_cli

COMMITTED = ROOT / "results" / "paper_mnist_full"
RUNS = ("one_cycle-0", "one_cycle-1", "range_test-0")
ROWS = 200


def _truncate(path: Path, rows: int) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def study(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A study file (named after the test: its own experiment in the session store), its results and report."""
    name = f"import_{request.node.name}"
    results, report = tmp_path / "results" / name, tmp_path / "reports" / name
    for label in RUNS:
        shutil.copytree(COMMITTED / label, results / label)
        for curve in ("metrics.csv", "curve.csv"):
            if (results / label / curve).is_file():
                _truncate(results / label / curve, ROWS)
    (report / "figures").mkdir(parents=True)
    (report / "report.md").write_text(f"# {name}\n\none_cycle against itself.\n")
    (report / "figures" / "a.png").write_bytes(b"\x89PNG not really")
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "results": str(results), "seeds": [0, 1],
        "report": {"out": str(report), "policy": "one_cycle", "baseline": "one_cycle"},
        "runs": {"one_cycle": {"overrides": ["experiment=paper_mnist_lenet"]},
                 "range_test": {"stage": "range_test", "overrides": ["experiment=paper_mnist_lenet"], "seeds": [0]}},
    }))
    return path


def _import(path: Path, uri: str):
    spec = read_study(path)
    return import_study(store_client(uri), spec.name, Path(spec.results), Path(spec.report.out), path, echo=False)


def _children(client: MlflowClient, name: str) -> dict[str, object]:
    exp = client.get_experiment_by_name(name)
    runs = client.search_runs([exp.experiment_id], "tags.`superconv.role` != 'study'")
    return {r.info.run_name: r for r in runs}


def test_a_study_is_logged_with_its_curves_params_summaries_and_provenance(study: Path, mlflow_uri: str) -> None:
    spec = read_study(study)
    done = _import(study, mlflow_uri)
    assert (sorted(done.logged), done.kept, done.replaced, done.report) == (sorted(RUNS), [], [], "logged")
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(spec.name)
    assert exp is not None
    parents = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study'")
    assert [p.data.tags["superconv.study"] for p in parents] == [spec.name]
    parent = parents[0]
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} == {"report/report.md",
                                                                                     "report/figures"}
    local = Path(client.download_artifacts(parent.info.run_id, "report/report.md"))
    assert local.read_text() == Path(spec.report.out, "report.md").read_text()

    children = _children(client, spec.name)
    assert sorted(children) == sorted(RUNS)
    for label, run in children.items():
        source = Path(spec.results) / label
        config = yaml.safe_load((source / "config.yaml").read_text())
        provenance = json.loads((source / "provenance.json").read_text())
        tags = run.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.params == flatten(config)
        assert (tags["superconv.study"], tags["superconv.seed"], tags["superconv.imported"],
                tags["superconv.source"]) == (spec.name, str(config["seed"]), "true", str(source))
        assert tags["superconv.role"] == ("range_test" if label.startswith("range_test") else "train")
        assert tags["superconv.run"] == label.rsplit("-", 1)[0]
        for key in ("machine", "python", "torch", "torch_threads"):
            assert tags[f"superconv.provenance.{key}"] == str(provenance[key])
        assert tags["superconv.provenance.code_files"] == str(len(provenance["code"]))
        assert tags["superconv.provenance.code_sha256"] == hashlib.sha256(
            json.dumps(provenance["code"], sort_keys=True).encode()).hexdigest()
        assert "provenance.json" in {a.path for a in client.list_artifacts(run.info.run_id)}

        curve = _csv(source / ("metrics.csv" if (source / "metrics.csv").is_file() else "curve.csv"))
        assert len(curve) == ROWS
        for key in ("train_loss", "lr", "test_acc"):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            assert history == [(int(row["iteration"]), float(row[key])) for row in curve if row[key] != ""]
        result = json.loads((source / ("summary.json" if (source / "summary.json").is_file()
                                       else "suggestion.json")).read_text())
        numeric = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        assert numeric and all(run.data.metrics[k] == float(v) for k, v in numeric.items())
        if "wall_s" in result:  # the UI's duration is the run's own, not the import's
            assert run.info.end_time - run.info.start_time == int(result["wall_s"] * 1000)
    assert children["range_test-0"].data.metrics["rules.valley"] == json.loads(
        (Path(spec.results) / "range_test-0" / "suggestion.json").read_text())["rules"]["valley"]

    # the project's own MLflow reader (report.compare --study) sees the imported training runs as tracked ones
    trained = find_runs(client, spec.name, spec.name)
    assert sorted(r.info.run_name for r in trained) == ["one_cycle-0", "one_cycle-1"]
    for run in trained:
        summary, frame = run_record(client, run)
        assert summary["final_test_acc"] == json.loads(
            (Path(spec.results) / run.info.run_name / "summary.json").read_text())["final_test_acc"]
        assert len(frame) == ROWS


def test_a_rerun_logs_nothing_twice_and_replaces_what_changed(study: Path, mlflow_uri: str) -> None:
    spec = read_study(study)
    _import(study, mlflow_uri)
    client = MlflowClient(mlflow_uri)
    first = {label: run.info.run_id for label, run in _children(client, spec.name).items()}

    # again, through the command: nothing logged, every child and history as it was
    out = run_cli([sys.executable, "pipelines/mlflow_import.py", str(study), "--tracking-uri", mlflow_uri]).stdout
    assert f"{spec.name}: logged 0, kept 3, replaced 0, removed 0 runs (0 metric values); report unchanged" in out
    exp = client.get_experiment_by_name(spec.name)
    assert len(client.search_runs([exp.experiment_id], "")) == 1 + len(RUNS)
    assert {label: run.info.run_id for label, run in _children(client, spec.name).items()} == first
    for run_id in first.values():
        assert len(client.get_metric_history(run_id, "train_loss")) == ROWS

    # one committed value changes (a re-run): that child alone is replaced, the old one deleted
    metrics = Path(spec.results) / "one_cycle-1" / "metrics.csv"
    rows = _csv(metrics)
    rows[5]["train_loss"] = "1.25"
    with metrics.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # and the report changes (a file gone, one edited): the parent's report artifacts are the new ones only
    report = Path(spec.report.out)
    shutil.rmtree(report / "figures")
    (report / "report.md").write_text("# rebuilt\n")
    done = _import(study, mlflow_uri)
    assert (done.logged, sorted(done.kept), done.replaced) == ([], ["one_cycle-0", "range_test-0"], ["one_cycle-1"])
    assert done.report == "logged"
    parent = client.search_runs([exp.experiment_id], "tags.`superconv.role` = 'study'")[0].info.run_id
    assert [a.path for a in client.list_artifacts(parent, "report")] == ["report/report.md"]
    assert Path(client.download_artifacts(parent, "report/report.md")).read_text() == "# rebuilt\n"
    now = {label: run.info.run_id for label, run in _children(client, spec.name).items()}
    assert now["one_cycle-0"] == first["one_cycle-0"] and now["one_cycle-1"] != first["one_cycle-1"]
    assert client.get_run(first["one_cycle-1"]).info.lifecycle_stage == "deleted"
    history = {m.step: m.value for m in client.get_metric_history(now["one_cycle-1"], "train_loss")}
    assert len(history) == ROWS and history[int(rows[5]["iteration"])] == 1.25

    # a child an interrupted import left RUNNING is replaced; a child whose directory is gone is removed
    client.update_run(now["one_cycle-0"], status="RUNNING")
    shutil.rmtree(Path(spec.results) / "range_test-0")
    done = _import(study, mlflow_uri)
    assert (done.replaced, done.kept, done.removed) == (["one_cycle-0"], ["one_cycle-1"], ["range_test-0"])
    assert sorted(_children(client, spec.name)) == ["one_cycle-0", "one_cycle-1"]


@pytest.mark.parametrize("path", sorted(ROOT.glob("studies/*/study.yaml")), ids=lambda p: p.parent.name)
def test_the_torch_free_reader_agrees_with_the_study_loader(path: Path) -> None:
    from superconv.stages.study import load_study

    full, mine = load_study(path), read_study(path)
    assert (mine.name, mine.results, mine.report.out) == (full.name, full.results, full.report.out)
