"""The package's import rules hold: the import-linter contracts of pyproject.toml ([tool.importlinter]: the layers
bench > stages > core | report > common, an import-free package root, torch-free common/report, a core that takes
typed settings (no omegaconf or hydra), a torch-free config schema and report stage, a CLI without core), and no
import cycle among superconv modules at all.

Every import counts, those inside functions and under ``if TYPE_CHECKING:`` too (grimp reads them all). Importing
``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, so a package ``__init__`` that imported its own
submodules would close a cycle with them: that is checked as well (there are none; keep it so).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "superconv"


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import graph's strongly connected components of more than one module (or a module importing itself),
    each sorted, by Tarjan's algorithm (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.find_modules_directly_imported_by(node):
                    found.append(sorted(component))
    return sorted(found)


def shortest_cycle(graph: grimp.ImportGraph, component: Iterable[str]) -> list[str]:
    """One shortest import cycle through the component's first module, e.g. [a, b, a] (for the message)."""
    members = set(component)
    start = min(members)
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.find_modules_directly_imported_by(node)):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return [start]


def import_cycles(package: str = PACKAGE) -> list[str]:
    """Every import cycle among ``package``'s modules, one line each: the component and one shortest cycle in it."""
    graph = grimp.build_graph(package, cache_dir=None)
    lines = []
    for component in strongly_connected(graph):
        cycle = shortest_cycle(graph, component)
        lines.append(f"{len(component)} modules {component}: " + " -> ".join(cycle))
    return lines


def init_imports_of_own_submodules(package: str = PACKAGE) -> list[str]:
    """Package ``__init__`` modules that import their own descendants (a cycle with the implicit parent import)."""
    graph = grimp.build_graph(package, cache_dir=None)
    return sorted(f"{m} -> {i}" for m in graph.modules if graph.find_children(m)
                  for i in graph.find_modules_directly_imported_by(m) if i.startswith(f"{m}."))


def test_the_import_linter_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.is_file(), "import-linter is missing: pip install -e '.[test]'"
    proc = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # reads [tool.importlinter] of the pyproject.toml in cwd
    assert proc.returncode == 0, f"lint-imports found broken contracts:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert "6 kept, 0 broken" in proc.stdout, proc.stdout[-3000:]


def test_the_contracts_state_the_layers() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    assert config["root_package"] == PACKAGE
    assert set(contracts) == {"layers", "root", "torch_free", "core_untied", "schema_torch_free", "cli"}
    assert contracts["core_untied"]["source_modules"] == ["superconv.core"]
    assert set(contracts["core_untied"]["forbidden_modules"]) == {"omegaconf", "hydra"}
    torch_free = set(contracts["schema_torch_free"]["source_modules"])
    assert {"superconv.stages.schema", "superconv.stages.report"} <= torch_free
    layers = contracts["layers"]
    assert layers["containers"] == [PACKAGE] and layers["exhaustive"] is True
    assert layers["layers"] == ["bench", "stages", "core | report", "common"]


def test_no_import_cycle_among_superconv_modules() -> None:
    cycles = import_cycles()
    assert not cycles, "import cycles (imports inside functions count):\n" + "\n".join(cycles)


def test_no_package_init_imports_its_own_submodules() -> None:
    found = init_imports_of_own_submodules()
    assert not found, "a package __init__ importing its own submodules closes a cycle with them:\n" + "\n".join(found)


if __name__ == "__main__":  # PYTHONPATH=<other checkout>/src python tests/unit/test_architecture.py: its cycles
    import importlib

    print(f"{PACKAGE} from {importlib.import_module(PACKAGE).__file__}")
    print("\n".join(import_cycles() + init_imports_of_own_submodules()) or "no cycles")


@pytest.mark.parametrize("module", ["superconv.stages.train", "superconv.stages.range_test",
                                    "superconv.stages.prepare"])
def test_a_stage_imports_no_heavy_library_until_it_uses_it(module: str) -> None:
    """torchvision (it loads torch._dynamo), seaborn with scipy, and mlflow each cost a process seconds, and every
    test, study run and DVC stage is a process: they are imported where used (a CIFAR or ImageNet source, a
    figure, a tracked run), so an MNIST run with tracking off never loads them."""
    heavy = ("torchvision", "seaborn", "scipy", "mlflow")
    code = f"import sys, {module}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "", f"importing {module} loads {loaded.strip()}"


@pytest.mark.parametrize("module", ["superconv.stages.report", "superconv.stages.schema", "superconv.core.choices"])
def test_the_schema_and_the_report_stage_load_no_torch(module: str) -> None:
    """The report stage validates its config against the schema, which checks choices core implements: they live in
    the import-free ``core.choices``, so neither loads torch (seconds per process; the contract above says so
    statically, this says so of what a process really loads, lazy imports included)."""
    code = f"import sys, {module}; print(' '.join(m for m in ('torch', 'torchvision') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "", f"importing {module} loads {loaded.strip()}"
