"""The report stage: reports/ from the result files, logged to the study's MLflow parent run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from superconv.common.tracking import log_to_study
from superconv.report.build import build_report, build_study_report, write_not_run_report
from superconv.report.reference import load_reference
from superconv.report.results import study_run_dirs
from superconv.stages.schema import validate_report
from superconv.stages.study import load_study, plans


def report_stage(cfg: DictConfig) -> dict[str, Any]:
    """Build reports/, print each verdict, and attach reports/ to the study's parent run."""
    validate_report(cfg)
    built = build_report(Path(cfg.results), Path(cfg.out), cfg.compare.policy, cfg.compare.baseline,
                         Path(cfg.range_test_dir) if cfg.range_test_dir else None)
    for line in built["verdicts"]:
        print(line)
    if cfg.tracking.enabled and cfg.study:
        log_to_study(cfg.tracking.uri, cfg.tracking.experiment, cfg.study, Path(cfg.out))
    return built


def study_report_stage(study_file: Path) -> dict[str, Any]:
    """A study's report (studies/<name>/study.yaml) from whatever runs have finished: none is re-run. With none
    finished it says what the study runs and how, so every study has a report for DVC and the paper report."""
    spec = load_study(study_file)
    ranges = [name for name, run in spec.runs.items() if run.stage == "range_test"]
    if study_run_dirs(Path(spec.results)):
        built = build_study_report(Path(spec.results), Path(spec.report.out), spec.report.policy,
                                   spec.report.baseline, ranges, load_reference(spec.published), plans(spec))
    else:
        plan = [{"run": name, "stage": run.stage, "seeds": " ".join(map(str, run.seeds or spec.seeds)),
                 "overrides": " ".join(f"`{o}`" for o in run.overrides)} for name, run in spec.runs.items()]
        how = [f"dvc repro studies/dvc.yaml:report@{spec.name}",
               f"# or, without DVC: python pipelines/study.py {study_file}",
               f"#                  python pipelines/study_report.py {study_file}"]
        built = write_not_run_report(Path(spec.report.out), f"{spec.name}: not run yet", f"`{spec.results}`",
                                     plan, how)
    for line in built["verdicts"]:
        print(line)
    return built
