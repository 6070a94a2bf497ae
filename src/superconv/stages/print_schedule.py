"""``python -m superconv.stages.print_schedule experiment=... schedule=...``: a composed schedule as CSV.

iteration,lr,momentum for every iteration of the budget; no data, no training, validated like a train run.
"""

from __future__ import annotations

import sys

from superconv.stages.cli import run_guarded
from superconv.stages.compose import compose_stage_config
from superconv.stages.rules import validate_train


def main(argv: list[str] | None = None) -> None:
    """Print the composed schedule as CSV: iteration,lr,momentum."""

    def show() -> None:
        schedule = validate_train(compose_stage_config("train", sys.argv[1:] if argv is None else argv)).schedule
        out = sys.stdout
        try:
            out.write("iteration,lr,momentum\n")
            for it, lr, momentum in schedule.table():
                out.write(f"{it},{lr:.10g},{momentum:.10g}\n")
            out.flush()
        except BrokenPipeError:  # `... | head`: the reader has what it wanted
            sys.stdout = None  # nothing left to flush at exit

    run_guarded(show)


if __name__ == "__main__":
    main()
