"""What a result was made from: its resolved config and the sha256 of every superconv module that produced it.

A run's identity is its whole resolved config less ``NOT_IDENTITY``, the keys that cannot change its numbers.
Resume, a study's skip rule and MLflow's ``superconv.identity`` tag all use it, so "the same run" means one thing.
A study skips a run whose identity and code are unchanged, so the record must name exactly the modules the run
loaded: a change to any of them re-runs it, a change elsewhere does not.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # .../superconv
CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"


# Where a run writes, how it is tracked and shown, when it checkpoints and whether divergence exits non-zero:
# none of these changes a number it computes. Everything else is the run's identity.
NOT_IDENTITY = ("out", "study", "tracking", "trainer.progress", "trainer.checkpoint_every",
                "trainer.fail_on_divergence")


def run_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved config (a plain mapping, as config.yaml holds it) flattened to dotted keys, less
    ``NOT_IDENTITY``: two runs with equal identities compute the same numbers from the same code."""
    return {key: value for key, value in sorted(_flat(config).items())
            if not any(key == skip or key.startswith(f"{skip}.") for skip in NOT_IDENTITY)}


def identity_digest(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def identity_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """``key: before -> after`` for every key whose value differs (``<absent>`` where a side lacks it)."""
    missing = "<absent>"
    return [f"{key}: {before.get(key, missing)!r} -> {after.get(key, missing)!r}"
            for key in sorted(set(before) | set(after)) if before.get(key, missing) != after.get(key, missing)]


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, Mapping) or (prefix and not tree):
        return {prefix.rstrip("."): tree}
    return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


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
