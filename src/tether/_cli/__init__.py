"""The ``tether`` command line: ``tether demo`` and ``tether scan``.

Kept apart from the library: importing :mod:`tether` never imports this package.
Each subcommand lives in its own module and is imported only when it runs.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--version", action="version", version=_version())
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


def _version() -> str:
    import tether

    return f"tether {tether.__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tether`` command line and return its exit code.

    When the reader of its output goes away (``tether demo | head -1``), it stops
    quietly with status 1, as the Python documentation advises (the note on
    SIGPIPE in the ``signal`` module's), instead of printing a traceback.
    """
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        status = _run(words)
        sys.stdout.flush()  # a pipe closed early fails here, not at exit
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would fail the same way:
        # point it at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


def _run(words: list[str]) -> int:
    args = _build_parser(words[0] if words else None).parse_args(words)
    if args.command == "demo":
        from ._demo import run as run_demo

        return run_demo()
    from ._scan import run as run_scan

    return run_scan(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
