"""Limits: the slot count, the FIFO queue, max_pending, spawn_when_free, and
statistics that always add up."""

from __future__ import annotations

import tracemalloc
from contextvars import ContextVar, copy_context

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed, park, tether_records
from tether import RegistryClosed, RegistryFull, Status, TaskRegistry

pytestmark = pytest.mark.anyio


var: ContextVar[str] = ContextVar("var", default="unset")


def check_sum(tasks: TaskRegistry) -> None:
    s = tasks.statistics()
    assert s.spawned == s.queued + s.running + s.succeeded + s.failed + s.cancelled


async def test_limit_is_never_exceeded() -> None:
    in_flight = peak = 0

    async def worker() -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        in_flight -= 1

    async with TaskRegistry(limit=3) as tasks:
        for _ in range(20):
            tasks.spawn(worker)
            check_sum(tasks)
        assert tasks.statistics().running == 3
        assert tasks.statistics().queued == 17
    assert peak == 3
    assert tasks.statistics().succeeded == 20


async def test_queued_tasks_start_in_spawn_order(backend_name: str) -> None:
    started: list[int] = []
    release = anyio.Event()

    async def worker(i: int) -> None:
        started.append(i)
        await release.wait()

    async with TaskRegistry(limit=4) as tasks:
        for i in range(12):
            tasks.spawn(worker, i)
        await anyio.wait_all_tasks_blocked()
        release.set()
    if backend_name == "trio":
        # trio shuffles the tasks that wake together: the order is unspecified.
        assert sorted(started) == list(range(12))
    else:
        assert started == list(range(12))


async def test_a_spawn_claims_its_slot_at_once() -> None:
    event = anyio.Event()
    async with TaskRegistry(limit=2) as tasks:
        first = tasks.spawn(park, event)
        second = tasks.spawn(park, event)
        third = tasks.spawn(park, event)
        # RUNNING before the first step: the slot is taken by the spawn itself.
        assert (first.status, second.status, third.status) == (
            Status.RUNNING,
            Status.RUNNING,
            Status.QUEUED,
        )
        stats = tasks.statistics()
        assert (stats.running, stats.queued) == (2, 1)
        first.cancel()  # frees a slot: the queued task takes it at once
        await first.wait()
        assert third.status is Status.RUNNING
        event.set()


async def test_a_queued_task_runs_in_the_spawners_context() -> None:
    async def read() -> str:
        await anyio.lowlevel.checkpoint()
        return var.get()

    event = anyio.Event()
    async with TaskRegistry(limit=1) as tasks:
        blocker = tasks.spawn(park, event)
        var.set("given")
        given = copy_context()
        var.set("at spawn")
        queued = tasks.spawn(read)
        with_context = tasks.spawn(read, context=given)
        var.set("later")
        assert (queued.status, with_context.status) == (Status.QUEUED, Status.QUEUED)
        event.set()
        await blocker
        assert await queued == "at spawn"
        assert await with_context == "given"


async def test_max_pending_bounds_the_queue() -> None:
    event = anyio.Event()
    async with TaskRegistry(name="app", limit=1, max_pending=2) as tasks:
        handles = [tasks.spawn(park, event) for _ in range(3)]
        coro = park(event)
        with pytest.raises(
            RegistryFull, match=r"'app' has all 1 slots busy and 2 tasks"
        ):
            tasks.spawn(coro, name="extra")
        assert closed(coro)  # closed: no "never awaited" warning
        with pytest.raises(RegistryFull, match=r"spawn_when_free\(fn, \*args\)"):
            tasks.spawn(park, event)
        check_sum(tasks)
        assert tasks.statistics().spawned == 3
        event.set()
        assert [await h for h in handles] == ["released"] * 3
        assert await tasks.spawn(park, event) == "released"  # room again


async def test_max_pending_zero_means_no_queue() -> None:
    event = anyio.Event()
    async with TaskRegistry(limit=1, max_pending=0) as tasks:
        tasks.spawn(park, event)
        with pytest.raises(RegistryFull):
            tasks.spawn(park, event)
        event.set()


async def test_spawn_when_free_waits_fifo_for_a_slot() -> None:
    order: list[str] = []
    release = anyio.Event()

    async def worker(label: str) -> None:
        order.append(label)
        await release.wait()

    async def producer(tasks: TaskRegistry, label: str) -> None:
        handle = await tasks.spawn_when_free(worker, label)
        # Spawned atomically with the slot: never queued.
        assert handle.status is Status.RUNNING

    async with TaskRegistry(limit=1) as tasks, anyio.create_task_group() as tg:
        tasks.spawn(worker, "first")
        tg.start_soon(producer, tasks, "a")
        await anyio.wait_all_tasks_blocked()
        tasks.spawn(worker, "queued by spawn")  # joins the same FIFO queue
        tg.start_soon(producer, tasks, "b")
        await anyio.wait_all_tasks_blocked()
        assert order == ["first"]
        check_sum(tasks)
        release.set()
    assert order == ["first", "a", "queued by spawn", "b"]


