"""The guarantees: no lost tasks (1), every task ends once (2), none outlives the
registry (3), and the cancellation model (5), on every backend."""

# Handles bound inside `async with TaskRegistry()` or `pytest.raises` are checked
# after the block, which pyright takes as possibly unbound: both `__aexit__`s are
# typed `-> bool` (as anyio's task group is), so either may swallow an exception.
# pyright: reportPossiblyUnboundVariable=false

from __future__ import annotations

import gc
import inspect
import sys
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

from helpers import closed, park, tether_records
from tether import Handle, RegistryState, Status, TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Coroutine

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


# -- Guarantee 1: no task is garbage-collected mid-flight ---------------------------


def _future_only_the_task_holds(futures: weakref.WeakSet[Any]) -> Any:
    import asyncio

    future = asyncio.get_running_loop().create_future()
    futures.add(future)
    return future


async def test_registry_keeps_a_task_the_loop_would_lose(backend_name: str) -> None:
    if backend_name == "trio":
        pytest.skip("trio holds its tasks itself: a trio task cannot be collected")
    import asyncio

    loop = asyncio.get_running_loop()
    futures: weakref.WeakSet[Any] = weakref.WeakSet()
    log: list[str] = []
    contexts: list[dict[str, Any]] = []

    async def orphan(label: str) -> str:
        try:
            await _future_only_the_task_holds(futures)
            return label
        finally:
            log.append(f"{label} ended")

    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: contexts.append(context))
    try:
        # The hazard: a raw task that only the loop's weak references know of.
        raw: Any = asyncio.create_task(orphan("raw"))
        await anyio.wait_all_tasks_blocked()
        del raw
        gc.collect()
        assert log == ["raw ended"]  # its finally ran at a random moment
        assert len(futures) == 0
        assert [c["message"] for c in contexts] == [
            "Task was destroyed but it is pending!"
        ]
        contexts.clear()

        async with TaskRegistry() as tasks:
            tasks.spawn(orphan, "held")  # the handle is dropped at once
            await anyio.wait_all_tasks_blocked()
            gc.collect()
            assert log == ["raw ended"]
            (future,) = futures  # still alive: the registry holds the task
            future.set_result(None)
            await tasks.wait_idle()
            assert log == ["raw ended", "held ended"]
            assert tasks.statistics().succeeded == 1
    finally:
        loop.set_exception_handler(previous)
    assert contexts == []


# -- Guarantee 2 and 3: every task ends once, and none outlives the registry --------


async def test_every_task_ends_exactly_once_and_none_outlives_the_registry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ends: list[str] = []
    release = anyio.Event()

    async def worker(label: str, fail: bool) -> None:
        try:
            await release.wait()
            if fail:
                raise ValueError(label)
        finally:
            ends.append(label)

    async with TaskRegistry(limit=3) as tasks:
        handles = [tasks.spawn(worker, f"t{i}", i % 4 == 0) for i in range(8)]
        handles[1].cancel()  # before its first step: never runs
        handles[5].cancel()  # queued: never runs
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert all(handle.done() for handle in handles)
    assert sorted(ends) == sorted(f"t{i}" for i in range(8) if i not in {1, 5})
    stats = tasks.statistics()
    assert (stats.succeeded, stats.failed, stats.cancelled) == (4, 2, 2)
    assert stats.spawned == 8
    assert (stats.queued, stats.running) == (0, 0)
    assert len(tasks) == 0
    # Each failure nobody awaited is reported exactly once.
    failures = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert sorted(map(str, failures)) == ["t0", "t4"]


# -- Guarantee 5: the cancellation model --------------------------------------------


async def shielded_worker(
    entered: anyio.Event, proceed: anyio.Event, log: list[str]
) -> str:
    with anyio.CancelScope(shield=True):
        entered.set()
        await proceed.wait()
        await anyio.lowlevel.checkpoint()
        log.append("shield done")
    log.append("after shield")  # pragma: no cover - cancelled at the next checkpoint
    await anyio.lowlevel.checkpoint()
    log.append("unreachable")  # pragma: no cover
    return "finished"  # pragma: no cover


async def test_a_shield_inside_a_task_survives_handle_cancel() -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(shielded_worker, entered, proceed, log)
        await entered.wait()
        handle.cancel()
        await anyio.wait_all_tasks_blocked()
        assert handle.status is Status.CANCELLING
        proceed.set()
        await handle.wait()
    assert handle.status is Status.CANCELLED
    assert log == ["shield done", "after shield"]


@pytest.mark.parametrize("how", ["shutdown_timeout", "body_cancelled"])
async def test_a_shield_inside_a_task_survives_shutdown(how: str) -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        proceed.set()

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as host:
            async with TaskRegistry(shutdown_timeout=0) as tasks:
                handle = tasks.spawn(shielded_worker, entered, proceed, log)
                await entered.wait()
                tg.start_soon(release_later)
                if how == "body_cancelled":
                    host.cancel()
                    await anyio.lowlevel.checkpoint()
    assert handle.status is Status.CANCELLED
    assert log == ["shield done", "after shield"]
    assert tasks.state is RegistryState.CLOSED


