"""DVC stage `prepare`: fetch a dataset and write data/prepared/<name>/ (see conf/prepare.yaml)."""

import hydra
from omegaconf import DictConfig

from superconv.stages.cli import run_guarded
from superconv.stages.prepare import prepare_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    run_guarded(lambda: prepare_stage(cfg))


if __name__ == "__main__":
    main()
