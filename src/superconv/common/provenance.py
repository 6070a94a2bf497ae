"""What a result was made from: its resolved config and the sha256 of every superconv module that produced it.

A study skips a run whose recorded config and code are unchanged, so the record must name exactly the modules
the run loaded: a change to any of them re-runs it, a change elsewhere does not.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../superconv
CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def loaded_code() -> dict[str, str]:
    """``superconv/<module path>`` -> sha256 for every superconv module this process has imported (and the entry
    script, by its path relative to the working directory)."""
    files: dict[str, str] = {}
    for module in list(sys.modules.values()):
        found = getattr(module, "__file__", None)
        if not found:
            continue
        path = Path(found).resolve()
        if path.is_relative_to(PACKAGE_ROOT) and path.suffix == ".py":
            files[str(Path("superconv", path.relative_to(PACKAGE_ROOT)))] = _sha256(path)
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main and Path(main).resolve().is_relative_to(Path.cwd()):
        files[str(Path(main).resolve().relative_to(Path.cwd()))] = _sha256(Path(main))
    return dict(sorted(files.items()))


def changed_code(recorded: dict[str, str]) -> list[str]:
    """The files of ``recorded`` whose content differs now (or that are gone), paths as ``loaded_code`` writes them."""
    changed = []
    for name, digest in recorded.items():
        path = PACKAGE_ROOT.parent / name if name.startswith("superconv/") else Path(name)
        if not path.is_file() or _sha256(path) != digest:
            changed.append(name)
    return changed
