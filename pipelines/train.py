"""DVC stage `train`: one training run (see conf/train.yaml); `-m` sweeps run one MLflow child per point."""

import hydra
from omegaconf import DictConfig

from superconv.stages.cli import hydra_choice, run_guarded, sweep_defaults
from superconv.stages.compose import report_names
from superconv.stages.train import train_stage


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    study = sweep_defaults(cfg) or "adhoc"
    experiment, run_name = report_names(cfg, hydra_choice("experiment", None),
                                        hydra_choice("schedule", cfg.schedule.policy))
    summary = run_guarded(lambda: train_stage(cfg, run_name, study, experiment))
    return summary["final_test_acc"]


if __name__ == "__main__":
    main()
