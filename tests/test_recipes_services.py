"""The recipes of long-running work, run as the docs show them: retries with
tenacity around a spawned body, and a supervised consumer in a FastAPI lifespan."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

from recipes.consumer import create_app
from recipes.retry import with_retries
from tether import Handle, Status, TaskCancelled, TaskRegistry

if TYPE_CHECKING:
    from fastapi import FastAPI

pytestmark = pytest.mark.anyio


class Flaky:
    """``fetch(url)`` that raises ``errors`` one per call, then returns."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self, url: str) -> bytes:
        self.calls += 1
        await anyio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        return url.encode()


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_the_retry_recipe_retries_connection_errors_and_timeouts() -> None:
    fetch = Flaky(ConnectionError("reset"), TimeoutError())
    async with TaskRegistry() as tasks:
        assert await tasks.spawn(with_retries, fetch, "feed") == b"feed"
    assert fetch.calls == 3


async def test_the_retry_recipe_gives_up_on_other_errors() -> None:
    fetch = Flaky(ValueError("bad feed"))
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(with_retries, fetch, "feed")
        with pytest.raises(ValueError, match="bad feed"):
            await handle
    assert fetch.calls == 1


async def test_the_retry_recipe_never_retries_a_cancellation() -> None:
    calls: list[str] = []

    async def hangs(url: str) -> bytes:
        calls.append(url)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(with_retries, hangs, "feed")
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
        assert handle.status is Status.CANCELLED
    assert calls == ["feed"]


async def test_the_retry_recipe_never_retries_task_cancelled() -> None:
    calls: list[str] = []
    holder: list[Handle[None]] = []

    async def awaits_a_cancelled_task(url: str) -> bytes:
        calls.append(url)
        await holder[0]  # raises TaskCancelled: an Exception, not retried
        return b""

    async with TaskRegistry() as tasks:
        holder.append(tasks.spawn(anyio.sleep_forever))
        await anyio.wait_all_tasks_blocked()
        holder[0].cancel()
        handle = tasks.spawn(with_retries, awaits_a_cancelled_task, "feed")
        with pytest.raises(TaskCancelled):
            await handle
    assert calls == ["feed"]


class Broker:
    """A queue whose connection drops once, on the first ``get``."""

    def __init__(self, messages: list[str]) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[str](len(messages))
        for message in messages:
            self.send.send_nowait(message)
        self.dropped = False
        self.acked: list[str] = []
        self.all_acked = anyio.Event()
        self.expected = len(messages)

    async def get(self) -> str:
        if not self.dropped:
            self.dropped = True
            raise ConnectionError("broker went away")
        return await self.receive.receive()

    async def ack(self, message: str) -> None:
        self.acked.append(message)
        if len(self.acked) == self.expected:
            self.all_acked.set()

    def close(self) -> None:
        self.send.close()
        self.receive.close()


async def test_the_consumer_recipe_restarts_after_a_crash_and_stops_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker(["a", "b"])
    handled: list[str] = []
    app: FastAPI = create_app(broker, handled)
    services: list[Handle[Any]] = []
    async with app.router.lifespan_context(app):
        tasks: TaskRegistry = app.state.tasks
        services.extend(tasks)
        await broker.all_acked.wait()  # after the restart's backoff
        assert tasks.statistics().restarts == 1
    broker.close()
    [consumer] = services
    assert consumer.name == "consumer"
    assert consumer.status is Status.CANCELLED
    assert consumer.restarts == 1
    assert handled == ["a", "b"]
    assert "Service 'consumer' of TaskRegistry 'app' failed" in caplog.text
