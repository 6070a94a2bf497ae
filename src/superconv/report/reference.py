"""The published reference (published.yaml) as data: rows keyed to study runs, and the claims to verdict."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from superconv.common.errors import ConfigError
from superconv.common.explain import explain

ROW_DEFAULTS = {"train_size": None, "iterations": None, "epochs": None, "mean": None, "std": None, "n": None,
                "authors_log": None, "note": "", "needs": "", "family": None, "independent": None}
Tag = Literal["REPO", "PAPER-2nd", "PAPER-img", "UNVERIFIED"]
Pct = Annotated[float, Field(ge=0, le=100)]
Positive = Annotated[int, Field(ge=1)]


class _Strict(BaseModel):
    """Every key known: a misspelt one is an error, never a silently absent value (e.g. a zero margin)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Described(_Strict):
    """What a row and its group share: the group gives them, a row may override them."""

    experiment: str | None = None
    dataset: str | None = None
    model: str | None = None
    source: str | None = None
    verified: Tag | None = None
    n: Positive | None = None
    needs: str | None = None


class Group(_Described):
    title: str
    source: str
    verified: Tag


class Independent(_Strict):
    mean: Pct
    n: Positive
    source: str  # a key of independent_sources


class Row(_Described):
    group: str
    run: str
    policy: str
    family: str | None = None
    train_size: Positive | None = None
    iterations: Positive | None = None
    epochs: Annotated[float, Field(gt=0)] | None = None
    mean: Pct | None = None
    std: Annotated[float, Field(ge=0)] | None = None
    authors_log: Pct | None = None
    note: str | None = None
    independent: Independent | None = None


class _Claim(_Strict):
    id: str
    text: str


class _Pair(_Claim):
    experiment: str
    policy: str
    baseline: str


class _SpeedupRule(_Strict):
    """Iterations to the baseline's accuracy over its budget, against max_ratio."""

    type: Literal["speedup"]
    max_ratio: Annotated[float, Field(gt=0)]


class _NotWorseRule(_Strict):
    """Non-inferiority by margin_pp (required: no margin is a claim of its own, say 0)."""

    type: Literal["not_worse"]
    margin_pp: Annotated[float, Field(ge=0)]


class Speedup(_SpeedupRule, _Pair):
    """A paper's speed-up claim for a named pair."""


class NotWorse(_NotWorseRule, _Pair):
    """A paper's non-inferiority claim for a named pair."""


class Better(_Pair):
    type: Literal["better"]
    margin_pp: Annotated[float, Field(ge=0)] = 0.0


class GapGrows(_Pair):
    type: Literal["gap_grows"]


class MatchesPublished(_Claim):
    type: Literal["matches_published"]
    tolerance_pp: Annotated[float, Field(gt=0)]
    rows: Annotated[list[str], Field(min_length=1)]
    # row key -> factor -> the runs that change that one factor against the row's run
    factors: dict[str, dict[str, Annotated[list[str], Field(min_length=1)]]] | None = None


class StudySpeedup(_SpeedupRule, _Claim):
    """A study's own pair (its policy and baseline fill the text)."""


class StudyNotWorse(_NotWorseRule, _Claim):
    """A study's own pair (its policy and baseline fill the text)."""


class Notes(_Strict):
    """The reference's own sentences in the report, so the report code names no paper."""

    evaluation: str = ""  # after the table of ours beside the published numbers: how the papers measured theirs
    limited_data: str = "Accuracy by training-set size"  # the limited-data figure's heading
    epochs: str = "Accuracy against epochs"  # the accuracy-by-budget figure's heading


Claim = Annotated[Speedup | NotWorse | Better | GapGrows | MatchesPublished, Field(discriminator="type")]
StudyClaim = Annotated[StudySpeedup | StudyNotWorse, Field(discriminator="type")]


class Published(_Strict):
    """published.yaml."""

    datasets: dict[str, Positive]
    groups: dict[str, Group]
    rows: list[Row]
    claims: list[Claim]
    study_claims: list[StudyClaim]
    independent_sources: dict[str, str]
    notes: Notes = Notes()


@dataclass(frozen=True)
class Reference:
    rows: list[dict[str, Any]]
    claims: list[dict[str, Any]]
    study_claims: list[dict[str, Any]]
    datasets: dict[str, int]
    groups: dict[str, dict[str, Any]]
    independent_sources: dict[str, str]  # name -> who ran the reproduction, how, and where its numbers are
    notes: Notes = Notes()

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


def load_reference(path: Path | str | None = None) -> Reference:
    """Read published.yaml (the packaged one by default), checked against ``Published``: a misspelt, missing or
    extra key, or a word where a number belongs, is one ConfigError naming it. Rows get their group's fields and a
    key; claims come back as dicts with their defaults filled (a ``better`` claim's margin_pp)."""
    name = str(path) if path else "published.yaml"
    text = Path(path).read_text() if path else resources.files("superconv.report").joinpath(
        "published.yaml").read_text()
    try:
        data = Published.model_validate(yaml.safe_load(text))
    except ValidationError as err:
        raise ConfigError(f"{name}: {explain(err, Published, name)}") from None
    rows = []
    for index, raw in enumerate(data.rows):
        if raw.group not in data.groups:
            raise ConfigError(f"{name}: rows.{index}.group: unknown group {raw.group!r}; groups: "
                              f"{', '.join(data.groups)}")
        group = data.groups[raw.group].model_dump(exclude_none=True, exclude={"title"})
        row = {**ROW_DEFAULTS, **group, **raw.model_dump(exclude_unset=True)}
        missing = [k for k in ("experiment", "dataset", "model") if not row.get(k)]
        if missing:
            raise ConfigError(f"{name}: rows.{index} ({row['run']}): {', '.join(missing)} missing, on the row and on "
                              f"its group {raw.group!r}: set it on either")
        row["key"] = row_key(row["experiment"], row["run"], row["train_size"])
        if row["independent"] is not None:
            source = row["independent"]["source"]
            if source not in data.independent_sources:
                raise ConfigError(f"{name}: rows.{index}.independent.source: {source!r} is not a key of "
                                  f"independent_sources ({', '.join(data.independent_sources)})")
            row["independent"] = {**row["independent"], "cite": data.independent_sources[source]}
        rows.append(row)
    keys = [r["key"] for r in rows]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ConfigError(f"{name}: duplicate row keys {sorted(duplicates)}")
    claims = [c.model_dump(exclude_none=True) for c in data.claims]
    for index, claim in enumerate(claims):
        unknown = [k for k in (*claim.get("rows", ()), *(claim.get("factors") or {})) if k not in keys]
        if unknown:
            raise ConfigError(f"{name}: claims.{index} ({claim['id']}): no row {unknown[0]!r}; a row key is "
                              f"<experiment>/<run>[@<train_size>]")
    ids = [c["id"] for c in claims]
    if len(set(ids)) < len(ids):
        raise ConfigError(f"{name}: duplicate claim ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return Reference(rows, claims, [c.model_dump(exclude_none=True) for c in data.study_claims], data.datasets,
                     {k: g.model_dump(exclude_none=True) for k, g in data.groups.items()}, data.independent_sources,
                     data.notes)
