"""Types of services, readiness, timeouts and done-callbacks: never executed,
checked by mypy --strict and pyright strict (negatives carry mypy's error code).
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
from typing_extensions import assert_type

import tether


async def serve(
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    task_status.started(port)


async def ready_without_value(
    *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()


async def no_status(port: int) -> None: ...


async def consume(queue: str) -> int:
    return 0


async def start_types(tasks: tether.TaskRegistry) -> None:
    assert_type(await tasks.start(serve, "localhost", 8000), int)
    assert_type(await tasks.start(ready_without_value), None)
    assert_type(await tasks.start(serve, "h", 1, name="srv", daemon=True), int)
    await tasks.start(serve, "localhost", "8000")  # type: ignore[misc]
    await tasks.start(no_status, 1)  # type: ignore[arg-type]


async def same_function_starts_under_anyio(tg: anyio.abc.TaskGroup) -> None:
    # One function serves tether's start() and anyio's TaskGroup.start().
    port: Any = await tg.start(serve, "localhost", 8000)
    assert_type(port, Any)


def service_types(tasks: tether.TaskRegistry) -> None:
    assert_type(tasks.spawn_service(consume, "jobs"), tether.Handle[int])
    assert_type(
        tasks.spawn_service(
            consume,
            "jobs",
            restart="always",
            max_restarts=None,
            restart_window=30,
            backoff=0.1,
            max_backoff=5,
            timeout=60,
        ),
        tether.Handle[int],
    )
    assert_type(
        tasks.spawn_service(consume, "jobs", restart_on=ConnectionError),
        tether.Handle[int],
    )
    assert_type(
        tasks.spawn_service(
            consume, "jobs", restart_on=(ConnectionError, TimeoutError)
        ),
        tether.Handle[int],
    )
    tasks.spawn_service(consume, "jobs", restart_on=KeyboardInterrupt)  # type: ignore[arg-type]
    tasks.spawn_service(consume, 1)  # type: ignore[arg-type]
    tasks.spawn_service(consume, "jobs", restart="never")  # type: ignore[arg-type]
    assert_type(tasks.spawn_service(consume, "jobs").restarts, int)


def alert(handle: tether.Handle[int]) -> None: ...


def alert_any(handle: tether.Handle[Any]) -> None: ...


def give_up_types(tasks: tether.TaskRegistry) -> None:
    assert_type(
        tasks.spawn_service(consume, "jobs", on_give_up="raise"), tether.Handle[int]
    )
    assert_type(
        tasks.spawn_service(consume, "jobs", on_give_up=alert), tether.Handle[int]
    )
    assert_type(
        tasks.spawn_service(consume, "jobs", on_give_up=alert_any),
        tether.Handle[int],
    )
    assert_type(
        tasks.spawn_service(consume, "jobs", on_give_up=None), tether.Handle[int]
    )
    tasks.spawn_service(consume, "jobs", on_give_up="close")  # type: ignore[arg-type]
    tasks.spawn_service(consume, "jobs", on_give_up=consume)  # type: ignore[arg-type]


def timeout_types(tasks: tether.TaskRegistry) -> None:
    assert_type(tasks.spawn(consume, "jobs", timeout=5), tether.Handle[int])
    assert_type(tether.spawn(consume, "jobs", timeout=0.5), tether.Handle[int])


def callback_types(handle: tether.Handle[int]) -> None:
    def on_done(done: tether.Handle[int]) -> None:
        print(done.status)

    handle.add_done_callback(on_done)
    handle.add_done_callback(lambda done: print(done.result() + 1))

    def wants_str(done: tether.Handle[str]) -> None: ...

    handle.add_done_callback(wants_str)  # type: ignore[arg-type]
