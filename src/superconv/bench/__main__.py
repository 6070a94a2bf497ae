"""``python -m superconv.bench [SUBCOMMAND] [options]``: one entry to every benchmark, and the GPU self-check
(subcommands: compare, throughput, budget, loader, range_test, parallel, cpu_mode, cpu_pins, selfcheck).

With no subcommand (or only options) it runs ``compare``. Each subcommand is also its module's own entry point
(``python -m superconv.bench.loop``, ``.throughput``, ``.gpu_budget``, ``.loader``, ``.range_test``, ``.parallel``,
``.cpu_mode``, ``.cpu_pins``, ``.selfcheck``); ``-h`` after a subcommand lists its options.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

USAGE = ("usage: python -m superconv.bench "
         "[compare|throughput|budget|loader|range_test|parallel|cpu_mode|cpu_pins|selfcheck] [options]")


def _compare(argv: list[str]) -> Any:
    from superconv.bench.loop import main

    return main(argv)


def _throughput(argv: list[str]) -> Any:
    from superconv.bench.throughput import main

    return main(argv)


def _budget(argv: list[str]) -> Any:
    from superconv.bench.gpu_budget import main

    return main(argv)


def _loader(argv: list[str]) -> Any:
    from superconv.bench.loader import main

    return main(argv)


def _range_test(argv: list[str]) -> Any:
    from superconv.bench.range_test import main

    return main(argv)


def _parallel(argv: list[str]) -> Any:
    from superconv.bench.parallel import main

    return main(argv)


def _cpu_mode(argv: list[str]) -> Any:
    from superconv.bench.cpu_mode import main

    return main(argv)


def _cpu_pins(argv: list[str]) -> Any:
    from superconv.bench.cpu_pins import main

    return main(argv)


def _selfcheck(argv: list[str]) -> Any:
    from superconv.bench.selfcheck import main

    return main(argv)


# Each module is imported on use: a subcommand loads its own module only.
SUBCOMMANDS: dict[str, tuple[Callable[[list[str]], Any], str]] = {
    "compare": (_compare, "our training loop (MLflow + tqdm on) vs a bare PyTorch loop (the default)"),
    "throughput": (_throughput, "training images/s and FLOPs per image of every conf/model/ model"),
    "budget": (_budget, "device-hours per experiment preset x recipe policy x seeds"),
    "loader": (_loader, "device-resident batching vs torchvision's DataLoader; data vs step time"),
    "range_test": (_range_test, "a range test of N iterations vs N training iterations"),
    "parallel": (_parallel, "one N-thread training process vs N one-thread processes at once (a study's jobs)"),
    "cpu_mode": (_cpu_mode, "the default study's stages pinned vs native CPU mode, interleaved: the pin's cost"),
    "cpu_pins": (_cpu_pins, "the tiny digits run without each pin of the pinned mode: why each pin is needed"),
    "selfcheck": (_selfcheck, "a CUDA machine's first check: every model x precision x eager/compile, DDP, MLflow"),
}


def main(argv: list[str] | None = None) -> Any:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + "\n".join(f"  {name:<11} {why}" for name, (_, why) in SUBCOMMANDS.items()))
        return None
    if not argv or argv[0].startswith("-"):
        return _compare(argv)
    if argv[0] not in SUBCOMMANDS:
        print(f"{USAGE}\npython -m superconv.bench: unknown subcommand {argv[0]!r}; known: {', '.join(SUBCOMMANDS)}",
              file=sys.stderr)
        raise SystemExit(2)
    run, _ = SUBCOMMANDS[argv[0]]
    return run(argv[1:])


if __name__ == "__main__":
    main()
