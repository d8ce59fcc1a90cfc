"""tether.as_nursery: a registry behind a nursery's start_soon and start, for
libraries that take a ``handler_nursery=`` (#26 item 4)."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import tether
from helpers import park
from tether import TaskRegistry

pytestmark = pytest.mark.anyio


async def record_after_checkpoint(value: str, record: list[str]) -> None:
    await anyio.lowlevel.checkpoint()
    record.append(value)


async def fail(message: str) -> None:
    await anyio.lowlevel.checkpoint()
    raise ValueError(message)


async def serve(
    port: int, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started(port)
    await anyio.sleep_forever()


async def test_start_soon_spawns_into_the_registry() -> None:
    record: list[str] = []
    async with TaskRegistry(name="handlers") as tasks:
        nursery = tether.as_nursery(tasks)
        nursery.start_soon(record_after_checkpoint, "ran", record)
        assert [h.name for h in tasks] == ["record_after_checkpoint"]
        assert nursery.registry is tasks
    assert record == ["ran"]
    assert tasks.statistics().succeeded == 1


async def test_a_failing_handler_goes_to_on_error_and_spares_its_siblings() -> None:
    """Unlike a nursery child, whose failure cancels its siblings and the server."""
    failures: list[str] = []
    released = anyio.Event()

    def on_error(handle: tether.Handle[Any], exc: Exception) -> None:
        failures.append(f"{handle.name}: {exc}")
        released.set()

    async with TaskRegistry(on_error=on_error) as tasks:
        nursery = tether.as_nursery(tasks)
        nursery.start_soon(park, released, name="sibling")
        nursery.start_soon(fail, "bad request", name="handler")
    assert failures == ["handler: bad request"]
    assert tasks.statistics().succeeded == 1


async def test_start_waits_for_started_and_returns_its_value() -> None:
    async with TaskRegistry() as tasks:
        nursery = tether.as_nursery(tasks)
        assert await nursery.start(serve, 8000, name="server") == 8000
        assert [h.name for h in tasks] == ["server"]
        tasks.cancel_all()


async def test_a_name_that_is_not_a_string_is_named_by_its_qualname() -> None:
    record: list[str] = []
    async with TaskRegistry() as tasks:
        tether.as_nursery(tasks).start_soon(
            record_after_checkpoint, "x", record, name=record_after_checkpoint
        )
        tether.as_nursery(tasks).start_soon(record_after_checkpoint, "y", record)
        assert [h.name for h in tasks] == ["record_after_checkpoint"] * 2


async def test_start_soon_refuses_what_spawn_refuses() -> None:
    tasks = TaskRegistry()
    nursery = tether.as_nursery(tasks)
    async with tasks:
        with pytest.raises(TypeError, match="async function"):
            nursery.start_soon(len, "abc")  # type: ignore[arg-type]
        assert len(tasks) == 0
    with pytest.raises(tether.RegistryClosed, match="CLOSED"):
        nursery.start_soon(record_after_checkpoint, "late", ["unused"])


def test_as_nursery_refuses_what_is_not_a_registry() -> None:
    with pytest.raises(TypeError, match=r"as_nursery\(registry=.*pass a tether"):
        tether.as_nursery(object())  # type: ignore[arg-type]
    assert "RegistryNursery" in repr(tether.as_nursery(TaskRegistry(name="r")))


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_trio_serve_tcp_runs_its_handlers_in_a_registry() -> None:
    """A real server: ``trio.serve_tcp(..., handler_nursery=as_nursery(tasks))``.
    A handler that fails is logged by the registry and the server keeps serving.
    trio only: ``serve_tcp`` is trio's."""
    import trio

    failures: list[Exception] = []

    async def echo_once(stream: trio.SocketStream) -> None:
        data = await stream.receive_some()
        if data == b"boom":
            raise ValueError("handler failed")
        await stream.send_all(data.upper())

    async with (
        TaskRegistry(
            name="connections", on_error=lambda _h, exc: failures.append(exc)
        ) as tasks,
        trio.open_nursery() as server,
    ):
        listeners = await server.start(
            partial(
                trio.serve_tcp,
                echo_once,
                0,
                # serve_tcp's annotation names trio.Nursery; it calls start_soon only.
                handler_nursery=tether.as_nursery(tasks),  # type: ignore[arg-type]
                host="127.0.0.1",
            )
        )
        port = listeners[0].socket.getsockname()[1]
        for message, answer in ((b"boom", b""), (b"hello", b"HELLO")):
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(message)
                assert await client.receive_some() == answer
        await tasks.wait_idle()
        assert [str(exc) for exc in failures] == ["handler failed"]
        assert tasks.statistics().succeeded == 1
        server.cancel_scope.cancel()
