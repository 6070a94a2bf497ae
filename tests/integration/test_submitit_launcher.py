"""Hydra's submitit launcher presets (conf/hydra/launcher/{local,slurm}.yaml) with pipelines/train.py.

`hydra/launcher=local` runs a real sweep: submitit pickles each point and runs it in its own process,
as on SLURM. `hydra/launcher=slurm` cannot run here (no cluster): its sbatch script is rendered by the
plugin's own launch code and submitit, and checked line by line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import TINY

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")

ITERATIONS = 10


@pytest.mark.slow
def test_local_launcher_sweep_runs_every_point_into_one_study(tmp_path, cli, data_root, mlflow_uri) -> None:
    sweep_dir = tmp_path / "sweep"
    cli(["python", "pipelines/train.py", "-m", *TINY, "seed=0,1", f"data_root={data_root}",
         f"trainer.max_iterations={ITERATIONS}", "trainer.log_every=2", "trainer.threads=1",
         "hydra/launcher=local", f"hydra.sweep.dir={sweep_dir}"])
    # Outputs where a joblib or basic sweep puts them; submitit's job folders beside them.
    summaries = [json.loads((sweep_dir / str(i) / "summary.json").read_text()) for i in range(2)]
    assert [s["seed"] for s in summaries] == [0, 1]
    job_logs = sorted((sweep_dir / ".submitit").glob("*/*_0_log.out"))
    assert len(job_logs) == 2 and all("Job completed successfully" in p.read_text() for p in job_logs)

    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name("superconv")
    parents = client.search_runs(
        [exp.experiment_id], f"tags.`superconv.study` = 'sweep:{sweep_dir}' and tags.`superconv.role` = 'study'")
    assert len(parents) == 1
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
    assert sorted(c.info.run_id for c in children) == sorted(s["tracking_run_id"] for s in summaries)
    for i, run in enumerate(sorted(children, key=lambda c: c.data.params["seed"])):
        assert run.info.status == "FINISHED" and run.data.params["seed"] == str(i)
        metrics = pd.read_csv(sweep_dir / str(i) / "metrics.csv")
        history = sorted(client.get_metric_history(run.info.run_id, "train_loss"), key=lambda m: m.step)
        assert [m.step for m in history] == metrics["iteration"].tolist() == list(range(ITERATIONS))
        assert [m.value for m in history] == pytest.approx(metrics["train_loss"].tolist(), rel=1e-6)


class _Submitted(Exception):
    """Raised instead of submitting: carries the executor the launcher configured."""


def test_slurm_preset_renders_the_expected_sbatch_script(tmp_path, monkeypatch) -> None:
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    from superconv.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", [*TINY, "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}",
                                "hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=30",
                                "hydra.job.name=train"], return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg

    def capture(executor, fn, *iterables):
        raise _Submitted(executor, [list(it) for it in iterables])

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # "srun is installed"
    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    with pytest.raises(_Submitted) as submitted:
        launcher.launch([["seed=0"], ["seed=1"]], initial_job_idx=0)
    executor, (overrides, *_) = submitted.value.args
    assert overrides == [["seed=0"], ["seed=1"]]
    script = _make_sbatch_string(command="python -u -m submitit.core._submit FOLDER", folder=executor.folder,
                                 map_count=2, **executor._executor.parameters)
    flags = dict(re.findall(r"^#SBATCH --([\w-]+)=(.*)$", script, re.M))
    assert {k: flags.get(k) for k in ("partition", "time", "nodes", "ntasks-per-node", "gpus-per-node",
                                      "cpus-per-task", "mem", "array", "signal", "job-name")} == {
        "partition": "gpu", "time": "30", "nodes": "1", "ntasks-per-node": "1", "gpus-per-node": "1",
        "cpus-per-task": "8", "mem": "32GB", "array": "0-1%2", "signal": "USR2@120", "job-name": "train"}
    assert executor._executor.parameters["array_parallelism"] == 16  # %16 once a sweep has more points
    assert "export OMP_NUM_THREADS=8" in script.splitlines()
    assert re.search(r"^srun --unbuffered .* python -u -m submitit.core._submit FOLDER$", script, re.M)
    assert Path(str(executor.folder)).parent == tmp_path / ".submitit"
