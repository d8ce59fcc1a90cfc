"""The ``tether`` command line: ``tether demo`` and ``tether scan``.

Kept apart from the library: importing :mod:`tether` never imports this package.
Each subcommand lives in its own module and is imported only when it runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser; the scanner's arguments (and so the scanner) only for ``scan``."""
    parser = argparse.ArgumentParser(
        prog="tether",
        description="Typed structured concurrency over anyio.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    commands.add_parser(
        "demo",
        help="show eager spawn versus deferred run_all, and the GC hazard",
        description=(
            "Prints the timeline of eager spawn next to deferred run_all, and a raw "
            "asyncio.create_task lost to the garbage collector next to the same task "
            "under a TaskRegistry."
        ),
    )

    scan = commands.add_parser(
        "scan",
        help="find raw asyncio task creation that tether replaces",
        description="Find raw asyncio task creation that tether replaces.",
    )
    if command == "scan":
        from ._scan import add_arguments

        add_arguments(scan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command line and return its exit code."""
    words = sys.argv[1:] if argv is None else list(argv)
    args = _build_parser(words[0] if words else None).parse_args(words)
    if args.command == "demo":
        from ._demo import run as run_demo

        return run_demo()
    from ._scan import run as run_scan

    return run_scan(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
