"""DVC stage `report`: figures, tables and verdicts into reports/ (see conf/report.yaml)."""

import hydra
from omegaconf import DictConfig

from superconv.stages.cli import run_guarded
from superconv.stages.report import report_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="report")
def main(cfg: DictConfig) -> None:
    run_guarded(lambda: report_stage(cfg))


if __name__ == "__main__":
    main()
