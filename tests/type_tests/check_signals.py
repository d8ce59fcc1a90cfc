"""Never executed: mypy --strict and pyright strict check these types.

tether.cancel_on_signal and the context manager it returns.
"""

from __future__ import annotations

import signal

from typing_extensions import assert_type

import tether
from tether import CancelOnSignal, TaskRegistry


async def job() -> int:
    return 1


async def on_ctrl_c(tasks: TaskRegistry) -> None:
    handle = tasks.spawn(job)
    assert_type(tether.cancel_on_signal(handle), CancelOnSignal)
    with tether.cancel_on_signal(handle, signal.SIGINT) as cancelling:
        assert_type(cancelling, CancelOnSignal)
        assert_type(await handle, int)
        assert_type(cancelling.received, signal.Signals | None)
    with tether.cancel_on_signal(tasks, signal.SIGINT, signal.SIGTERM):
        pass


def negatives(tasks: TaskRegistry) -> None:
    tether.cancel_on_signal(job)  # type: ignore[arg-type]
    tether.cancel_on_signal(tasks, "SIGINT")  # type: ignore[arg-type]
    tether.cancel_on_signal(tasks, 2)  # type: ignore[arg-type]
    tether.cancel_on_signal(target=tasks)  # type: ignore[call-arg]
