"""dvc.yaml's deps cover, for every stage, what the stage runs: derived here, never typed twice.

For each stage: the entry script named in its cmd; every superconv module the script imports, closed over the
package's import graph (grimp; imports inside functions count), as files (each package's ``__init__.py`` too, since
importing a module runs them, and the ``*.yaml`` package data beside them); the script's Hydra entry config
(``conf/<stage>.yaml``) and the folder of every conf/ group it composes: its defaults list (a ``null`` default counts
when the cmd sets the group), plus, when the experiment group composes, every group a preset ``override``s. A dep
covers a path when it equals it or is a folder above it; ``${...}`` is resolved from params.yaml (and ``vars``),
and a ``foreach`` stage is checked once per item. Report and bench
code must be no dep of a stage that does not import it, README and docs no dep at all, and every dep must exist or be
another stage's output.

Check another checkout by hand (its package first on the path):
``PYTHONPATH=<checkout>/src python tests/unit/test_dvc_deps.py <checkout>``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grimp
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "superconv"
OPTIONAL_LAYERS = ("report", "bench")  # code that a stage must not depend on unless it imports it
NEVER_DEPS = ("README.md", "docs")
# Scripts that launch others as processes (a study runs train and range-test processes): a stage running one needs
# what the launched scripts run too, with every conf/ group, since a study's overrides may pick any.
LAUNCHES = {"pipelines/study.py": ("pipelines/train.py", "pipelines/range_test.py")}
PIPELINES = ["dvc.yaml", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("studies/**/dvc.yaml"))]


# ------------------------------------------------------------------------------------------------ dvc.yaml
def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def resolve(text: str, params: dict[str, Any]) -> str:
    """``${name}`` -> params.yaml's scalar value; ``${item.*}`` (matrix) and unknown names stay as written."""
    def value(match: re.Match[str]) -> str:
        found = params.get(match.group(1))
        return str(found) if isinstance(found, str | int | float) else match.group(0)

    return re.sub(r"\$\{\s*([\w.]+)\s*\}", value, text)


def pipeline_params(dvc_yaml: Path) -> dict[str, Any]:
    """What ``${...}`` sees in ``dvc_yaml``: the params.yaml beside it, then its ``vars`` (``file[:key,...]``)."""
    beside = dvc_yaml.parent / "params.yaml"
    params = dict(load_yaml(beside)) if beside.is_file() else {}
    for entry in load_yaml(dvc_yaml).get("vars", []):
        if isinstance(entry, dict):
            params.update(entry)
            continue
        name, _, keys = entry.partition(":")
        data = load_yaml(dvc_yaml.parent / name)
        params.update({k: data[k] for k in keys.split(",")} if keys else data)
    return params


def expand_stages(dvc_yaml: Path, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The stages of ``dvc_yaml`` as DVC names them, a ``foreach`` over a params dict expanded to ``<name>@<key>``
    with ``${key}``, ``${item}`` and ``${item.<field>}`` filled in (``matrix`` stages stay one entry)."""
    def fill(obj: Any, key: str, item: Any) -> Any:
        if isinstance(obj, dict):
            return {fill(k, key, item): fill(v, key, item) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fill(v, key, item) for v in obj]
        if not isinstance(obj, str):
            return obj
        obj = obj.replace("${key}", key)
        if isinstance(item, dict):
            return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), obj)
        return obj.replace("${item}", str(item))

    stages = {}
    for name, spec in load_yaml(dvc_yaml)["stages"].items():
        if "foreach" not in spec:
            stages[name] = spec
            continue
        items = params[re.fullmatch(r"\$\{\s*(\w+)\s*\}", spec["foreach"]).group(1)]
        stages.update({f"{name}@{key}": fill(spec["do"], key, item) for key, item in items.items()})
    return stages


def dep_paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def covers(dep: str, path: str) -> bool:
    dep = dep.rstrip("/")
    return dep in (".", "") or path == dep or path.startswith(f"{dep}/")


# ------------------------------------------------------------------------------------------------ the code
def script_imports(script: Path) -> set[str]:
    """superconv modules the script imports anywhere (module level or inside functions), as named."""
    found = set()
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def module_closure(graph: grimp.ImportGraph, imported: set[str]) -> set[str]:
    """The modules among ``imported`` (``from pkg import name`` may name a function) and all they import."""
    modules = {m for m in imported if m in graph.modules}
    for module in list(modules):
        modules |= {m for m in graph.find_upstream_modules(module) if m.split(".")[0] == PACKAGE}
    return modules


def hydra_targets(conf_paths: set[Path]) -> set[str]:
    """``_target_: superconv...`` dotted names in the yaml files of these conf/ files and folders (models are built
    by Hydra from conf/model, so no script imports their modules)."""
    files = [f for p in conf_paths for f in ([p] if p.is_file() else sorted(p.rglob("*.yaml")))]
    return {m for f in files for m in re.findall(rf"_target_:\s*[\"']?({PACKAGE}(?:\.\w+)+)", f.read_text())}


def module_files(modules: set[str], src: Path, root: Path) -> set[str]:
    """Repo-relative files that running these modules reads: each module, every package ``__init__.py`` above it,
    and the ``*.yaml`` package data in their folders."""
    files = set()
    for module in modules:
        parts = module.split(".")
        for n in range(1, len(parts) + 1):
            base = src.joinpath(*parts[:n])
            path = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
            if path.is_file():
                files.add(path.relative_to(root).as_posix())
                files |= {p.relative_to(root).as_posix() for p in path.parent.glob("*.yaml")}
    return files


# ------------------------------------------------------------------------------------------------- conf/
def hydra_entry(script: Path) -> Path | None:
    """``config_path/config_name.yaml`` of the script's ``@hydra.main``."""
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "main":
            kw = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            if "config_name" in kw:
                return (script.parent / kw.get("config_path", ".") / f"{kw['config_name']}.yaml").resolve()
    return None


def composed_groups(entry: Path, cmd: str | None) -> set[str]:
    """conf/ groups the entry config composes under ``cmd``: its defaults (``null`` ones only when the cmd sets
    them; every one when the cmd is not known, ``None``), plus every group an experiment preset overrides when the
    experiment group composes."""
    groups = set()
    for item in load_yaml(entry).get("defaults", []):
        if not isinstance(item, dict):
            continue
        (key, option), = item.items()
        group = key.removeprefix("override ").strip().lstrip("/")
        if option is None and cmd is not None and not re.search(rf"(?<![\w/.+~]){re.escape(group)}=", cmd):
            continue
        groups.add(group)
    if "experiment" in groups:
        for preset in sorted((entry.parent / "experiment").glob("*.yaml")):
            for item in load_yaml(preset).get("defaults", []):
                if isinstance(item, dict):
                    (key, _), = item.items()
                    if key.startswith("override /"):
                        groups.add(key.removeprefix("override /").strip())
    return groups


# ----------------------------------------------------------------------------------------------- checking
@dataclass
class StageCheck:
    name: str
    script: str | None
    deps: list[str]
    needed: set[str] = field(default_factory=set)  # files and conf folders the stage runs
    modules: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)  # deps on code/docs the stage does not use
    absent: list[str] = field(default_factory=list)  # deps that neither exist nor are produced by a stage


