"""A killed run resumed under a changed config is refused, naming the changed key, and nothing in its directory is
touched (the interrupted runs themselves and their bit-identical resumes: test_faults.py)."""

from __future__ import annotations

import shutil
import signal

import pytest

from tests.conftest import TINY, run_entry
from tests.integration.test_faults import STAGES, _start, _wait_for_checkpoint

# One change per config group that the old allow-list let through: each is refused on resume, by name.
CHANGED = ["augment=flip", "trainer.eval_every=7", "trainer.channels_last=false", "trainer.divergence_factor=50",
           "optimizer.weight_decay=1e-3", "schedule.base_lr=0.02", "model.init=msra", "trainer.cpu_mode=native"]


@pytest.fixture(scope="module")
def killed(tmp_path_factory, data_root, mlflow_uri):
    """One training run killed -9 after its first checkpoint: an unfinished run directory, which each test below
    resumes in a copy of its own (``out`` is no part of a run's identity, so a copy is the same unfinished run)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    proc = _start("train", out, data_root)
    _wait_for_checkpoint(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.communicate()
    assert not (out / STAGES["train"][1]).exists(), "killed before its end"
    return out


@pytest.mark.parametrize("change", CHANGED)
def test_resume_under_a_changed_config_is_refused_naming_the_key(tmp_path, data_root, killed, change) -> None:
    out = tmp_path / "run"
    shutil.copytree(killed, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    script, *extra = STAGES["train"][0]
    again = run_entry(["python", script, *TINY, *extra, f"out={out}", f"data_root={data_root}",
                       "trainer.checkpoint_every=10", "trainer.log_every=5", change])  # the entry point, in-process
    key, value = change.split("=")
    key = "augment.name" if key == "augment" else key
    assert again.returncode == 2, again.stderr
    assert f"{key}:" in again.stderr and "Traceback" not in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing touched
