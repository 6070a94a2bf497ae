"""published.yaml is consistent data: unique keys, tagged sources, claims that name existing rows."""

from __future__ import annotations

from superconv.report.claims import CHECKS
from superconv.report.reference import load_reference

TAGS = {"REPO", "PAPER-2nd", "PAPER-img", "UNVERIFIED"}


def test_every_row_is_keyed_sourced_and_tagged() -> None:
    ref = load_reference()
    assert len(ref.rows) > 60
    for row in ref.rows:
        assert row["verified"] in TAGS, row["key"]
        assert row["source"] and row["needs"] and row["dataset"] and row["model"], row["key"]
        assert row["mean"] is not None or row["authors_log"] is not None or row["note"], row["key"]
        assert row["iterations"] or row["epochs"], row["key"]
    assert ref.row("paper_mnist_lenet/one_cycle")["mean"] == 99.25
    assert ref.row("paper_cifar10_resnet56/pc@20000")["authors_log"] == 62.33


def test_independent_reproductions_are_data_with_their_source() -> None:
    """coxy1989/superconv's Keras 5-run means of the MNIST rows, each resolved to its cited source."""
    ref = load_reference()
    found = {r["run"]: r["independent"]["mean"] for r in ref.rows
             if r["experiment"] == "paper_mnist_lenet" and r["independent"]}
    assert found == {"inv": 98.92, "one_cycle": 99.05, "one_cycle_25ep": 99.01, "one_cycle_50ep": 99.02,
                     "one_cycle_85ep": 99.07}
    cite = ref.row("paper_mnist_lenet/one_cycle")["independent"]["cite"]
    assert "coxy1989/superconv" in cite and "5feadb6032e16b93b2ddbd1b84460796a865d48b" in cite


def test_claims_name_existing_rows_and_known_types() -> None:
    ref = load_reference()
    for claim in [*ref.claims, *ref.study_claims]:
        assert claim["type"] in CHECKS and claim["text"]
        for key in claim.get("rows", []):
            ref.row(key)
        if "experiment" in claim:
            assert ref.rows_of(claim["experiment"], claim["policy"]), claim["id"]
            if claim["type"] != "better":  # an ablation's alternative has no published row of its own
                assert ref.rows_of(claim["experiment"], claim["baseline"]), claim["id"]
        assert set(claim.get("factors") or {}) <= set(claim.get("rows", [])), claim["id"]
