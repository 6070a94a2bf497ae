"""Build the report from any set of runs: MLflow (study, run ids or a filter) or result directories (DVC
experiments, Hydra sweep points), so an ablation gets figures, tables and verdicts without code changes.

    python -m superconv.report.compare --study paper_mnist_lenet --out reports/compare
    python -m superconv.report.compare --dirs 'multirun/train/*/*' --label schedule.max_lr --out reports/sweep
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from pathlib import Path
from typing import NoReturn

from superconv.report.build import range_test_dirs, write_report
from superconv.report.reference import load_reference
from superconv.report.results import RunSet, load_run_dirs


def run_dirs(patterns: list[str]) -> list[Path]:
    """Directories holding summary.json: the matches themselves, or any below them."""
    found = []
    for pattern in patterns:
        for match in map(Path, glob.glob(pattern, recursive=True)):
            found += [match] if (match / "summary.json").is_file() else [p.parent for p in match.rglob("summary.json")]
    return found


def default_pair(runs: RunSet) -> tuple[str, str]:
    """A paper claim's (policy, baseline) when the runs hold one, else the first and last run names."""
    labels = list(dict.fromkeys(runs.summaries["run"]))
    for claim in load_reference().claims:
        if {claim.get("policy"), claim.get("baseline")} <= set(labels):
            return claim["policy"], claim["baseline"]
    return labels[0], labels[-1]


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (``error: argument --out: ...``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {' '.join(message.split())}\n")


def _text(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError(f"{value!r} must be a non-empty string")
    return value


def _out_dir(value: str) -> Path:
    """A directory that is or can be made writable; nothing is created here."""
    path = Path(_text(value))
    probe = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        state = "not a directory" if not probe.is_dir() else "read-only"
        where = "" if probe == path else f" ({str(probe)!r} is {state})"
        raise argparse.ArgumentTypeError(f"{value!r} must be a writable directory{where}")
    return path


def _range_test_dir(value: str) -> Path:
    path = Path(_text(value))
    if not ((path / "curve.csv").is_file() and (path / "suggestion.json").is_file()):
        raise argparse.ArgumentTypeError(f"{value!r} must be a directory holding a range test's curve.csv and "
                                         "suggestion.json")
    return path


def _run_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise argparse.ArgumentTypeError(f"{value!r} must be an MLflow run id (32 hexadecimal digits)")
    return value


def _config_key(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", value):
        raise argparse.ArgumentTypeError(f"{value!r} must be a dotted config key such as schedule.max_lr")
    return value


def _tracking_uri(value: str) -> str:
    """An MLflow tracking URI (sqlite:///..., http://host:port, a store path); MLflow reports what it cannot reach."""
    if not re.fullmatch(r"\S+", value) or (re.match(r"https?:", value) and not re.match(r"https?://[^/\s]+", value)):
        raise argparse.ArgumentTypeError(f"{value!r} must be a tracking URI such as sqlite:///mlflow.db or "
                                         "http://host:5000")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(prog="python -m superconv.report.compare", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dirs", nargs="+", type=_text, metavar="GLOB",
                        help="run directories (summary.json + metrics.csv)")
    source.add_argument("--study", type=_text, help="MLflow study: the training children of its parent run")
    source.add_argument("--run-ids", nargs="+", type=_run_id, metavar="ID", help="MLflow run ids")
    source.add_argument("--filter", type=_text, help="MLflow filter string, e.g. \"params.`schedule.max_lr` = '0.1'\"")
    parser.add_argument("--out", type=_out_dir, required=True, help="report directory to write")
    parser.add_argument("--policy", type=_text, help="run under test (default: a paper claim's, or the first run)")
    parser.add_argument("--baseline", type=_text,
                        help="run compared against (default: a paper claim's, or the last run)")
    parser.add_argument("--label", nargs="*", default=[], type=_config_key, metavar="KEY",
                        help="config keys that name sweep points, e.g. schedule.max_lr optimizer.weight_decay")
    parser.add_argument("--range-test-dir", type=_range_test_dir, help="a range test's curve.csv + suggestion.json")
    parser.add_argument("--tracking-uri", type=_tracking_uri,
                        default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    parser.add_argument("--experiment", type=_text, default="superconv", help="MLflow experiment name")
    args = parser.parse_args(argv)
    if args.policy is not None and args.policy == args.baseline:
        parser.error(f"argument --baseline: {args.baseline!r} is also --policy: compare two different runs")
    return args


def load_runs(args: argparse.Namespace) -> tuple[RunSet, str]:
    """The selected runs and a one-line description of where they came from."""
    if args.dirs:
        return load_run_dirs(run_dirs(args.dirs), args.label), f"run directories {' '.join(args.dirs)}"
    from mlflow.tracking import MlflowClient

    from superconv.report.mlflow_runs import find_runs, load_mlflow_runs

    client = MlflowClient(tracking_uri=args.tracking_uri)
    chosen = find_runs(client, args.experiment, args.study, args.run_ids, args.filter)
    what = (f"study {args.study!r}" if args.study else f"runs {', '.join(args.run_ids)}" if args.run_ids
            else f"filter {args.filter!r}")
    return load_mlflow_runs(client, chosen, args.label), f"MLflow {what} (experiment {args.experiment!r})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        runs, source = load_runs(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    policy, baseline = default_pair(runs)
    tests = {"": range_test_dirs(args.range_test_dir)} if args.range_test_dir else None
    built = write_report(runs, args.out, args.policy or policy, args.baseline or baseline, tests, source)
    for line in built["verdicts"]:
        print(line)
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
