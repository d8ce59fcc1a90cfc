"""Shutdown of N parked tasks: how the cost grows from 10,000 to 100,000 tasks.

Each case parks ``n`` tasks on one shared ``anyio.Event`` (outside the timed window),
waits until all of them are blocked, runs ``gc.collect()``, disables the collector,
and times from the moment shutdown is requested until every task has ended and the
owner has exited. The report compares the growth ``t(100k) / t(10k)`` of each case to
the growth of the raw floor on the same backend (``create_task`` + ``cancel()`` +
awaiting each task on asyncio and uvloop, a cancelled nursery on trio), same run.

tether is measured on both of its shutdown paths:

* ``host-cancelled``: the body of ``async with TaskRegistry()`` is cancelled by an
  enclosing ``anyio.CancelScope``; the registry goes to CANCELLING and cancels every
  task. This is what happens when a server's main task is cancelled: the headline.
* ``cancel_all``: ``tasks.cancel_all()``, then the body ends normally; the registry
  drains the tasks that are unwinding.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from typing import TYPE_CHECKING

from _common import (
    ANYIO_SCOPE,
    ASYNCIO_FAMILY,
    BACKENDS,
    Case,
    missing_module,
    on_anyio_scope,
    tether_unavailable,
)
from memory import park

if TYPE_CHECKING:
    from collections.abc import Callable


class Window:
    """The timed window: the collector is paused inside it."""

    def __init__(self) -> None:
        self.start_ns = 0
        self.elapsed_ns = 0

    def open(self) -> None:
        gc.collect()
        gc.disable()
        self.start_ns = time.perf_counter_ns()

    def close(self) -> None:
        self.elapsed_ns = time.perf_counter_ns() - self.start_ns
        gc.enable()


async def _parked() -> None:
    import anyio

    await anyio.wait_all_tasks_blocked()


async def raw_cancel(n: int) -> int:
    import asyncio

    import anyio

    event = anyio.Event()
    window = Window()
    background: set[asyncio.Task[None]] = set()
    handles: list[asyncio.Task[None]] = []
    for _ in range(n):
        task = asyncio.create_task(park(event))
        background.add(task)
        task.add_done_callback(background.discard)
        handles.append(task)
    await _parked()
    window.open()
    for task in handles:
        task.cancel()
    for task in handles:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    window.close()
    return window.elapsed_ns


async def nursery_cancel(n: int) -> int:
    import anyio
    import trio

    event = anyio.Event()
    window = Window()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(park, event)
        await _parked()
        window.open()
        nursery.cancel_scope.cancel()
    window.close()
    return window.elapsed_ns


async def anyio_cancel(n: int) -> int:
    import anyio

    event = anyio.Event()
    window = Window()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(park, event)
        await _parked()
        window.open()
        tg.cancel_scope.cancel()
    window.close()
    return window.elapsed_ns


def _quiet_tether_log() -> None:
    # Shutdown logs one WARNING naming the cancelled tasks; keep it off the table
    # without changing what the registry does (records are still created).
    logger = logging.getLogger("tether")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


async def tether_host_cancelled(n: int) -> int:
    import anyio

    import tether

    _quiet_tether_log()
    event = anyio.Event()
    window = Window()
    with anyio.CancelScope() as scope:
        async with tether.TaskRegistry() as tasks:
            for _ in range(n):
                tasks.spawn(park, event)
            await _parked()
            window.open()
            scope.cancel()
            await anyio.lowlevel.checkpoint()  # the body's next checkpoint raises
    window.close()
    return window.elapsed_ns


async def tether_cancel_all(n: int) -> int:
    import anyio

    import tether

    _quiet_tether_log()
    event = anyio.Event()
    window = Window()
    async with tether.TaskRegistry() as tasks:
        for _ in range(n):
            tasks.spawn(park, event)
        await _parked()
        window.open()
        tasks.cancel_all()
    window.close()
    return window.elapsed_ns


def _always() -> Callable[[], str | None]:
    return lambda: None


CASES: list[Case] = [
    Case(
        "asyncio.create_task",
        "create_task: cancel() each, await each (floor)",
        "shutdown",
        ASYNCIO_FAMILY,
        raw_cancel,
        _always(),
    ),
    Case(
        "trio.start_soon",
        "trio nursery: cancel_scope.cancel() (floor)",
        "shutdown",
        ("trio",),
        nursery_cancel,
        missing_module("trio"),
    ),
    Case(
        "anyio.start_soon",
        "anyio task group: cancel_scope.cancel()",
        "shutdown",
        BACKENDS,
        anyio_cancel,
        _always(),
    ),
    Case(
        "tether.TaskRegistry/host-cancelled",
        "tether registry: body cancelled",
        "shutdown",
        BACKENDS,
        tether_host_cancelled,
        tether_unavailable("TaskRegistry"),
    ),
    Case(
        "tether.TaskRegistry/cancel_all",
        "tether registry: cancel_all(), body ends",
        "shutdown",
        BACKENDS,
        tether_cancel_all,
        tether_unavailable("TaskRegistry"),
    ),
    Case(
        "tether.TaskRegistry/host-cancelled" + ANYIO_SCOPE,
        "tether registry: body cancelled, on anyio's CancelScope",
        "shutdown",
        ASYNCIO_FAMILY,
        on_anyio_scope(tether_host_cancelled),
        tether_unavailable("TaskRegistry"),
    ),
]
