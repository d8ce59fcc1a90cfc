"""Cases that only run on asyncio (and asyncio + uvloop): the raw floor, the stdlib
primitives, and the asyncio-only libraries (aiojobs, aiotools).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from _common import (
    ASYNCIO_FAMILY,
    SUSPENDS,
    Case,
    Work,
    missing_module,
    task_cases,
)


async def floor_create_task(n: int, work: Work) -> int:
    """The floor: ``create_task`` + a strong set + ``add_done_callback(set.discard)``,
    then awaiting each task in spawn order. This is the boilerplate tether replaces.
    """
    background: set[asyncio.Task[int]] = set()
    handles: list[asyncio.Task[int]] = []
    for _ in range(n):
        task = asyncio.create_task(work())
        background.add(task)
        task.add_done_callback(background.discard)
        handles.append(task)
    total = 0
    for task in handles:
        total += await task
    return total


async def stdlib_gather(n: int, work: Work) -> int:
    results = await asyncio.gather(*(work() for _ in range(n)))
    return sum(results)


async def stdlib_taskgroup(n: int, work: Work) -> int:
    total = 0
    async with asyncio.TaskGroup() as tg:
        handles = [tg.create_task(work()) for _ in range(n)]
        for task in handles:
            total += await task
    return total


async def aiojobs_spawn(n: int, work: Work) -> int:
    import aiojobs

    total = 0
    # limit=None and an unbounded pending queue: aiojobs' defaults (100 running,
    # 10,000 pending) would measure its limiter instead of its spawn path.
    async with aiojobs.Scheduler(limit=None, pending_limit=0) as scheduler:
        jobs = [await scheduler.spawn(work()) for _ in range(n)]
        for job in jobs:
            total += await job.wait()
    return total


async def aiotools_ptaskgroup(n: int, work: Work) -> int:
    import aiotools

    total = 0
    async with aiotools.PersistentTaskGroup() as tg:
        futures: list[Any] = [tg.create_task(work()) for _ in range(n)]
        for fut in futures:
            total += await fut
    return total


def _needs_taskgroup() -> str | None:
    if sys.version_info < (3, 11):
        return "asyncio.TaskGroup needs Python 3.11+"
    return None


CASES: list[Case] = [
    *task_cases(
        "asyncio.create_task",
        "create_task + set + done callback, await each (floor)",
        "spawn",
        ASYNCIO_FAMILY,
        floor_create_task,
        native="asyncio",
    ),
    # For scale, not a figure: the floor with the portable body tether's cases run,
    # so a reader sees how much of a ratio is anyio's checkpoint rather than tether.
    *task_cases(
        "asyncio.create_task/anyio-body",
        "the floor, its body suspending at anyio's checkpoint",
        "spawn",
        ASYNCIO_FAMILY,
        floor_create_task,
        native="anyio",
        variants=(SUSPENDS,),
    ),
    *task_cases(
        "asyncio.gather",
        "asyncio.gather(*coros)",
        "gather",
        ASYNCIO_FAMILY,
        stdlib_gather,
        native="asyncio",
    ),
    *task_cases(
        "asyncio.TaskGroup",
        "asyncio.TaskGroup create_task, await each",
        "spawn",
        ASYNCIO_FAMILY,
        stdlib_taskgroup,
        _needs_taskgroup,
        native="asyncio",
    ),
    *task_cases(
        "aiojobs.spawn",
        "aiojobs Scheduler.spawn, await job.wait()",
        "spawn",
        ASYNCIO_FAMILY,
        aiojobs_spawn,
        missing_module("aiojobs"),
        native="asyncio",
    ),
    *task_cases(
        "aiotools.PersistentTaskGroup",
        "aiotools PersistentTaskGroup create_task, await each",
        "spawn",
        ASYNCIO_FAMILY,
        aiotools_ptaskgroup,
        missing_module("aiotools"),
        native="asyncio",
    ),
]
