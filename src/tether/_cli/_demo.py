"""``tether demo``: eager versus deferred, and the garbage-collection hazard.

Two short shows, each printed as two columns side by side:

1. eager ``spawn`` (tasks start at the creator's next checkpoint and run while it
   does other work) versus deferred ``run_all`` (nothing runs until the gather
   point is awaited);
2. a raw ``asyncio.create_task`` whose only reference is dropped, collected by
   ``gc.collect()`` mid-flight, next to the same task under a ``TaskRegistry``.

It runs on asyncio (the hazard is asyncio's) and takes well under a second.
"""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import tether

__all__ = ["run"]

_WIDTH = 44
_STEP = 0.05  # seconds of "other work" the creator does in the timeline show


class _Timeline:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.lines: list[str] = []

    def log(self, what: str) -> None:
        elapsed = time.perf_counter() - self.start
        self.lines.append(f"{elapsed / _STEP:4.1f}  {what}")


async def _job(timeline: _Timeline, name: str) -> str:
    timeline.log(f"{name} starts")
    await asyncio.sleep(_STEP / 2)
    timeline.log(f"{name} ends")
    return name


async def _eager() -> list[str]:
    timeline = _Timeline()
    async with tether.TaskRegistry(name="demo") as tasks:
        timeline.start = time.perf_counter()  # after the backend's first import
        timeline.log("spawn(job, 'A'), spawn(job, 'B')")
        a = tasks.spawn(_job, timeline, "A")
        b = tasks.spawn(_job, timeline, "B")
        timeline.log("creator: other work ...")
        await asyncio.sleep(_STEP)
        timeline.log("creator: await A, await B")
        await a
        await b
    timeline.log("creator: done")
    return timeline.lines


async def _deferred() -> list[str]:
    timeline = _Timeline()
    timeline.log("build job('A'), job('B')")
    work = (_job(timeline, "A"), _job(timeline, "B"))
    timeline.log("creator: other work ...")
    await asyncio.sleep(_STEP)
    timeline.log("creator: await run_all(...)")
    await tether.run_all(*work)
    timeline.log("creator: done")
    return timeline.lines


async def _victim(events: list[str], waiters: weakref.WeakSet[Any]) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.add(future)  # the only other reference is weak, as in many libraries
    events.append("task started, awaits a future")
    try:
        events.append(f"task finished: got {await future!r}")
    except GeneratorExit:
        events.append("task DESTROYED mid-flight by the collector")
        raise
    finally:
        events.append("task's finally block ran")


async def _hazard(under_registry: bool) -> list[str]:
    events: list[str] = []
    waiters: weakref.WeakSet[Any] = weakref.WeakSet()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(
        lambda _loop, ctx: events.append(f"loop: {ctx['message']}")
    )
    if under_registry:
        async with tether.TaskRegistry(name="demo") as tasks:
            events.append("tasks.spawn(victim)")
            tasks.spawn(_victim, events, waiters)
            await asyncio.sleep(0)
            gc.collect()
            events.append(f"gc.collect(): future alive = {len(waiters) == 1}")
            for future in list(waiters):
                future.set_result("hello")
    else:
        events.append("asyncio.create_task(victim)")
        asyncio.create_task(_victim(events, waiters))  # noqa: RUF006, TET001 (on show)
        await asyncio.sleep(0)
        gc.collect()
        events.append(f"gc.collect(): future alive = {len(waiters) == 1}")
    await asyncio.sleep(0)
    gc.collect()
    loop.set_exception_handler(None)
    return events


def _columns(
    title: str, left: tuple[str, list[str]], right: tuple[str, list[str]]
) -> str:
    rows = [title, "", f"  {left[0]:<{_WIDTH}}  {right[0]}", ""]
    for i in range(max(len(left[1]), len(right[1]))):
        a = left[1][i] if i < len(left[1]) else ""
        b = right[1][i] if i < len(right[1]) else ""
        rows.append(f"  {a:<{_WIDTH}}  {b}")
    return "\n".join(rows)


async def _main() -> str:
    eager = await _eager()
    deferred = await _deferred()
    raw = await _hazard(under_registry=False)
    kept = await _hazard(under_registry=True)
    return "\n\n".join(
        [
            _columns(
                "1. Eager spawn versus deferred run_all (time in steps of the "
                "creator's work)",
                ("eager: tasks.spawn", eager),
                ("deferred: tether.run_all", deferred),
            ),
            "  Spawned jobs run while the creator works; gathered coroutines wait "
            "for the gather point.",
            _columns(
                "2. A task whose only reference is dropped, then gc.collect()",
                ("raw asyncio.create_task", raw),
                ("under a TaskRegistry", kept),
            ),
            "  The registry holds every task until it ends, so none is collected "
            "mid-flight.",
        ]
    )


def run() -> int:
    """Print the demo; return the exit code."""
    print(asyncio.run(_main()))
    return 0