def script_needs(script_rel: str, cmd: str | None, graph: grimp.ImportGraph, root: Path) -> tuple[set[str], set[str]]:
    """The superconv modules a script runs and the repo files and conf/ folders it reads (``cmd`` picks the conf
    groups, see composed_groups)."""
    src, script = root / "src", root / script_rel
    conf: set[Path] = set()
    entry = hydra_entry(script)
    if entry is not None:
        conf = {entry} | {entry.parent / g for g in composed_groups(entry, cmd)
                          if (entry.parent / g).is_dir()}  # hydra/job_logging etc. are Hydra's own
    imported = script_imports(script) | {t.rsplit(".", 1)[0] for t in hydra_targets(conf)}
    modules = module_closure(graph, imported)
    return modules, {script_rel, *module_files(modules, src, root), *(p.relative_to(root).as_posix() for p in conf)}


def check_dvc_yaml(dvc_yaml: Path, root: Path | None = None) -> dict[str, StageCheck]:
    """Every stage of ``dvc_yaml`` against the code and conf/ of ``root`` (default: the folder its stages run in,
    their ``wdir``); the package is the ``superconv`` on sys.path, which must be ``root``'s src/superconv."""
    params = pipeline_params(dvc_yaml)
    stages = expand_stages(dvc_yaml, params)
    wdirs = {spec.get("wdir", ".") for spec in stages.values()}
    assert len(wdirs) == 1, f"{dvc_yaml}: stages with different wdir {wdirs}"
    root = (root or dvc_yaml.parent / wdirs.pop()).resolve()
    src = root / "src"
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    pkg_file = Path(importlib.import_module(PACKAGE).__file__)
    if src not in pkg_file.resolve().parents:
        raise RuntimeError(f"{PACKAGE} is imported from {pkg_file}, not {src}: set PYTHONPATH={src}")
    outs = all_outs(root)
    package_files = {p.relative_to(root).as_posix() for p in (src / PACKAGE).rglob("*") if p.is_file()
                     and "__pycache__" not in p.parts}
    checks = {}
    for name, spec in stages.items():
        cmd = resolve(" ".join(str(spec["cmd"]).split()), params)
        deps = [resolve(d, params) for d in dep_paths(spec.get("deps"))]
        found = re.search(r"\bpython\s+(\S+\.py)\b", cmd)
        check = StageCheck(name, found.group(1) if found else None, deps)
        if check.script:
            check.modules, check.needed = script_needs(check.script, cmd, graph, root)
            for launched in LAUNCHES.get(check.script, ()):
                modules, needed = script_needs(launched, None, graph, root)
                check.modules |= modules
                check.needed |= needed
        check.missing = sorted(p for p in check.needed if not any(covers(d, p) for d in deps))
        for layer in OPTIONAL_LAYERS:
            if not any(m.startswith(f"{PACKAGE}.{layer}") for m in check.modules):
                check.forbidden += sorted({d for d in deps for f in package_files
                                           if f.startswith(f"src/{PACKAGE}/{layer}/") and covers(d, f)})
        check.forbidden += sorted({d for d in deps for never in NEVER_DEPS
                                   if covers(d, never) or covers(never, d)})
        check.absent = sorted(d for d in deps if not (root / d).exists()
                              and not any(covers(o, d) or covers(d, o) for o in outs))
        checks[name] = check
    return checks


