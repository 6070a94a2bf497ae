"""The published reference (published.yaml) as data: rows keyed to study runs, and the claims to verdict."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ROW_DEFAULTS = {"train_size": None, "iterations": None, "epochs": None, "mean": None, "std": None, "n": None,
                "authors_log": None, "note": "", "needs": "", "family": None, "independent": None}


@dataclass(frozen=True)
class Reference:
    rows: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    study_claims: list[dict[str, Any]]
    datasets: dict[str, int]
    groups: dict[str, dict[str, Any]]
    independent_sources: dict[str, str]  # name -> who ran the reproduction, how, and where its numbers are

    def row(self, key: str) -> dict[str, Any]:
        found = next((r for r in self.rows if r["key"] == key), None)
        if found is None:
            raise KeyError(f"published.yaml has no row {key!r}")
        return found

    def rows_of(self, experiment: str, run: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["experiment"] == experiment and r["run"] == run]

    def full_size(self, row: dict[str, Any]) -> int | None:
        """The training-set size a row used: its train_size, else the dataset's full size."""
        return row["train_size"] or self.datasets.get(row["dataset"])


def row_key(experiment: str, run: str, train_size: int | None) -> str:
    """`<experiment>/<run>`, plus `@<train_size>` for limited-data rows (the YAML's keying convention)."""
    return f"{experiment}/{run}" + (f"@{train_size}" if train_size else "")


def load_reference(path: Path | None = None) -> Reference:
    """Read published.yaml (the packaged one by default); rows get their group's fields and a key."""
    text = Path(path).read_text() if path else resources.files("superconv.report").joinpath(
        "published.yaml").read_text()
    data = yaml.safe_load(text)
    groups = data["groups"]
    rows = []
    for raw in data["rows"]:
        group = {k: v for k, v in groups[raw["group"]].items() if k != "title"}
        row = {**ROW_DEFAULTS, **group, **raw}
        row["key"] = row_key(row["experiment"], row["run"], row["train_size"])
        if row["independent"] is not None:
            name = row["independent"]["source"]
            if name not in data["independent_sources"]:
                raise ValueError(f"published.yaml: row {row['key']} names an unknown independent source {name!r}")
            row["independent"] = {**row["independent"], "cite": data["independent_sources"][name]}
        rows.append(row)
    keys = [r["key"] for r in rows]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"published.yaml: duplicate row keys {sorted(duplicates)}")
    return Reference(rows, data["claims"], data["study_claims"], data["datasets"], groups,
                     data["independent_sources"])
