"""Every committed study is wired right before anyone spends a GPU on it: its file validates, every run's overrides
compose and pass the stage's checks, run names are published rows or named alternatives, and results never share a
directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from superconv.common.errors import ConfigError
from superconv.report.reference import load_reference
from superconv.stages import compose, rules
from superconv.stages.study import apply_profile, expand, load_study

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted(ROOT.glob("studies/*/study.yaml"))


def base_names(spec) -> set[str]:  # noqa: ANN001
    """A study's run names less their variant (``clr@40000`` is the published row `clr` at 40,000 images)."""
    return {name.split("@")[0] for name in spec.runs}


@pytest.mark.parametrize("path", STUDIES, ids=[p.parent.name for p in STUDIES])
def test_every_run_of_the_study_composes_and_validates(path: Path) -> None:
    spec = load_study(path)
    assert spec.name == path.parent.name and spec.results == f"results/{spec.name}"
    assert spec.report.out == f"reports/{spec.name}"
    assert {spec.report.policy, spec.report.baseline} <= base_names(spec)
    first = {}
    for job in expand(spec, threads=1):
        first.setdefault(job.name, job)
    for job in first.values():
        cfg = compose.compose_stage_config(job.stage, list(job.overrides))
        (rules.validate_train if job.stage == "train" else rules.validate_range_test)(cfg)


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
        # a preset may file its rows under another experiment's (the limited-data rows are Fig 1a's)
        experiments |= {OmegaConf.select(compose.compose_stage_config("train", [f"experiment={e}"]),
                                         "report_experiment") for e in experiments} - {None}
        published = [name for name in spec.runs if any(f"{e}/{name}" in keys for e in experiments)]
        assert {spec.report.policy, spec.report.baseline} <= {n.split("@")[0] for n in published}, path
        assert len(published) >= 2, f"{path}: fewer than two runs match a published row"


def test_the_studies_pipeline_lists_every_study_and_the_paper_report_reads_each() -> None:
    params = yaml.safe_load((ROOT / "studies/params.yaml").read_text())
    assert set(params["studies"]) == {p.parent.name for p in STUDIES}
    assert {s["data"] for s in params["studies"].values()} <= {*params["datasets"], "mnist"}
    paper = yaml.safe_load((ROOT / "studies/dvc.yaml").read_text())["stages"]["paper"]
    assert {f"reports/{name}" for name in params["studies"]} <= set(paper["deps"])


@pytest.mark.parametrize("path", STUDIES, ids=[p.parent.name for p in STUDIES])
def test_the_ci_profile_keeps_the_report_pair_at_three_iterations(path: Path) -> None:
    spec = load_study(path)
    ci = apply_profile(spec, path, "ci")
    assert {spec.report.policy, spec.report.baseline} <= base_names(ci)
    for job in expand(ci, threads=1):
        assert job.seed in (spec.profiles["ci"].seeds or spec.seeds)
        cfg = compose.compose_stage_config(job.stage, list(job.overrides))
        assert cfg.trainer.max_iterations == 3 and not cfg.tracking.enabled, job.label


def test_a_profile_filters_reseeds_extends_and_parallelises_the_runs_and_names_what_is_wrong(tmp_path: Path) -> None:
    study = {"name": "s", "results": "results/s", "seeds": [0, 1, 2], "jobs": 1,
             "report": {"out": "reports/s", "policy": "a",
             "baseline": "b"}, "runs": {"a": {"overrides": ["x=1"]}, "b": {"overrides": ["y=2"], "seeds": [5]},
                                        "c": {}},
             "profiles": {"quick": {"only": ["a", "b"], "seeds": [0], "overrides": ["+profile=ci"], "jobs": 2},
                          "plain": {"seeds": [1]}, "bad": {"only": ["a", "nope"]}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    spec = load_study(path)
    assert apply_profile(spec, path, None) is spec
    quick = apply_profile(spec, path, "quick")
    jobs = {job.label: job.overrides for job in expand(quick, threads=1)}
    assert set(jobs) == {"a-0", "b-0"}
    assert jobs["a-0"][:2] == ("x=1", "+profile=ci") and jobs["b-0"][:2] == ("y=2", "+profile=ci")
    assert quick.jobs == 2 and apply_profile(spec, path, "plain").jobs == 1  # a profile's jobs, else the study's
    with pytest.raises(ConfigError, match="SUPERCONV_PROFILE=slow: .* no such profile; its profiles: bad, plain, q"):
        apply_profile(spec, path, "slow")
    with pytest.raises(ConfigError, match="profiles.bad names nope, not runs of the study; runs: a, b, c"):
        apply_profile(spec, path, "bad")