def all_outs(root: Path) -> list[str]:
    """Every output of every pipeline of the repo at ``root`` (another pipeline may depend on it), each resolved
    with the params.yaml beside its dvc.yaml."""
    outs = []
    for f in [root / "dvc.yaml", *sorted(root.glob("studies/**/dvc.yaml"))]:
        params = pipeline_params(f)
        outs += [resolve(o, params) for spec in expand_stages(f, params).values() for o in dep_paths(spec.get("outs"))]
    return outs


@functools.cache
def checks() -> dict[str, StageCheck]:
    """Every pipeline's stages, named ``<dvc.yaml path>:<stage>`` outside the root pipeline."""
    found = {}
    for pipeline in PIPELINES:
        prefix = "" if pipeline == "dvc.yaml" else f"{pipeline}:"
        found.update({f"{prefix}{k}": v for k, v in check_dvc_yaml(ROOT / pipeline).items()})
    return found


STAGES = [f"{'' if p == 'dvc.yaml' else p + ':'}{s}" for p in PIPELINES
          for s in sorted(expand_stages(ROOT / p, pipeline_params(ROOT / p)))]


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_depends_on_all_code_and_config_it_runs(stage: str) -> None:
    check = checks()[stage]
    assert check.script, f"{stage}: no `python <script>.py` in its cmd"
    assert check.modules, f"{stage}: {check.script} imports no {PACKAGE} module"
    assert not check.missing, f"{stage}: dvc.yaml deps do not cover: {', '.join(check.missing)}"


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_depends_on_no_code_or_docs_it_does_not_run(stage: str) -> None:
    assert not checks()[stage].forbidden, f"{stage}: needless deps: {', '.join(checks()[stage].forbidden)}"


@pytest.mark.parametrize("stage", STAGES)
def test_every_dep_exists_or_is_a_stage_output(stage: str) -> None:
    assert not checks()[stage].absent, f"{stage}: deps that do not exist: {', '.join(checks()[stage].absent)}"


def test_training_stages_do_not_depend_on_report_code() -> None:
    """A report-code edit re-runs no training stage. A study's `runs` is the one exception: its sequential claims'
    verdicts decide which seeds it adds, so it imports the verdict code (never the figures or the report builder),
    and a report-code edit re-runs it only to look again: its skip rule keeps every finished run."""
    training = [c for c in checks().values() if c.script and not c.script.endswith(("report.py", "range_spread.py"))]
    assert {c.name.split("@")[0] for c in training} >= {"prepare", "range_test", "train", "train_lr_from_range_test",
                                                         "runs"}
    for check in training:
        report = {m for m in check.modules if m.startswith(f"{PACKAGE}.report")}
        if check.name.split(":")[-1].startswith("runs@"):
            assert report and not report & {f"{PACKAGE}.report.build", f"{PACKAGE}.report.figures"}, check.name
            continue
        assert not report, check.name
        assert not any(covers(d, f"src/{PACKAGE}/report/build.py") for d in check.deps), check.name


def test_the_checker_names_what_a_hand_typed_list_misses(tmp_path: Path) -> None:
    """A train stage listing single files and leaving out conf/dataset and conf/tracking is caught, and so is a
    report dep of prepare and a docs dep."""
    spec = load_yaml(ROOT / "dvc.yaml")
    train = spec["stages"]["train"]
    train["deps"] = [d for d in train["deps"] if d not in ("conf/dataset", "conf/tracking", f"src/{PACKAGE}/core")]
    train["deps"] += [f"src/{PACKAGE}/core/loop.py", "docs"]
    spec["stages"]["prepare"]["deps"].append(f"src/{PACKAGE}/report")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    checks = check_dvc_yaml(tmp_path / "dvc.yaml", ROOT)
    missing = checks["train"].missing
    assert {"conf/dataset", "conf/tracking", f"src/{PACKAGE}/core/engine.py"} <= set(missing)
    assert f"src/{PACKAGE}/core/loop.py" not in missing
    assert checks["train"].forbidden == ["docs"]
    assert checks["prepare"].forbidden == [f"src/{PACKAGE}/report"]
    assert not checks["range_test"].missing


if __name__ == "__main__":
    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    for check in (c for p in PIPELINES for c in check_dvc_yaml(checkout / p).values()):
        print(f"{check.name}: {check.script}, {len(check.modules)} modules")
        for what in ("missing", "forbidden", "absent"):
            if getattr(check, what):
                print(f"  {what}: {', '.join(getattr(check, what))}")