async def test_a_shield_inside_a_task_survives_a_siblings_failure() -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()

    async def fail() -> None:
        await entered.wait()
        raise KeyError("sibling")

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        proceed.set()

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving raises
        async with (
            anyio.create_task_group() as tg,
            TaskRegistry(on_error="raise") as tasks,
        ):
            handle = tasks.spawn(shielded_worker, entered, proceed, log)
            tasks.spawn(fail)
            tg.start_soon(release_later)
            await anyio.sleep_forever()
    assert info.group_contains(KeyError, depth=2)
    assert handle.status is Status.CANCELLED
    assert log == ["shield done", "after shield"]


async def test_cancellation_is_level_triggered_in_finally() -> None:
    log: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            log.append("finally")
            try:
                await anyio.lowlevel.checkpoint()
            except anyio.get_cancelled_exc_class():
                log.append("cancelled again")
                raise
            log.append("not cancelled")  # pragma: no cover

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(worker)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
    assert log == ["finally", "cancelled again"]
    assert handle.status is Status.CANCELLED


async def test_a_task_that_swallows_cancellation_is_cancelled_again() -> None:
    log: list[str] = []

    async def stubborn() -> str:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            log.append("swallowed")
        await anyio.lowlevel.checkpoint()
        return "unreachable"  # pragma: no cover

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(stubborn)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
    assert log == ["swallowed"]
    assert handle.status is Status.CANCELLED


@pytest.mark.parametrize("where", ["queued", "before_first_step"])
async def test_a_task_cancelled_before_it_starts_runs_no_code(where: str) -> None:
    log: list[str] = []

    async def worker() -> None:
        log.append("ran")  # pragma: no cover - must never run

    async with TaskRegistry(limit=1) as tasks:
        blocker = tasks.spawn(park, anyio.Event()) if where == "queued" else None
        coro: Coroutine[Any, Any, None] = worker()
        handle = tasks.spawn(coro)
        before = handle.status
        assert before is (Status.QUEUED if blocker else Status.RUNNING)
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CREATED  # no step yet
        handle.cancel()
        await handle.wait()
        # Closed, never awaited: no "coroutine was never awaited" warning (an error),
        # and the log below shows that not even its first line ran.
        assert closed(coro)
        assert handle.status is Status.CANCELLED
        if blocker is not None:
            blocker.cancel()
    assert log == []
    assert tasks.statistics().cancelled == (2 if where == "queued" else 1)


async def test_tasks_do_not_inherit_a_deadline_around_the_spawn_call() -> None:
    event = anyio.Event()
    handles: list[Handle[str]] = []
    async with TaskRegistry() as tasks:
        with anyio.move_on_after(0):  # already expired
            handles.append(tasks.spawn(park, event))
            await anyio.sleep_forever()
        with anyio.CancelScope() as scope:
            handles.append(tasks.spawn(park, event))
            scope.cancel()
            await anyio.lowlevel.checkpoint()
        await anyio.wait_all_tasks_blocked()
        assert [h.status for h in handles] == [Status.RUNNING, Status.RUNNING]
        event.set()
        assert [await h for h in handles] == ["released", "released"]


async def test_tasks_do_not_inherit_a_cancellation_around_the_registry() -> None:
    event = anyio.Event()
    with anyio.CancelScope() as outer:
        async with TaskRegistry() as tasks:
            handle = tasks.spawn(park, event)
            with anyio.CancelScope(shield=True):
                outer.cancel()  # reaches the body, but not the task directly
                await anyio.wait_all_tasks_blocked()
                assert handle.status is Status.RUNNING
                event.set()
                assert await handle == "released"
            await anyio.lowlevel.checkpoint()  # the body is cancelled here
    assert outer.cancelled_caught


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
class TestDeadlinesOnTheMockClock:
    """Real deadlines, on trio's mock clock (asyncio has no virtual clock)."""

    async def test_a_deadline_around_the_block_or_spawn_does_not_reach_tasks(
        self,
    ) -> None:
        async def slow() -> str:
            await anyio.sleep(10)
            return "slept"

        start = anyio.current_time()
        with anyio.move_on_after(5) as outer:
            async with TaskRegistry() as tasks:
                spawned: list[Handle[str]] = []
                # No await inside: the deadline is around the spawn call only.
                with anyio.move_on_after(1):  # noqa: ASYNC100
                    spawned.append(tasks.spawn(slow))
                (handle,) = spawned
                with anyio.CancelScope(shield=True):
                    # The body shields itself from the outer deadline, so only a
                    # deadline inherited by the task itself could cancel it.
                    assert await handle == "slept"
                    assert anyio.current_time() - start >= 10
                await anyio.lowlevel.checkpoint()
        assert outer.cancelled_caught


async def test_cancel_all_cancels_everything_and_keeps_the_registry_open() -> None:
    async with TaskRegistry(limit=2) as tasks:
        handles = [tasks.spawn(park, anyio.Event()) for _ in range(4)]
        await anyio.wait_all_tasks_blocked()
        tasks.cancel_all()
        assert [h.status for h in handles] == [
            Status.CANCELLING,
            Status.CANCELLING,
            Status.CANCELLED,
            Status.CANCELLED,
        ]
        await tasks.wait_idle()
        assert all(h.status is Status.CANCELLED for h in handles)
        assert tasks.state is RegistryState.OPEN
        event = anyio.Event()
        again = tasks.spawn(park, event)
        event.set()
        assert await again == "released"
    assert tasks.statistics().cancelled == 4
