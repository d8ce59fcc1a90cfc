"""The short-lived cases (section ``short``): a registry opened and closed with 0, 1
and 10 tasks, and gathers of a single handle, each beside its equivalent without
tether.

Issue 27, item 4: an app that opens a registry per request (a scan owning its
thumbnails) pays for opening and closing it every time, and a gather of one handle
pays for the machinery of a gather. Each case's body runs ``n`` operations inside one
running event loop, after a few untimed ones and ``gc.collect()``, and returns the
time they took on :data:`clock` (the process's CPU time by default: on a shared
machine the time the process waits for a core stays out of both sides of a ratio).
``benchmarks/run.py`` interleaves the cases round by round and writes each tether
case's median beside its reference's, with the ratio.

* ``registry/k``: ``async with TaskRegistry() as t`` spawning ``k`` tasks that
  suspend once; on asyncio and uvloop against ``asyncio.TaskGroup`` (on 3.10,
  ``create_task`` + ``gather``), on trio against a nursery's ``start_soon``.
* ``as_completed/1``: ``async with as_completed(handle)`` over a fresh handle of an
  open registry, against ``asyncio.wait({task})`` of a fresh task (asyncio only).
* ``settle_all/1``: ``settle_all(handle)``, against ``asyncio.gather(task,
  return_exceptions=True)`` (asyncio only).

Every task body suspends once at its backend's own ``sleep(0)`` (trio's
checkpoint), tether's and the reference's alike.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from _common import ASYNCIO_FAMILY, Case, missing_module, tether_unavailable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    import tether

    #: A task body: suspends once, returns nothing.
    Work = Callable[[], Coroutine[Any, Any, None]]

#: The section's name in ``run.py`` and in the results file.
SECTION = "short"
#: Operations per timed run (``--short-ops``); ``--quick`` runs fewer.
OPS = 200
#: Untimed operations before the timed ones, in the same loop.
WARMUP = 20
#: Nanoseconds, as :func:`time.process_time_ns` (CPU) or ``perf_counter_ns`` (wall).
clock: Callable[[], int] = time.process_time_ns
#: The 2x goal of issue 27 item 4: each case against its reference.
GOAL = 2.0
TASK_COUNTS = (0, 1, 10)


@dataclass(frozen=True)
class Pair:
    """A tether case and the key of its reference, per backend."""

    case: str
    label: str
    references: dict[str, str]


async def _work_asyncio() -> None:
    await asyncio.sleep(0)


async def _work_trio() -> None:
    import trio.lowlevel

    await trio.lowlevel.checkpoint()


def _work(backend: str) -> Work:
    return _work_trio if backend == "trio" else _work_asyncio


async def _timed(op: Callable[[], Awaitable[None]], n: int) -> int:
    for _ in range(WARMUP):
        await op()
    gc.collect()
    start = clock()
    for _ in range(n):
        await op()
    return clock() - start


# -- tether --------------------------------------------------------------------------


def _registry(k: int) -> Callable[[int], Awaitable[int]]:
    async def body(n: int) -> int:
        import tether

        work = _work(_running_backend())

        async def op() -> None:
            async with tether.TaskRegistry() as tasks:
                for _ in range(k):
                    tasks.spawn(work)

        return await _timed(op, n)

    return body


def _one_item(
    gather: Callable[[tether.TaskRegistry, Work], Awaitable[None]],
) -> Callable[[int], Awaitable[int]]:
    async def body(n: int) -> int:
        import tether

        work = _work(_running_backend())
        async with tether.TaskRegistry(name="gathers") as tasks:
            return await _timed(lambda: gather(tasks, work), n)

    return body


async def _as_completed(tasks: tether.TaskRegistry, work: Work) -> None:
    import tether

    handle = tasks.spawn(work)
    async with tether.as_completed(handle) as completed:
        async for _ in completed:
            pass


async def _settle_all(tasks: tether.TaskRegistry, work: Work) -> None:
    import tether

    await tether.settle_all(tasks.spawn(work))


# -- the references ------------------------------------------------------------------


def _task_group(k: int) -> Callable[[int], Awaitable[int]]:
    async def op() -> None:
        if sys.version_info >= (3, 11):
            async with asyncio.TaskGroup() as group:
                for _ in range(k):
                    group.create_task(_work_asyncio())
        else:  # 3.10 has no TaskGroup
            tasks = [asyncio.create_task(_work_asyncio()) for _ in range(k)]
            await asyncio.gather(*tasks)

    async def body(n: int) -> int:
        return await _timed(op, n)

    return body


def _nursery(k: int) -> Callable[[int], Awaitable[int]]:
    async def op() -> None:
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(k):
                nursery.start_soon(_work_trio)

    async def body(n: int) -> int:
        return await _timed(op, n)

    return body


async def _asyncio_wait() -> None:
    await asyncio.wait({asyncio.create_task(_work_asyncio())})


async def _asyncio_gather() -> None:
    await asyncio.gather(asyncio.create_task(_work_asyncio()), return_exceptions=True)


def _plain(op: Callable[[], Awaitable[None]]) -> Callable[[int], Awaitable[int]]:
    async def body(n: int) -> int:
        return await _timed(op, n)

    return body


def _running_backend() -> str:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "asyncio"


# -- the cases -----------------------------------------------------------------------

_TETHER = tether_unavailable("TaskRegistry", "as_completed", "settle_all")
_ALL = (*ASYNCIO_FAMILY, "trio")
#: The registry cases' reference: ``asyncio.TaskGroup``, which 3.10 lacks; there
#: ``create_task`` + ``gather``, under a key of its own (it once shared
#: ``asyncio.gather/1`` with settle_all's reference, and one overwrote the other).
GROUP = "asyncio.TaskGroup"
GROUP_310 = "asyncio.create_task+gather"


def reference_on(reference: str, python: tuple[int, int]) -> str:
    """The key ``reference`` was measured under on ``python``: a results file of
    3.10 read by a newer interpreter (the docs' tables) has the 3.10 stand-in of
    the task group, and the other way round."""
    group, k = reference.partition("/")[::2]
    if group in (GROUP, GROUP_310):
        return f"{GROUP if python >= (3, 11) else GROUP_310}/{k}"
    return reference


_TASK_GROUP = GROUP if sys.version_info >= (3, 11) else GROUP_310
_GROUP_NAME = "TaskGroup" if sys.version_info >= (3, 11) else "create_task + gather"


def _s(k: int) -> str:
    return "" if k == 1 else "s"


PAIRS: list[Pair] = [
    *(
        Pair(
            f"registry/{k}",
            f"registry open+close, {k} task{_s(k)}",
            {
                "asyncio": f"{_TASK_GROUP}/{k}",
                "uvloop": f"{_TASK_GROUP}/{k}",
                "trio": f"trio.open_nursery/{k}",
            },
        )
        for k in TASK_COUNTS
    ),
    Pair(
        "as_completed/1",
        "as_completed of 1 handle",
        {"asyncio": "asyncio.wait/1", "uvloop": "asyncio.wait/1"},
    ),
    Pair(
        "settle_all/1",
        "settle_all of 1 handle",
        {"asyncio": "asyncio.gather/1", "uvloop": "asyncio.gather/1"},
    ),
]

CASES: list[Case] = [
    *(
        Case(
            f"registry/{k}",
            f"tether: registry open+close, {k} task{_s(k)}",
            SECTION,
            _ALL,
            _registry(k),
            _TETHER,
        )
        for k in TASK_COUNTS
    ),
    Case(
        "as_completed/1",
        "tether: as_completed of 1 handle",
        SECTION,
        ASYNCIO_FAMILY,
        _one_item(_as_completed),
        _TETHER,
    ),
    Case(
        "settle_all/1",
        "tether: settle_all of 1 handle",
        SECTION,
        ASYNCIO_FAMILY,
        _one_item(_settle_all),
        _TETHER,
    ),
    *(
        Case(
            f"{_TASK_GROUP}/{k}",
            f"asyncio: {_GROUP_NAME}, {k} task{_s(k)}",
            SECTION,
            ASYNCIO_FAMILY,
            _task_group(k),
        )
        for k in TASK_COUNTS
    ),
    *(
        Case(
            f"trio.open_nursery/{k}",
            f"trio: nursery open+close, {k} task{_s(k)}",
            SECTION,
            ("trio",),
            _nursery(k),
            missing_module("trio"),
        )
        for k in TASK_COUNTS
    ),
    Case(
        "asyncio.wait/1",
        "asyncio: wait({task})",
        SECTION,
        ASYNCIO_FAMILY,
        _plain(_asyncio_wait),
    ),
    Case(
        "asyncio.gather/1",
        "asyncio: gather(task, return_exceptions=True)",
        SECTION,
        ASYNCIO_FAMILY,
        _plain(_asyncio_gather),
    ),
]

#: The reference cases: kept whenever the section runs at all (``--only``).
REFERENCES: set[str] = {ref for pair in PAIRS for ref in pair.references.values()}
