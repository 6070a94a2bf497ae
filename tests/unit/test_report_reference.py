"""published.yaml is typed, consistent data: unique keys, tagged sources, claims that name existing rows; a bad key
or value is refused by name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from superconv.common.errors import ConfigError
from superconv.report.claims import CHECKS
from superconv.report.reference import load_reference

PUBLISHED = Path(str(resources.files("superconv.report").joinpath("published.yaml")))

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


def _mutated(tmp_path, old: str, new: str):
    text = PUBLISHED.read_text()
    assert old in text, old
    path = tmp_path / "published.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(("old", "new", "named"), [
    # a misspelt margin once read as a zero margin, and the verdict could move without a word
    ("id: mnist_not_worse, type: not_worse, margin_pp:", "id: mnist_not_worse, type: not_worse, margn_pp:",
     "claims[1].margn_pp=0.1 is not a setting of claims[1] (did you mean 'margin_pp'?)"),
    ("type: speedup, experiment: paper_mnist_lenet, policy: one_cycle, baseline: inv, max_ratio: 0.2",
     "type: speedup, experiment: paper_mnist_lenet, policy: one_cycle, baseline: inv",
     "claims[0].max_ratio is not set: it must be a number > 0"),
    ("max_ratio: 0.2", "max_ratio: fast", "claims[0].max_ratio='fast' must be a number > 0"),
    ("type: gap_grows", "type: gap_grow", "claims[9].type='gap_grow' must be one of 'speedup', 'not_worse', 'better'"),
    ("mean: 99.25, std: 0.03", "mena: 99.25, std: 0.03",
     "mena=99.25 is not a setting of rows[52] (did you mean 'mean'?)"),
    ("mean: 99.25, std: 0.03", "mean: 992.5, std: 0.03", "rows[52].mean=992.5 must be null or a number in [0, 100]"),
    ('    title: "Paper 2 Table 2: LeNet, MNIST"', '    titel: "Paper 2 Table 2: LeNet, MNIST"',
     "groups.table2_mnist.titel='Paper 2 Table 2: LeNet, MNIST' is not a setting of groups.table2_mnist (did you "
     "mean 'title'?)"),
    ("verified: PAPER-2nd\n    n: 4\n    needs: \"the full MNIST",
     "verified: PAPER-2\n    n: 4\n    needs: \"the full MNIST",
     "groups.table2_mnist.verified='PAPER-2' must be one of 'REPO', 'PAPER-2nd', 'PAPER-img', 'UNVERIFIED'"),
    ("source: coxy}}\n  - {group: table2_mnist, run: step", "source: coxx}}\n  - {group: table2_mnist, run: step",
     "independent.source: 'coxx' is not a key of independent_sources"),
    ("paper_mnist_lenet/one_cycle_85ep]", "paper_mnist_lenet/one_cycle_58ep]",
     "claims.2 (mnist_matches): no row 'paper_mnist_lenet/one_cycle_58ep'"),
])
def test_a_bad_key_or_value_is_one_error_naming_it(tmp_path, old, new, named) -> None:
    with pytest.raises(ConfigError) as err:
        load_reference(_mutated(tmp_path, old, new))
    assert named in str(err.value) and "\n" not in str(err.value)


def test_a_better_claim_without_margin_takes_zero_and_a_typed_copy_loads_as_before(tmp_path) -> None:
    same = load_reference(_mutated(tmp_path, "rows:", "rows:"))
    assert same == load_reference()
    better = next(c for c in same.claims if c["id"] == "mnist_cm_beats_constant")
    assert better["margin_pp"] == 0 and better["type"] == "better"
    cut = load_reference(_mutated(tmp_path, "type: better, margin_pp: 0, experiment: paper_mnist_lenet, policy: "
                                  "one_cycle,\n     baseline: momentum_0.9",
                                  "type: better, experiment: paper_mnist_lenet, policy: one_cycle,\n"
                                  "     baseline: momentum_0.9"))
    assert next(c for c in cut.claims if c["id"] == "mnist_cm_beats_constant")["margin_pp"] == 0.0
