"""tether.testing under pytest-asyncio, in strict mode (docs/testing.md).

Not collected here (no test_ prefix, and this suite runs without pytest-asyncio):
tests/test_testing_plugin.py runs it in a pytester session of its own, where
``test_leaks_a_raw_task`` is meant to error.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

import tether

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEPT: list[asyncio.Task[bool]] = []


class Feed:
    """A client whose start() spawns its reader, and whose close() stops it."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._reader: tether.Handle[None] | None = None

    def start(self) -> None:
        self._reader = tether.spawn(self._read, name="feed reader")

    async def _read(self) -> None:
        while True:
            self.received.append(await self._queue.get())
            self._queue.task_done()

    async def push(self, message: str) -> None:
        await self._queue.put(message)
        await self._queue.join()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await self._reader.wait()


@pytest_asyncio.fixture
async def feed(tether_registry: tether.TaskRegistry) -> AsyncIterator[Feed]:
    feed = Feed()
    feed.start()  # its reader is a task of tether_registry
    yield feed
    await feed.close()


@pytest.mark.asyncio
@pytest.mark.tether_no_leaks
async def test_the_feed_reads(feed: Feed) -> None:
    await feed.push("hello")
    assert feed.received == ["hello"]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.tether_no_leaks
async def test_in_the_modules_loop(tether_registry: tether.TaskRegistry) -> None:
    assert await tether.spawn(asyncio.sleep, 0, "done") == "done"


@pytest.mark.asyncio
@pytest.mark.tether_no_leaks
async def test_leaks_a_raw_task() -> None:
    KEPT.append(asyncio.create_task(asyncio.Event().wait(), name="watcher"))