async def test_spawn_when_free_without_a_limit_or_with_room_spawns_at_once() -> None:
    async with TaskRegistry() as tasks:
        handle = await tasks.spawn_when_free(park, anyio.Event())
        assert handle.status is Status.RUNNING
        handle.cancel()
    async with TaskRegistry(limit=2) as tasks:
        handle = await tasks.spawn_when_free(park(anyio.Event()), name="coro")
        assert (handle.name, handle.status) == ("coro", Status.RUNNING)
        handle.cancel()


async def test_cancelling_spawn_when_free_spawns_nothing_and_closes_the_coroutine() -> (
    None
):
    event = anyio.Event()
    async with TaskRegistry(limit=1) as tasks:
        blocker = tasks.spawn(park, event)
        coro = park(event)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(tasks.spawn_when_free, coro)
                await anyio.wait_all_tasks_blocked()
                scope.cancel()
        assert closed(coro)
        assert tasks.statistics().spawned == 1
        pre_cancelled = park(event)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await tasks.spawn_when_free(pre_cancelled)
        assert closed(pre_cancelled)
        # The slot passes on to the next in line, not to the cancelled caller.
        event.set()
        await blocker
        assert await (await tasks.spawn_when_free(park, event)) == "released"
        check_sum(tasks)
    assert tasks.statistics().spawned == 2


async def test_spawn_when_free_waiting_at_shutdown_is_refused() -> None:
    coro = park(anyio.Event())
    outcome: list[str] = []

    async def producer() -> None:
        with pytest.raises(RegistryClosed, match="'app' is CANCELLING"):
            await tasks.spawn_when_free(coro)
        outcome.append("refused")

    async with (
        anyio.create_task_group() as tg,
        TaskRegistry(name="app", limit=1, shutdown_timeout=0) as tasks,
    ):
        tasks.spawn(park, anyio.Event())
        tg.start_soon(producer)  # not a registry task: it is not cancelled
        await anyio.wait_all_tasks_blocked()
    assert outcome == ["refused"]
    assert closed(coro)


async def test_statistics_always_add_up() -> None:
    event = anyio.Event()

    async def fail() -> None:
        await event.wait()
        raise ValueError("counted")

    async with TaskRegistry(limit=2, on_error=lambda _h, _e: None) as tasks:
        check_sum(tasks)
        handles = [tasks.spawn(park, event), tasks.spawn(fail)]
        handles += [tasks.spawn(park, event) for _ in range(3)]
        check_sum(tasks)
        handles[3].cancel()  # queued
        check_sum(tasks)
        await anyio.wait_all_tasks_blocked()
        handles[0].cancel()  # running
        check_sum(tasks)
        await handles[0].wait()
        check_sum(tasks)
        event.set()
        await tasks.wait_idle()
        check_sum(tasks)
        stats = tasks.statistics()
        assert (stats.spawned, stats.succeeded, stats.failed, stats.cancelled) == (
            5,
            2,
            1,
            2,
        )
    check_sum(tasks)


async def test_cancelled_queued_tasks_do_not_accumulate_in_the_queue() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    cancelled queued tasks stayed in the queue, so a program that kept cancelling
    queued work grew without bound."""
    release = anyio.Event()
    grown = -1
    async with TaskRegistry(limit=1, max_pending=10) as tasks:
        tasks.spawn(park, release)
        tracemalloc.start()
        try:
            for _ in range(300):  # warm up: every size class in use
                tasks.spawn(park, release).cancel()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(20_000):
                tasks.spawn(park, release).cancel()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        release.set()
    # 0.1 kept every cancelled handle queued: about 140 bytes each.
    assert grown < 200_000, f"{grown} bytes kept by 20,000 cancelled queued tasks"
    assert tasks.statistics().cancelled == 20_300


async def test_spawn_when_free_callers_that_give_up_leave_the_queue() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    spawn_when_free callers that gave up stayed in the queue."""
    release = anyio.Event()
    grown = -1
    async with TaskRegistry(limit=1) as tasks:
        tasks.spawn(park, release)
        tracemalloc.start()
        try:
            before = 0
            for batch in range(21):
                if batch == 1:  # after a warm-up batch
                    before = tracemalloc.get_traced_memory()[0]
                async with anyio.create_task_group() as group:
                    for _ in range(100):
                        group.start_soon(tasks.spawn_when_free, park, release)
                    await anyio.wait_all_tasks_blocked()
                    group.cancel_scope.cancel()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        release.set()
    assert grown < 200_000, f"{grown} bytes kept by 2,000 waiters that gave up"
    assert tasks.statistics().spawned == 1


async def test_a_task_waiting_in_spawn_when_free_at_shutdown_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a task waiting in spawn_when_free at shutdown was left waiting."""
    release = anyio.Event()

    async def waits_for_room(tasks: TaskRegistry) -> None:
        await tasks.spawn_when_free(park, release)

    waiters: list[tether.Handle[None]] = []
    async with TaskRegistry(limit=2, shutdown_timeout=0) as tasks:
        tasks.spawn(park, release)
        waiters.append(tasks.spawn(waits_for_room, tasks))
        await anyio.wait_all_tasks_blocked()
        assert tasks.statistics().running == 2  # the waiter runs, and waits
    assert waiters[0].status is Status.CANCELLED
    assert tether_records(caplog) == []
