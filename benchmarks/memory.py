"""Memory per parked task, measured with tracemalloc.

Each case spawns ``n`` tasks running :func:`park`, which waits on an ``anyio.Event``,
and reports the traced memory growth between just before the first spawn and the moment
every task is parked (``anyio.wait_all_tasks_blocked()``, then ``gc.collect()``); the
report divides it by ``n``. The container (set, task group, registry) is opened before
the baseline, so only what grows with the number of tasks counts: the coroutine and its
frame, the task, and whatever handle, cancel scope, callbacks and bookkeeping the
library keeps per task. The handles returned by spawn calls are dropped, so a handle
counts only if the library itself keeps it alive.

Two event modes:

* ``shared``: one event for all tasks (the contract's figure: per-task overhead only);
* ``per-task``: one fresh ``anyio.Event`` per task, made inside the traced window (adds
  the event and its waiter to every task).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from _common import (
    ANYIO_SCOPE,
    ASYNCIO_FAMILY,
    Case,
    missing_module,
    on_anyio_scope,
    tether_unavailable,
)

MODES: tuple[str, ...] = ("shared", "per-task")
#: Backends on which tracemalloc sees the whole cost (uvloop allocates in C, untraced).
MEMORY_BACKENDS: tuple[str, ...] = ("asyncio", "trio")


async def park(event: Any) -> None:
    await event.wait()


class Events:
    """Hands out the event each task parks on, and releases them all."""

    def __init__(self, mode: str) -> None:
        import anyio

        self._new = anyio.Event
        self._per_task = mode == "per-task"
        self._events: list[Any] = [anyio.Event()]

    def get(self) -> Any:
        if self._per_task:
            event = self._new()
            self._events.append(event)
            return event
        return self._events[0]

    def set_all(self) -> None:
        for event in self._events:
            event.set()


def _begin() -> int:
    gc.collect()
    tracemalloc.start()
    return tracemalloc.get_traced_memory()[0]


async def _end(base: int) -> int:
    import anyio

    await anyio.wait_all_tasks_blocked()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return grown


async def raw_create_task(n: int, events: Events) -> int:
    import asyncio

    background: set[asyncio.Task[None]] = set()
    base = _begin()
    for _ in range(n):
        task = asyncio.create_task(park(events.get()))
        background.add(task)
        task.add_done_callback(background.discard)
    grown = await _end(base)
    events.set_all()
    await asyncio.gather(*background)
    return grown


async def stdlib_taskgroup(n: int, events: Events) -> int:
    import asyncio

    async with asyncio.TaskGroup() as tg:
        base = _begin()
        for _ in range(n):
            tg.create_task(park(events.get()))
        grown = await _end(base)
        events.set_all()
    return grown


async def anyio_task_group(n: int, events: Events) -> int:
    import anyio

    async with anyio.create_task_group() as tg:
        base = _begin()
        for _ in range(n):
            tg.start_soon(park, events.get())
        grown = await _end(base)
        events.set_all()
    return grown


async def trio_nursery(n: int, events: Events) -> int:
    import trio

    async with trio.open_nursery() as nursery:
        base = _begin()
        for _ in range(n):
            nursery.start_soon(park, events.get())
        grown = await _end(base)
        events.set_all()
    return grown


async def tether_registry(n: int, events: Events) -> int:
    import tether

    async with tether.TaskRegistry() as tasks:
        base = _begin()
        for _ in range(n):
            tasks.spawn(park, events.get())
        grown = await _end(base)
        events.set_all()
    return grown


MemoryBody = Callable[[int, Events], Awaitable[int]]


def _case(
    key: str,
    name: str,
    backends: tuple[str, ...],
    body: MemoryBody,
    unavailable: Callable[[], str | None],
    mode: str,
) -> Case:
    async def run(n: int) -> int:
        return await body(n, Events(mode))

    return Case(
        f"{key}[{mode}]", f"{name}, {mode} event", "memory", backends, run, unavailable
    )


def _needs_taskgroup() -> str | None:
    import sys

    return None if sys.version_info >= (3, 11) else "asyncio.TaskGroup needs 3.11+"


_BASE: list[tuple[str, str, tuple[str, ...], MemoryBody, Callable[[], str | None]]] = [
    (
        "asyncio.create_task",
        "create_task + strong set",
        ASYNCIO_FAMILY,
        raw_create_task,
        lambda: None,
    ),
    (
        "asyncio.TaskGroup",
        "asyncio.TaskGroup",
        ASYNCIO_FAMILY,
        stdlib_taskgroup,
        _needs_taskgroup,
    ),
    (
        "trio.start_soon",
        "trio nursery",
        ("trio",),
        trio_nursery,
        missing_module("trio"),
    ),
    (
        "anyio.start_soon",
        "anyio task group start_soon",
        MEMORY_BACKENDS,
        anyio_task_group,
        lambda: None,
    ),
    (
        "tether.TaskRegistry.spawn",
        "tether TaskRegistry.spawn",
        MEMORY_BACKENDS,
        tether_registry,
        tether_unavailable("TaskRegistry"),
    ),
    (
        "tether.TaskRegistry.spawn" + ANYIO_SCOPE,
        "tether TaskRegistry.spawn on anyio's CancelScope",
        ("asyncio",),
        on_anyio_scope(tether_registry),
        tether_unavailable("TaskRegistry"),
    ),
]

CASES: list[Case] = [
    _case(key, name, tuple(b for b in backends if b in MEMORY_BACKENDS), body, check, m)
    for m in MODES
    for key, name, backends, body, check in _BASE
]
