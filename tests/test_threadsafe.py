"""spawn_threadsafe: spawning into a registry from another thread."""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading

import anyio
import anyio.to_thread
import pytest

import tether
from helpers import closed, double, park
from tether import Status, TaskRegistry

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def read_request_id() -> str:
    return request_id.get("unset")


async def test_spawn_from_a_worker_thread_returns_a_future_of_the_handle() -> None:
    async with tether.TaskRegistry() as tasks:

        def in_thread() -> tether.Handle[int]:
            return tasks.spawn_threadsafe(double, 21).result()

        handle = await anyio.to_thread.run_sync(in_thread)
        assert await handle == 42
        assert tasks.statistics().succeeded == 1


async def test_the_task_runs_in_a_copy_of_the_calling_threads_context() -> None:
    async with tether.TaskRegistry() as tasks:

        def in_thread() -> tether.Handle[str]:
            request_id.set("from-thread")
            return tasks.spawn_threadsafe(read_request_id).result()

        handle = await anyio.to_thread.run_sync(in_thread)
        assert await handle == "from-thread"


async def test_on_the_loop_thread_it_refuses_and_names_spawn() -> None:
    async with tether.TaskRegistry() as tasks:
        coro = double(1)
        with pytest.raises(RuntimeError, match=r"use registry\.spawn\(fn, \*args\)"):
            tasks.spawn_threadsafe(coro)
        assert closed(coro)  # no warning


async def test_bad_arguments_fail_at_once_in_the_calling_thread() -> None:
    async with tether.TaskRegistry() as tasks:

        def sync_function() -> int:
            return 1

        def in_thread() -> None:
            with pytest.raises(TypeError, match="spawn_threadsafe"):
                tasks.spawn_threadsafe(sync_function)  # type: ignore[arg-type, call-arg]

        await anyio.to_thread.run_sync(in_thread)
        assert len(tasks) == 0


async def test_a_closed_registry_refuses_in_the_calling_thread() -> None:
    async with tether.TaskRegistry(name="done") as tasks:
        pass

    def in_thread() -> None:
        with pytest.raises(tether.RegistryClosed, match="'done' is CLOSED"):
            tasks.spawn_threadsafe(double, 1)

    await anyio.to_thread.run_sync(in_thread)


async def test_a_refusal_on_the_loop_reaches_the_future() -> None:
    async with tether.TaskRegistry(limit=1, max_pending=0) as tasks:
        blocker = anyio.Event()
        tasks.spawn(blocker.wait)

        def in_thread() -> concurrent.futures.Future[tether.Handle[int]]:
            future = tasks.spawn_threadsafe(double, 1)
            concurrent.futures.wait([future])
            return future

        future = await anyio.to_thread.run_sync(in_thread)
        with pytest.raises(tether.RegistryFull):
            future.result()
        blocker.set()


async def test_a_future_cancelled_before_the_loop_runs_it_spawns_nothing() -> None:
    async with tether.TaskRegistry() as tasks:
        cancelled: list[bool] = []

        def in_thread() -> None:
            future = tasks.spawn_threadsafe(double, 1)
            cancelled.append(future.cancel())

        # Joining blocks the event loop on purpose, so the spawn scheduled from the
        # thread cannot run before the thread cancels the future.
        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        await anyio.wait_all_tasks_blocked()
        assert cancelled == [True]
        assert tasks.statistics().spawned == 0


async def test_cancel_from_another_thread_is_refused_before_it_changes_anything() -> (
    None
):
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    handle.cancel() from another thread marked the task CANCELLING before it
    refused, leaving a handle that could no longer be cancelled."""
    release = anyio.Event()
    async with TaskRegistry(shutdown_timeout=0) as tasks:
        handle = tasks.spawn(park, release)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(RuntimeError, match="outside the event loop's thread"):
            await anyio.to_thread.run_sync(handle.cancel)
        assert handle.status is Status.RUNNING
        handle.cancel()  # on the loop's thread it still works
        await handle.wait()
        assert handle.done()
        with pytest.raises(tether.TaskCancelled):
            handle.result()


async def test_spawn_threadsafe_from_a_worker_of_an_own_task_while_draining() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    spawn_threadsafe from a worker thread of one of the registry's own tasks was
    refused while the registry drained."""
    spawned: list[str] = []

    async def follow_up() -> None:
        spawned.append("follow-up")

    async def hands_off(tasks: TaskRegistry) -> None:
        def in_thread() -> None:
            tasks.spawn_threadsafe(follow_up).result()

        await anyio.to_thread.run_sync(in_thread)

    async with TaskRegistry() as tasks:
        tasks.spawn(hands_off, tasks)
        # The body ends at once: the task spawns while the registry drains.
    assert spawned == ["follow-up"]
    assert tasks.statistics().succeeded == 2
