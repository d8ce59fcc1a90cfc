"""Types of tether for trio users (#26): ``start()`` with functions whose
``task_status`` is trio's own ``trio.TaskStatus[T]`` (trio's ``serve_tcp``, a
trio-websocket-style server), and the nursery-shaped :func:`tether.as_nursery`.
Never executed; checked by mypy --strict and pyright strict.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import trio
from typing_extensions import assert_type

import tether


async def serve(
    host: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started(port)
    await trio.sleep_forever()


async def ready(
    *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()


async def handler(stream: trio.SocketStream) -> None:
    await stream.send_all(b"hello")


async def serve_anyio(
    port: int, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started(f"port {port}")


async def start_types(tasks: tether.TaskRegistry) -> None:
    assert_type(await tasks.start(serve, "localhost", 8000), int)
    assert_type(await tasks.start(ready), None)
    assert_type(
        await tasks.start(trio.serve_tcp, handler, 8000), list[trio.SocketListener]
    )
    assert_type(await tasks.start(serve_anyio, 8000), str)
    await tasks.start(serve, "localhost", "8000")  # type: ignore[misc]
    await tasks.start(handler)  # type: ignore[arg-type]


async def same_function_starts_under_a_nursery(nursery: trio.Nursery) -> None:
    # One function serves tether's start() and trio's nursery.start().
    port: Any = await nursery.start(serve, "localhost", 8000)
    assert_type(port, Any)


async def nursery_types(tasks: tether.TaskRegistry) -> None:
    nursery = tether.as_nursery(tasks)
    assert_type(nursery, tether.RegistryNursery)
    assert_type(nursery.registry, tether.TaskRegistry)
    nursery.start_soon(handler, trio.SocketStream(trio.socket.socket()))
    nursery.start_soon(serve, "localhost", 8000, name="server")
    nursery.start_soon(serve, "localhost", "8000")  # type: ignore[arg-type]
    assert_type(await nursery.start(serve, "localhost", 8000), Any)
    tether.as_nursery(nursery)  # type: ignore[arg-type]
