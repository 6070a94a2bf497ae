"""Every committed study is wired right before anyone spends a GPU on it: its file validates, every run's overrides
compose and pass the stage's checks, run names are published rows or named alternatives, and results never share a
directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from superconv.report.reference import load_reference
from superconv.stages import config as C
from superconv.stages.study import expand, load_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted(ROOT.glob("studies/*/study.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.parent.name for p in STUDIES])
def test_every_run_of_the_study_composes_and_validates(path: Path) -> None:
    spec = load_study(path)
    assert spec.name == path.parent.name and spec.results == f"results/{spec.name}"
    assert spec.report.out == f"reports/{spec.name}"
    assert {spec.report.policy, spec.report.baseline} <= set(spec.runs)
    first = {}
    for job in expand(spec, threads=1):
        first.setdefault(job.name, job)
    for job in first.values():
        cfg = C.compose_stage_config(job.stage, list(job.overrides))
        (C.validate_train if job.stage == "train" else C.validate_range_test)(cfg)


def test_published_runs_land_on_their_rows_and_studies_do_not_share_results() -> None:
    ref = load_reference()
    keys = {r["key"] for r in ref.rows}
    seen: dict[str, str] = {}
    for path in STUDIES:
        spec = load_study(path)
        assert spec.results not in seen, f"{path} shares {spec.results} with {seen.get(spec.results)}"
        seen[spec.results] = str(path)
        experiments = {o.split("=", 1)[1] for r in spec.runs.values() for o in r.overrides
                       if o.startswith("experiment=")}
        published = [name for name in spec.runs if any(f"{e}/{name}" in keys for e in experiments)]
        assert spec.report.policy in published and spec.report.baseline in published, path
        assert len(published) >= 2, f"{path}: fewer than two runs match a published row"
