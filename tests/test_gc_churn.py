"""Guarantee 1 under churn: tasks parked on futures that only weak references reach,
registry tasks and gather children alike, while cyclic garbage is allocated and the
collector is forced again and again. Not one task may be lost.

asyncio and uvloop only: the loop keeps weak references to its tasks, which is the
hazard; trio holds every task itself. ``TETHER_CHURN_N`` raises the count for a soak
(the default keeps the suite fast).
"""

from __future__ import annotations

import gc
import os
import weakref
from typing import Any

import anyio
import pytest

import tether

pytestmark = pytest.mark.anyio

N = int(os.environ.get("TETHER_CHURN_N", "20000"))
COLLECT_EVERY = 2_000


class Cycle:
    """Cyclic garbage: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self
        self.payload = [object() for _ in range(4)]


async def test_parked_tasks_survive_forced_collections(backend_name: str) -> None:
    if backend_name == "trio":
        pytest.skip("trio holds its tasks itself: a trio task cannot be collected")
    import asyncio

    loop = asyncio.get_running_loop()
    futures: weakref.WeakSet[asyncio.Future[int]] = weakref.WeakSet()
    finished: list[int] = []

    async def parked(i: int) -> int:
        future: asyncio.Future[int] = loop.create_future()
        futures.add(future)  # only this task refers to it strongly
        value = await future
        finished.append(i)
        return value

    def churn() -> None:
        for _ in range(50):
            Cycle()
        gc.collect()

    half = N // 2
    async with tether.TaskRegistry(name="churn") as tasks:
        handles: list[tether.Handle[int]] = []
        for i in range(half):
            handles.append(tasks.spawn(parked, i))
            if i % COLLECT_EVERY == 0:
                churn()
        del handles  # the registry alone holds the tasks now

        async def gather_all() -> tuple[int, ...]:
            return await tether.run_all(*(parked(half + i) for i in range(half)))

        gathered = tasks.spawn(gather_all)
        await anyio.wait_all_tasks_blocked()
        for _ in range(5):
            churn()
        assert len(futures) == N, f"{N - len(futures)} tasks were lost to the collector"
        for count, future in enumerate(list(futures)):
            future.set_result(1)
            if count % COLLECT_EVERY == 0:
                churn()
        assert sum(await gathered) == half
    assert sorted(finished) == list(range(N))
    assert tasks.statistics().succeeded == half + 1


async def test_a_gather_child_survives_while_its_caller_waits(
    backend_name: str,
) -> None:
    if backend_name == "trio":
        pytest.skip("trio holds its tasks itself: a trio task cannot be collected")
    import asyncio

    loop = asyncio.get_running_loop()
    refs: list[weakref.ref[Any]] = []

    async def child() -> int:
        future: asyncio.Future[int] = loop.create_future()
        refs.append(weakref.ref(future))
        return await future

    async def release() -> int:
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            gc.collect()
        alive = [r() for r in refs]
        assert all(f is not None for f in alive), "a child was collected"
        for future in alive:
            assert future is not None
            future.set_result(2)
        return 0

    outcomes = await tether.settle_all(*[child() for _ in range(100)], release())
    assert [o for o in outcomes if not isinstance(o, int)] == []
    assert sum(o for o in outcomes if isinstance(o, int)) == 200
