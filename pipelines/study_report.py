"""DVC stage `report@<study>` (studies/dvc.yaml): a study's report from the runs that have finished."""

import sys
from pathlib import Path

from superconv.stages.cli import run_guarded
from superconv.stages.report import study_report_stage

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python pipelines/study_report.py studies/<name>/study.yaml")
    run_guarded(lambda: study_report_stage(Path(sys.argv[1])))
