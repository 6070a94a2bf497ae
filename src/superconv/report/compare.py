"""Build the report from any set of runs: MLflow (study, run ids or a filter) or result directories (DVC
experiments, Hydra sweep points), so an ablation gets figures, tables and verdicts without code changes.

    python -m superconv.report.compare --study paper_mnist_lenet --out reports/compare
    python -m superconv.report.compare --dirs 'multirun/train/*/*' --label schedule.max_lr --out reports/sweep
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from superconv.report.build import write_report
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m superconv.report.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dirs", nargs="+", metavar="GLOB", help="run directories (summary.json + metrics.csv)")
    source.add_argument("--study", help="MLflow study: the training children of its parent run")
    source.add_argument("--run-ids", nargs="+", metavar="ID", help="MLflow run ids")
    source.add_argument("--filter", help="MLflow filter string, e.g. \"params.`schedule.max_lr` = '0.1'\"")
    parser.add_argument("--out", type=Path, required=True, help="report directory to write")
    parser.add_argument("--policy", help="run under test (default: a paper claim's, or the first run)")
    parser.add_argument("--baseline", help="run compared against (default: a paper claim's, or the last run)")
    parser.add_argument("--label", nargs="*", default=[], metavar="KEY",
                        help="config keys that name sweep points, e.g. schedule.max_lr optimizer.weight_decay")
    parser.add_argument("--range-test-dir", type=Path, help="a range test's curve.csv + suggestion.json")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    parser.add_argument("--experiment", default="superconv", help="MLflow experiment name")
    return parser.parse_args(argv)


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
    built = write_report(runs, args.out, args.policy or policy, args.baseline or baseline, args.range_test_dir,
                         source)
    for line in built["verdicts"]:
        print(line)
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
