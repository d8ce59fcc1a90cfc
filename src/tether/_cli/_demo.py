"""``tether demo``: ``create_task`` or ``gather``, and the two hazards of a raw task.

Three short shows, each printed as two columns side by side, then the rule:

1. eager work (``asyncio.create_task``, tether's ``tasks.spawn``) next to deferred
   work (``asyncio.gather``, tether's ``run_all``): spawned jobs start at the
   creator's next ``await`` and run while it works; gathered coroutines start only
   at the gather point;
2. a raw ``asyncio.create_task`` whose only reference is dropped, collected by
   ``gc.collect()`` mid-flight, next to the same task under a ``TaskRegistry``;
3. a raw task that fails with nobody awaiting it, reported only when it is
   collected, next to the same failure under a registry, reported as it happens.

The timelines count steps (one per event), not seconds, so every run prints the
same lines. It runs on asyncio (the hazards are asyncio's) in well under a second.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import textwrap
import weakref
from typing import Any

import tether
from tether._log import logger

__all__ = ["run"]

_WIDTH = 37  # two columns fit 80 characters
_RULE = (
    "The rule: start it now, await it later: spawn. Await all at one point: run_all."
)


class _Steps:
    """A timeline that numbers its events: the same every run."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, what: str) -> None:
        self.lines.append(f"{len(self.lines) + 1:2}  {what}")


async def _job(steps: _Steps, name: str) -> str:
    steps.log(f"  job {name} starts")
    await asyncio.sleep(0)
    steps.log(f"  job {name} ends")
    return name


async def _other_work(steps: _Steps) -> None:
    steps.log("creator: await other work")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    steps.log("creator: other work done")


async def _eager() -> list[str]:
    steps = _Steps()
    results: list[str] = []
    async with tether.TaskRegistry(name="demo") as tasks:
        a = tasks.spawn(_job, steps, "A")
        b = tasks.spawn(_job, steps, "B")
        steps.log("spawn A, spawn B: nothing runs")
        steps.log("creator: sync code, no await")
        await _other_work(steps)
        steps.log("creator: await A, await B")
        results += [await a, await b]
    steps.log(f"creator: got {results}")
    return steps.lines


async def _deferred() -> list[str]:
    steps = _Steps()
    work = (_job(steps, "A"), _job(steps, "B"))
    steps.log("job(A), job(B): inert coroutines")
    steps.log("creator: sync code, no await")
    await _other_work(steps)
    steps.log("creator: await run_all(A, B)")
    results = list(await tether.run_all(*work))
    steps.log(f"creator: got {results}")
    return steps.lines


async def _victim(events: list[str], waiters: weakref.WeakSet[Any]) -> None:
    future = asyncio.get_running_loop().create_future()
    waiters.add(future)  # the only other reference is weak, as in many libraries
    events.append("task starts, awaits a future")
    try:
        events.append(f"task finished: got {await future!r}")
    except GeneratorExit:
        events.append("task DESTROYED mid-flight")
        raise
    finally:
        events.append("task's finally block ran")


async def _lost(under_registry: bool) -> list[str]:
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


async def _fails() -> None:
    await asyncio.sleep(0)
    raise ValueError("boom")


class _Recorder(logging.Handler):
    def __init__(self, events: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(f"log: {record.getMessage()}")


async def _unobserved(under_registry: bool) -> list[str]:
    events: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(
        lambda _loop, ctx: events.append(f"loop: {ctx['message']}")
    )
    recorder, propagate = _Recorder(events), logger.propagate
    logger.addHandler(recorder)
    logger.propagate = False  # the demo shows the record itself, once
    try:
        if under_registry:
            async with tether.TaskRegistry(name="demo") as tasks:
                events.append("tasks.spawn(fails)")
                tasks.spawn(_fails, name="fails")
                for _ in range(3):
                    await asyncio.sleep(0)
                events.append("creator: goes on")
        else:
            kept = [asyncio.create_task(_fails(), name="fails")]
            events.append("kept.append(create_task(fails()))")
            for _ in range(3):
                await asyncio.sleep(0)
            events.append("creator: goes on, nothing seen")
            events.append("creator: drops the list")
            del kept
            gc.collect()
    finally:
        logger.removeHandler(recorder)
        logger.propagate = propagate
        loop.set_exception_handler(None)
    return events


def _columns(
    title: str, left: tuple[str, list[str]], right: tuple[str, list[str]]
) -> str:
    rows = [title, "", f"  {left[0]:<{_WIDTH}}  {right[0]}", ""]
    lines = _wrapped(left[1]), _wrapped(right[1])
    for i in range(max(map(len, lines))):
        a, b = (column[i] if i < len(column) else "" for column in lines)
        rows.append(f"  {a:<{_WIDTH}}  {b}".rstrip())
    return "\n".join(rows)


def _wrapped(lines: list[str]) -> list[str]:
    """Each line cut to the column's width, continued under its own text."""
    out: list[str] = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" 0123456789")))
        out += textwrap.wrap(line, _WIDTH, subsequent_indent=indent + "  ")
    return out


async def _main() -> str:
    eager = await _eager()
    deferred = await _deferred()
    raw = await _lost(under_registry=False)
    kept = await _lost(under_registry=True)
    silent = await _unobserved(under_registry=False)
    reported = await _unobserved(under_registry=True)
    return "\n\n".join(
        [
            _columns(
                "1. create_task or gather? (numbers are steps, not seconds)",
                ("create_task -> tasks.spawn (eager)", eager),
                ("gather -> tether.run_all (deferred)", deferred),
            ),
            "  A spawned job starts at the creator's next await and runs while it\n"
            "  works; a gathered coroutine starts only at the gather point.",
            _columns(
                "2. A task whose only reference is dropped, then gc.collect()",
                ("raw asyncio.create_task", raw),
                ("under a TaskRegistry", kept),
            ),
            _columns(
                "3. A task that fails while nobody awaits it",
                ("raw asyncio.create_task", silent),
                ("under a TaskRegistry", reported),
            ),
            "  The registry holds every task until it ends (none is collected\n"
            "  mid-flight) and reports every failure nobody awaited, as it happens.",
            _RULE,
        ]
    )


def run() -> int:
    """Print the demo; return the exit code."""
    print(asyncio.run(_main()))
    return 0
