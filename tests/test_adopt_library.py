"""adopt_tasks() with a real library that leaves its tasks dangling: aiocache.

aiocache's ``@cached`` decorator, called with ``aiocache_wait_for_write=False``,
writes the result in the background with ``asyncio.create_task(...)`` and keeps no
reference to the task. Its write runs the cache's plugins; the one here forwards
each write to a replica and waits for the acknowledgement, keeping its pending acks
in a ``WeakValueDictionary`` (as clients keep pending replies, so that a caller
who gave up leaks nothing). The task is then the only thing that refers to its
ack: under ``gc.collect()`` a raw task is freed mid-flight and the write is lost;
adopted, it is held until the ack arrives and the write lands.

asyncio and uvloop: aiocache is an asyncio library.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import weakref
from typing import Any

import pytest

import tether

# Typed as Any: aiocache ships no type information.
aiocache: Any = importlib.import_module("aiocache")

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


class Replicate:
    """An aiocache plugin (the hooks aiocache calls around ``set``, by name) that
    forwards each write to a replica and waits for its acknowledgement."""

    def __init__(self) -> None:
        self.pending: weakref.WeakValueDictionary[int, asyncio.Future[None]] = (
            weakref.WeakValueDictionary()
        )
        self.writes = 0

    async def pre_set(self, client: object, *args: object, **kwargs: object) -> None:
        ack = asyncio.get_running_loop().create_future()
        self.writes += 1
        self.pending[self.writes] = ack
        await ack

    async def post_set(self, client: object, *args: object, **kwargs: object) -> None:
        pass

    def acknowledge_all(self) -> int:
        acks = list(self.pending.values())
        for ack in acks:
            ack.set_result(None)
        return len(acks)


async def cache_in_background(adopt: bool) -> tuple[int, dict[str, Any]]:
    """Call a ``@cached`` function whose write happens in the background, collect
    garbage, acknowledge the writes still waiting, and return how many were
    waiting and what the cache holds."""
    replica = Replicate()

    async def compute() -> int:
        await asyncio.sleep(0)
        return 42

    answer: Any = aiocache.cached(plugins=[replica], timeout=None, key="answer")(
        compute
    )

    adoption = tether.adopt_tasks() if adopt else None
    try:
        assert await answer(aiocache_wait_for_write=False) == 42
        for _ in range(3):  # the write task starts and waits for its ack
            await asyncio.sleep(0)
        assert replica.writes == 1
        for _ in range(3):
            gc.collect()
        acknowledged = replica.acknowledge_all()
        for _ in range(3):
            await asyncio.sleep(0)
        stored: dict[str, Any] = dict(answer.cache._cache)
    finally:
        if adoption is not None:
            adoption.undo()
    return acknowledged, stored


async def test_without_adoption_its_write_task_is_collected_mid_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    acknowledged, stored = await cache_in_background(adopt=False)
    assert acknowledged == 0  # the task and its ack were freed by the collector
    assert stored == {}  # so the write never happened
    destroyed = [
        r
        for r in caplog.records
        if r.name == "asyncio"
        and r.levelno == logging.ERROR
        and r.getMessage().startswith("Task was destroyed but it is pending!")
    ]
    assert len(destroyed) == 1
    assert "set_in_cache" in destroyed[0].getMessage()


async def test_with_adoption_no_write_task_is_collected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    acknowledged, stored = await cache_in_background(adopt=True)
    assert acknowledged == 1
    assert stored == {"answer": 42}
    assert not any("destroyed" in r.getMessage() for r in caplog.records)
