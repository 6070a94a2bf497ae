"""The SLURM preset conf/hydra/launcher/slurm.yaml: no cluster here, so its sbatch script is rendered by
the plugin's own launch code and submitit, and checked line by line. (`hydra/launcher=local` runs a real
sweep in test_mlflow_server.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import TINY

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[cluster]'")


class _Submitted(Exception):
    """Raised instead of submitting: carries the executor the launcher configured."""


def test_slurm_preset_renders_the_expected_sbatch_script(tmp_path, monkeypatch) -> None:
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate
    from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string

    from superconv.stages.compose import CONF_DIR

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
