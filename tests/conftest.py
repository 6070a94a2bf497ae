"""Shared fixtures: one real MLflow SQLite store per session, sklearn digits prepared once, CLI runner."""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning. The two workers' processes each run torch's default two threads
# on a 2-core machine, so a thread spinning at a barrier takes the core another process's thread needs: a tiny
# training run took up to 15x longer under a competing 2-thread job than with the threads passive. The wait
# policy changes no result (the same threads split the same work; the golden curves hold bit for bit). It must be
# set before torch loads libgomp, here for in-process runs; the stages' processes inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from superconv.core.cpu_mode import PINNED_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "DVC_NO_ANALYTICS": "1",
                   "MLFLOW_DISABLE_AGENT_HINT": "1"})
# The libraries read these at their first kernel, which in a test worker may come before any stage pins them:
# every in-process run is then in the pinned CPU mode its config asks for (a native one keeps pinned kernels).
os.environ.update(PINNED_ENV)


DEFAULT_THREADS = torch.get_num_threads()

# The modules that take longest, longest first; the others follow in their collected order. pytest-xdist's loadfile
# keeps each module on one worker and hands out modules in the collected order (--no-loadscope-reorder in
# pyproject.toml), so starting these first keeps the two workers busy to the end instead of leaving one of them
# with a slow module after the other has run out of work.
SLOWEST_FIRST = ("tests/e2e/test_dvc_pipeline.py",
                 "tests/integration/test_study.py", "tests/integration/test_faults.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: file order within


@pytest.fixture(autouse=True)
def _default_torch_threads() -> None:
    """A test that sets torch's thread count (trainer.threads, bench --threads) must not change the numerics of the
    tests after it in the same worker: CPU float sums depend on the thread count (the golden curves are exact)."""
    yield
    torch.set_num_threads(DEFAULT_THREADS)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the session (creating one costs ~5 s); every test logs there."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from mlflow.tracking import MlflowClient

    MlflowClient(uri).search_experiments()  # creates the schema once, before any parallel writer
    return uri


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sklearn digits prepared once into a session data root."""
    from superconv.stages.compose import compose_stage_config
    from superconv.stages.prepare import prepare_stage

    root = tmp_path_factory.mktemp("prepared")
    cfg = compose_stage_config("prepare", ["dataset=digits", f"data_root={root}"])
    prepare_stage(cfg)
    return root


def run_cli(args: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with this interpreter's venv first on PATH (as `make` does)."""
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def run_entry(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python pipelines/<stage>.py ...`` (or ``python -m <module> ...``) run in this process, from the project root:
    the same entry point, Hydra composition and exit code as a process of its own, without the ~4 s of imports that
    a process pays before its first check. For the many runs that stop at a check (bad input, a refused resume);
    tests/integration/test_bad_input.py keeps one of them a real process, for the exit status the shell sees."""
    import contextlib
    import io
    import runpy

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    os.environ.update(env or {})
    module = args[2] if args[1] == "-m" else None
    sys.argv = [module or args[1], *args[(3 if module else 2):]]
    try:
        with contextlib.chdir(ROOT), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if module:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
                else:
                    runpy.run_path(str(ROOT / args[1]), run_name="__main__")
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def project_repo(dest: Path, params: dict[str, Any],
                 skip: tuple[str, ...] = ("reports/", "dvc.lock", "studies/dvc.lock")) -> Path:
    """The committed project files (less ``skip``) copied to ``dest`` as a fresh git + DVC repo with ``params`` as
    its params.yaml: a real `dvc repro` there changes nothing of ours."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in files.split():
        if rel.startswith(skip) or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"]):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


@pytest.fixture(scope="session")
def cli():
    return run_cli


TINY = ["experiment=tiny_digits_lenet", "trainer.progress=false"]
