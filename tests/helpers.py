"""What the test modules share: coroutines that wait, the check that a
coroutine was closed, and the trees and runs of the ``tether scan`` tests.

Imported as ``from helpers import ...``: pytest puts this directory on
``sys.path`` (there is no ``__init__.py``), and mypy and pyright find it beside
the test files.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping
    from pathlib import Path

    import pytest


def closed(coro: Coroutine[Any, Any, Any]) -> bool:
    """The coroutine is closed, so it can never warn "was never awaited"."""
    return inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


async def park(event: anyio.Event) -> str:
    """Wait for ``event``, then return ``"released"``."""
    await event.wait()
    return "released"


async def parked(name: object, record: list[str]) -> NoReturn:
    """Wait to be cancelled, then clean up with an await and record
    ``"{name} cleaned up"``.

    The record proves that it started, that it was cancelled, and that whoever
    cancelled it waited for its cleanup, which takes a checkpoint.
    """
    try:
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.lowlevel.checkpoint()  # cleanup that has to be awaited
        record.append(f"{name} cleaned up")
    raise AssertionError("sleep_forever returned")  # pragma: no cover


async def double(x: int) -> int:
    """Return ``2 * x`` after a checkpoint."""
    await anyio.lowlevel.checkpoint()
    return 2 * x


def tether_records(
    caplog: pytest.LogCaptureFixture, level: int = logging.ERROR
) -> list[logging.LogRecord]:
    """The records of logger ``"tether"`` at ``level`` or above, claimed as
    asserted: the suite fails a test on an ERROR record it did not read here
    (see ``conftest.py``), and the leak check skips a failure record it did."""
    records = [r for r in caplog.records if r.name == "tether" and r.levelno >= level]
    for record in records:
        record.tether_asserted = True
    return records


#: A module with one TET001 finding, at 2:1, that ``--fix`` rewrites.
DANGLING = "import asyncio\nasyncio.create_task(work())\n"
#: ``DANGLING`` after ``--fix``.
SPAWNED = "import asyncio\nimport tether\ntether.spawn(work())\n"


def make_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """Write each file of ``files`` (a path relative to ``root``: its text)."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def run_scan(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``tether scan ARGV`` in this process: its exit status, stdout, stderr."""
    from tether._cli import main

    status = main(["scan", *argv])
    out, err = capsys.readouterr()
    return status, out, err
