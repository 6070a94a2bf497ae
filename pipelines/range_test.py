"""DVC stage `range_test`: the LR range test (see conf/range_test.yaml)."""

import hydra
from omegaconf import DictConfig

from superconv.stages.cli import run_guarded, sweep_defaults
from superconv.stages.range_test import range_test_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="range_test")
def main(cfg: DictConfig) -> None:
    study = sweep_defaults(cfg) or "adhoc"
    run_guarded(lambda: range_test_stage(cfg, study))


if __name__ == "__main__":
    main()
