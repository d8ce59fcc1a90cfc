"""Pools: limits per kind of work inside one registry (issue 27, item 3), and
``spawn_when_room``, which waits for room in a bounded queue as aiojobs' ``spawn``
does."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed, double, park, parked, tether_records
from tether import (
    Handle,
    Pool,
    RegistryClosed,
    RegistryFull,
    Status,
    TaskCancelled,
    TaskRegistry,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.anyio


def check_sum(stats: tether.RegistryStatistics) -> None:
    assert stats.spawned == (
        stats.queued + stats.running + stats.succeeded + stats.failed + stats.cancelled
    )


# -- the scenario ------------------------------------------------------------


async def test_the_follow_ups_of_a_pool_s_jobs_do_not_wait_behind_its_queue() -> None:
    """Issue 27: with one registry-wide ``limit=2``, the start notifications of
    jobs 0 and 1 (spawned by the jobs) queued behind jobs 2 and 3 and arrived
    after all four had finished. With the jobs in a pool of two, a job's
    ``tether.spawn`` goes to the registry: both notifications arrive while jobs
    0 and 1 still run and 2 and 3 wait. (Were they queued behind the jobs, the
    wait below would never end.)"""
    notified: list[int] = []
    both = anyio.Event()
    release = anyio.Event()

    async def notify(i: int) -> None:
        notified.append(i)
        if len(notified) == 2:
            both.set()

    async def job(i: int) -> None:
        tether.spawn(notify, i, name=f"notify {i}")
        await release.wait()

    tasks = TaskRegistry(name="app")
    jobs = tasks.pool("jobs", limit=2)
    handles: list[Handle[None]] = []
    async with tasks:
        handles += [jobs.spawn(job, i, name=f"job {i}") for i in range(4)]
        with anyio.fail_after(10):
            await both.wait()
        assert sorted(notified) == [0, 1]
        assert [h.status for h in handles] == [Status.RUNNING] * 2 + [Status.QUEUED] * 2
        release.set()
    assert sorted(notified) == [0, 1, 2, 3]
    assert all(h.status is Status.FINISHED for h in handles)


async def test_at_most_limit_tasks_of_a_pool_run_and_the_rest_start_in_order(
    backend_name: str,
) -> None:
    in_flight = peak = 0
    started: list[int] = []

    async def worker(i: int) -> None:
        nonlocal in_flight, peak
        started.append(i)
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        in_flight -= 1

    tasks = TaskRegistry()
    pool = tasks.pool("work", limit=3)
    async with tasks:
        for i in range(12):
            pool.spawn(worker, i)
            check_sum(pool.statistics())
            check_sum(tasks.statistics())
        assert pool.statistics().running == 3
        assert pool.statistics().queued == 9
        assert len(pool) == len(tasks) == 12
    assert peak == 3
    if backend_name != "trio":  # trio shuffles tasks that wake together
        assert started == list(range(12))
    assert pool.statistics().succeeded == 12
    assert tasks.statistics().succeeded == 12


async def test_pools_are_independent_and_the_registry_itself_has_no_limit() -> None:
    release = anyio.Event()
    async with TaskRegistry() as tasks:
        scans = tasks.pool("scan", limit=1)
        exports = tasks.pool("export", limit=2)
        s = [scans.spawn(park, release) for _ in range(2)]
        e = [exports.spawn(park, release) for _ in range(3)]
        loose = [tasks.spawn(park, release) for _ in range(5)]
        await anyio.wait_all_tasks_blocked()
        assert [h.status for h in s] == [Status.RUNNING, Status.QUEUED]
        assert [h.status for h in e] == [Status.RUNNING] * 2 + [Status.QUEUED]
        assert all(h.status is Status.RUNNING for h in loose)
        stats = tasks.statistics()
        assert (stats.running, stats.queued) == (8, 2)
        release.set()
    assert tasks.statistics().succeeded == 10


async def test_a_pool_s_queue_is_bounded_by_max_pending() -> None:
    release = anyio.Event()
    async with TaskRegistry(name="app") as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=1)
        pool.spawn(park, release)
        pool.spawn(park, release)
        coro = park(release)
        with pytest.raises(RegistryFull) as caught:
            pool.spawn(coro, name="third")
        assert str(caught.value) == (
            "pool 'jobs' of TaskRegistry 'app' has all 1 slots busy and 1 tasks "
            "queued (max_pending=1); task 'third' was not spawned. Wait for a slot "
            "with `await pool.spawn_when_free(fn, *args)`, or for room in the queue "
            "with `await pool.spawn_when_room(fn, *args)`, or raise max_pending"
        )
        assert closed(coro)
        check_sum(tasks.statistics())
        release.set()


# -- one lifetime, one policy -------------------------------------------------------


async def test_closing_drains_a_pool_s_queued_tasks_too() -> None:
    done: list[int] = []

    async def worker(i: int) -> None:
        await anyio.lowlevel.checkpoint()
        done.append(i)

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1)
        for i in range(4):
            pool.spawn(worker, i)
    assert sorted(done) == [0, 1, 2, 3]


@pytest.mark.mock_clock
async def test_at_the_deadline_a_pool_s_queued_tasks_are_dropped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record: list[str] = []
    coros: list[Any] = []
    tasks = TaskRegistry(name="app", shutdown_timeout=0.01)
    pool = tasks.pool("jobs", limit=1)
    running: list[Handle[None]] = []
    async with tasks:
        running.append(pool.spawn(parked, "first", record, name="first"))
        for _ in range(2):
            coro = parked("never", record)
            coros.append(coro)
            pool.spawn(coro, name="queued")
    assert record == ["first cleaned up"]
    assert running[0].status is Status.CANCELLED
    assert all(closed(c) for c in coros)
    stats, own = tasks.statistics(), pool.statistics()
    assert (stats.cancelled, own.cancelled, own.queued, own.running) == (3, 3, 0, 0)
    [warning] = [
        r for r in tether_records(caplog, logging.WARNING) if "at shutdown" in r.msg
    ]
    assert "first" in warning.getMessage()
    assert "queued x2" in warning.getMessage()


async def test_a_pool_task_s_failure_goes_to_the_registry_s_on_error() -> None:
    seen: list[tuple[str, str]] = []

    def report(handle: Handle[Any], exc: Exception) -> None:
        seen.append((handle.name, str(exc)))

    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    async with TaskRegistry(on_error=report) as tasks:
        tasks.pool("jobs", limit=1).spawn(fail, name="job")
    assert seen == [("job", "boom")]


async def test_a_pool_task_s_failure_in_raise_mode_ends_the_block() -> None:
    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    release = anyio.Event()
    tasks = TaskRegistry(on_error="raise")
    pool = tasks.pool("jobs", limit=1)

    async def body() -> None:
        async with tasks:
            pool.spawn(fail)
            queued.append(pool.spawn(park, release))
            await anyio.sleep_forever()

    queued: list[Handle[str]] = []
    with pytest.raises(ExceptionGroup) as caught:
        await body()
    assert [type(e) for e in caught.value.exceptions] == [ValueError]
    assert queued[0].status is Status.CANCELLED


@pytest.mark.mock_clock
async def test_hooks_and_daemons_and_timeouts_work_in_a_pool() -> None:
    events: list[str] = []

    class Hooks(tether.Hooks):
        def spawned(self, handle: Handle[Any], /) -> None:
            events.append(f"spawned {handle.name}")

        def started(self, handle: Handle[Any], /) -> None:
            events.append(f"started {handle.name}")

        def ended(self, handle: Handle[Any], /) -> None:
            events.append(f"ended {handle.name} {handle.status.name}")

    record: list[str] = []
    tasks = TaskRegistry(hooks=Hooks(), on_error=lambda h, e: None)
    pool = tasks.pool("jobs", limit=2)
    async with tasks:
        pool.spawn(parked, "daemon", record, name="daemon", daemon=True)
        slow = pool.spawn(anyio.sleep_forever, name="slow", timeout=0.01)
        await slow.wait()
        assert isinstance(slow.exception(), TimeoutError)
    assert record == ["daemon cleaned up"]
    assert events[:2] == ["spawned daemon", "spawned slow"]
    assert sorted(events[2:4]) == ["started daemon", "started slow"]
    assert sorted(events[4:]) == ["ended daemon CANCELLED", "ended slow FAILED"]


async def test_wait_idle_waits_for_a_pool_s_queue() -> None:
    done: list[int] = []

    async def worker(i: int) -> None:
        await anyio.lowlevel.checkpoint()
        done.append(i)

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1)
        for i in range(3):
            pool.spawn(worker, i)
        await tasks.wait_idle()
        assert sorted(done) == [0, 1, 2]
        assert len(tasks) == len(pool) == 0


async def test_a_queued_pool_task_cancelled_is_dropped_and_cancel_all_empties() -> None:
    release = anyio.Event()
    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1)
        first = pool.spawn(park, release)
        coro = park(release)
        second = pool.spawn(coro)
        third = pool.spawn(park, release)
        second.cancel()
        assert second.status is Status.CANCELLED
        assert closed(coro)
        assert list(pool) == [first, third]
        tasks.cancel_all()
        await first.wait()
        assert third.status is Status.CANCELLED
        assert len(pool) == 0
        after = pool.spawn(park, release)  # the registry and pool stay open
        release.set()
        assert await after == "released"
        with pytest.raises(TaskCancelled):
            await second


async def test_dump_names_each_pool_and_its_tasks() -> None:
    release = anyio.Event()
    async with TaskRegistry(name="app") as tasks:
        pool = tasks.pool("jobs", limit=1)
        pool.spawn(park, release, name="scan")
        pool.spawn(park, release, name="scan")
        tasks.spawn(park, release, name="notify")
        await anyio.wait_all_tasks_blocked()
        lines = tasks.dump().splitlines()
        assert lines[0].startswith("TaskRegistry 'app' OPEN for ")
        assert lines[0].endswith(
            ": 2 running, 1 queued; pool 'jobs': 1 running, 1 queued (limit 1)"
        )
        assert sorted(line.split(":")[0][4:] for line in lines[1:]) == [
            "notify RUNNING",
            "scan QUEUED, pool 'jobs'",
            "scan RUNNING, pool 'jobs'",
        ]
        assert repr(pool) == "<tether.Pool 'jobs' of 'app' running=1 queued=1 limit=1>"
        release.set()


# -- making a pool --------------------------------------------------------------------


async def test_a_pool_made_before_the_registry_opens_takes_work_once_it_does() -> None:
    tasks = TaskRegistry(name="app")
    pool = tasks.pool("jobs", limit=1, max_pending=5)
    assert (pool.name, pool.limit, pool.max_pending, pool.registry) == (
        "jobs",
        1,
        5,
        tasks,
    )
    coro = park(anyio.Event())
    with pytest.raises(RegistryClosed, match="'app' is NEW"):
        pool.spawn(coro)
    assert closed(coro)
    async with tasks:
        assert await pool.spawn(tether.run_all) == ()
    with pytest.raises(RegistryClosed, match="'app' is CLOSED"):
        tasks.pool("late", limit=1)


async def test_pool_refuses_what_does_not_fit() -> None:
    tasks = TaskRegistry(name="app")
    tasks.pool("jobs", limit=1)
    with pytest.raises(ValueError, match="has a pool named 'jobs' already"):
        tasks.pool("jobs", limit=2)
    with pytest.raises(TypeError, match=r"name must be a str"):
        tasks.pool(3, limit=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        tasks.pool("none", limit=0)
    with pytest.raises(TypeError, match="limit must be a whole number"):
        tasks.pool("half", limit=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending"):
        tasks.pool("neg", limit=1, max_pending=-1)
    limited = TaskRegistry(name="capped", limit=4)
    with pytest.raises(ValueError, match="has a limit of its own") as caught:
        limited.pool("jobs", limit=2)
    assert str(caught.value) == (
        "TaskRegistry.pool('jobs'): TaskRegistry 'capped' has a limit of its own "
        "(limit=4), which counts every task in it, the pools' and their follow-up "
        "work included. Make the registry without a limit and give each kind of "
        "work a pool: registry.pool('jobs', limit=2)"
    )
    async with tasks:
        assert isinstance(tasks.pool("more", limit=1), Pool)


# -- waiting for a slot, or for room in the queue ------------------------------------


async def test_spawn_when_free_into_a_pool_waits_for_its_slot() -> None:
    release = anyio.Event()
    order: list[str] = []

    async def waiter(pool: Pool) -> None:
        handle = await pool.spawn_when_free(park, release)
        order.append(f"spawned {handle.status.name}")

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1)
        first = pool.spawn(park, release)
        tasks.spawn(waiter, pool)
        await anyio.wait_all_tasks_blocked()
        assert order == []
        assert pool.statistics().queued == 0  # it waits, not its task
        first.cancel()
        await first.wait()
        await anyio.wait_all_tasks_blocked()
        assert order == ["spawned RUNNING"]
        release.set()


@pytest.mark.parametrize("in_pool", [False, True], ids=["registry", "pool"])
async def test_spawn_when_room_waits_while_the_queue_is_full_and_keeps_its_place(
    in_pool: bool, backend_name: str
) -> None:
    """aiojobs' ``spawn`` waits while its pending queue is full; so does
    ``spawn_when_room``, FIFO. The place a queued task frees is the first
    waiter's: a plain spawn in between is refused."""
    release = anyio.Event()
    order: list[str] = []

    async with (
        TaskRegistry(name="waiters") as waiters,
        TaskRegistry(
            name="app",
            limit=None if in_pool else 1,
            max_pending=None if in_pool else 1,
        ) as tasks,
    ):
        target: TaskRegistry | Pool = (
            tasks.pool("jobs", limit=1, max_pending=1) if in_pool else tasks
        )
        first = target.spawn(park, release)
        target.spawn(park, release)  # fills the queue

        async def waiter(i: int) -> None:
            handle = await target.spawn_when_room(park, release, name=f"w{i}")
            order.append(f"w{i} {handle.status.name}")

        waiters.spawn(waiter, 1)
        await anyio.wait_all_tasks_blocked()
        waiters.spawn(waiter, 2)
        await anyio.wait_all_tasks_blocked()
        assert order == []
        first.cancel()  # the queued task starts: one place frees, for w1
        coro = park(release)
        with pytest.raises(RegistryFull):
            target.spawn(coro)  # the place is w1's
        assert closed(coro)
        await anyio.wait_all_tasks_blocked()
        assert order == ["w1 QUEUED"]
        release.set()
    assert order == ["w1 QUEUED", "w2 QUEUED"]
    assert tasks.statistics().succeeded == 3


async def test_spawn_when_room_spawns_at_once_when_there_is_room() -> None:
    release = anyio.Event()
    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=1)
        running = await pool.spawn_when_room(park, release)
        queued = await pool.spawn_when_room(park, release)
        unbounded = await tasks.spawn_when_room(park, release)
        assert [running.status, queued.status, unbounded.status] == [
            Status.RUNNING,
            Status.QUEUED,
            Status.RUNNING,
        ]
        release.set()


async def test_spawn_when_room_with_max_pending_zero_waits_for_a_slot() -> None:
    release = anyio.Event()
    spawned: list[Handle[str]] = []

    async def waiter(pool: Pool) -> None:
        spawned.append(await pool.spawn_when_room(park, release))

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=0)
        first = pool.spawn(park, release)
        tasks.spawn(waiter, pool)
        await anyio.wait_all_tasks_blocked()
        assert spawned == []
        first.cancel()
        await anyio.wait_all_tasks_blocked()
        assert [h.status for h in spawned] == [Status.RUNNING]
        release.set()


async def test_a_cancelled_room_waiter_spawns_nothing_and_hands_on_its_place() -> None:
    release = anyio.Event()
    coros: list[Any] = []
    got: list[Handle[str]] = []

    async def waiter(pool: Pool, keep: bool) -> None:
        coro = park(release)
        coros.append(coro)
        handle = await pool.spawn_when_room(coro)
        if keep:
            got.append(handle)

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=1)
        first = pool.spawn(park, release)
        pool.spawn(park, release)
        gone = tasks.spawn(waiter, pool, False)
        await anyio.wait_all_tasks_blocked()
        tasks.spawn(waiter, pool, True)
        await anyio.wait_all_tasks_blocked()
        gone.cancel()
        await gone.wait()
        assert closed(coros[0])
        first.cancel()
        await anyio.wait_all_tasks_blocked()
        assert [h.status for h in got] == [Status.QUEUED]
        release.set()


async def test_closing_wakes_room_waiters_with_registry_closed() -> None:
    release = anyio.Event()
    outcome: list[str] = []
    coros: list[Any] = []

    async def waiter(pool: Pool) -> None:
        coro = park(release)
        coros.append(coro)
        try:
            await pool.spawn_when_room(coro)
        except RegistryClosed as exc:
            outcome.append(str(exc).split(":")[0])

    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=1)
        pool.spawn(park, release)
        pool.spawn(park, release)
        outside = TaskRegistry(name="outside")
        async with outside:
            outside.spawn(waiter, pool)
            await anyio.wait_all_tasks_blocked()
            tasks.cancel_all()  # frees the place: the waiter spawns
            await anyio.wait_all_tasks_blocked()
            pool.spawn(park, release)  # busy again, and the queue full
            outside.spawn(waiter, pool)
            await anyio.wait_all_tasks_blocked()
            await tasks.aclose()
    assert outcome == ["TaskRegistry 'app' is CANCELLING"]
    assert closed(coros[1])


async def test_a_room_waiter_cancelled_as_it_is_granted_hands_its_place_on() -> None:
    release = anyio.Event()
    coros: list[Any] = []
    got: list[str] = []

    async def waiter(pool: Pool, name: str) -> None:
        coro = park(release)
        coros.append(coro)
        handle = await pool.spawn_when_room(coro, name=name)
        got.append(f"{name} {handle.status.name}")

    async with TaskRegistry() as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=1)
        pool.spawn(park, release)
        queued = pool.spawn(park, release)
        first = tasks.spawn(waiter, pool, "a")
        await anyio.wait_all_tasks_blocked()
        tasks.spawn(waiter, pool, "b")
        await anyio.wait_all_tasks_blocked()
        first.cancel()  # "a" is cancelled, and before it sees it...
        queued.cancel()  # ...it is granted the place this frees: it hands it on
        await anyio.wait_all_tasks_blocked()
        assert got == ["b QUEUED"]
        assert closed(coros[0])
        release.set()


async def test_a_room_waiter_cancelled_as_the_registry_closes_leaves_quietly() -> None:
    """Regression: a room waiter that closing had taken out of the line, and that
    was cancelled before it woke, was looked for in the line again (ValueError)."""
    release = anyio.Event()
    waiting: list[Handle[None]] = []
    outcome: list[str] = []

    class CancelTheWaiter(tether.Hooks):
        def ended(self, handle: Handle[Any], /) -> None:
            if handle.name == "queued" and waiting:
                waiting[0].cancel()  # closing has taken the waiter out already

    async def waiter(pool: Pool) -> None:
        try:
            await pool.spawn_when_room(park, release)
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise

    tasks = TaskRegistry(name="app", shutdown_timeout=0, hooks=CancelTheWaiter())
    pool = tasks.pool("jobs", limit=1, max_pending=1)
    async with TaskRegistry(name="outside") as outside:
        async with tasks:
            pool.spawn(park, release)
            pool.spawn(park, release, name="queued")
            waiting.append(outside.spawn(waiter, pool))
            await anyio.wait_all_tasks_blocked()
        await waiting[0].wait()
    assert waiting[0].status is Status.CANCELLED
    assert len(outcome) == 1


async def test_a_pool_takes_stop_as_every_spawn_form_does() -> None:
    """A pool's daemon can be kept through the drain (``stop="after-drain"``): it
    runs until the registry's other tasks have ended, then is cancelled."""
    record: list[str] = []
    release = anyio.Event()
    tasks = TaskRegistry()
    pool = tasks.pool("readers", limit=2)
    coro = park(release)
    with pytest.raises(ValueError, match="without daemon=True"):
        pool.spawn(coro, stop="after-drain")
    assert closed(coro)

    async def worker() -> None:
        await anyio.lowlevel.checkpoint()
        record.append("worker done")

    async with tasks:
        await pool.spawn_when_room(
            parked, "reader", record, daemon=True, stop="after-drain"
        )
        tasks.spawn(worker)
    assert record == ["worker done", "reader cleaned up"]


# -- offering work: try_spawn -----------------------------------------------------


async def test_a_pool_s_try_spawn_spawns_while_open_and_drops_once_closing_begins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As the registry's ``try_spawn``: taken (started or queued in the pool)
    while the registry is open, dropped with ``None`` once closing has begun,
    counted in the pool's and the registry's ``dropped``."""
    caplog.set_level(logging.DEBUG, logger="tether")
    tasks = TaskRegistry(name="app")
    pool = tasks.pool("jobs", limit=1)
    coro = double(1)
    with pytest.raises(RegistryClosed, match="'app' is NEW"):  # a misuse
        pool.try_spawn(coro)
    assert closed(coro)
    release = anyio.Event()
    async with tasks:
        running = pool.try_spawn(park, release)
        queued = pool.try_spawn(park, release, name="queued")
        assert running is not None
        assert queued is not None
        assert [running.status, queued.status] == [Status.RUNNING, Status.QUEUED]
        release.set()
        assert await queued == "released"
    coro = double(2)
    assert pool.try_spawn(coro) is None
    assert closed(coro)
    assert pool.try_spawn(double, 3, name="late") is None
    own, stats = pool.statistics(), tasks.statistics()
    assert (own.spawned, own.succeeded, own.dropped) == (2, 2, 2)
    assert (stats.spawned, stats.dropped) == (2, 2)
    drops = [r.getMessage() for r in tether_records(caplog, logging.DEBUG)]
    assert drops[-1] == (
        "TaskRegistry 'app' is CLOSED: try_spawn() of pool 'jobs' dropped task 'late'"
    )


async def test_a_pool_s_try_spawn_from_the_draining_registry_s_own_task_drops() -> None:
    """A reader feeding the pool while its registry drains is not fed more work:
    ``spawn`` from a task of the registry would take it as follow-up work."""
    results: list[object] = []

    async def reader(pool: Pool) -> None:
        await anyio.lowlevel.checkpoint()  # the body has ended: draining
        results.append(pool.try_spawn(double, 1))
        results.append(await pool.spawn(double, 2))  # follow-up work: taken

    tasks = TaskRegistry()
    pool = tasks.pool("jobs", limit=1)
    async with tasks:
        tasks.spawn(reader, pool)
    assert results == [None, 4]
    assert pool.statistics().dropped == 1


async def test_a_full_pool_s_try_spawn_raises_registry_full_not_none() -> None:
    """``None`` says only that the registry is closing; a full queue raises as
    ``spawn`` does (as ``put_nowait`` raises ``QueueFull``): the reader decides
    whether to shed the work or wait for room."""
    release = anyio.Event()
    async with TaskRegistry(name="app") as tasks:
        pool = tasks.pool("jobs", limit=1, max_pending=0)
        pool.spawn(park, release)
        coro = park(release)
        with pytest.raises(RegistryFull, match=r"^pool 'jobs' of TaskRegistry 'app'"):
            pool.try_spawn(coro)
        assert closed(coro)
        assert (pool.statistics().dropped, tasks.statistics().dropped) == (0, 0)
        release.set()


def refuse_misuse(pool: Pool) -> None:
    with pytest.raises(TypeError, match=r"^try_spawn\(\) got keyword arguments"):
        pool.try_spawn(double, x=1)  # type: ignore[call-overload]
    coro = double(1)
    with pytest.raises(ValueError, match=r"^try_spawn\(\.\.\., stop="):
        pool.try_spawn(coro, stop="after-drain")
    assert closed(coro)


async def test_a_pool_s_try_spawn_refuses_misuse_when_open_or_closed() -> None:
    tasks = TaskRegistry()
    pool = tasks.pool("jobs", limit=1)
    async with tasks:
        refuse_misuse(pool)
    refuse_misuse(pool)
    assert (pool.statistics().spawned, pool.statistics().dropped) == (0, 0)


async def test_a_pool_s_spawn_from_another_thread_names_its_threadsafe_form() -> None:
    async with TaskRegistry(name="app") as tasks:
        pool = tasks.pool("jobs", limit=1)

        def in_thread() -> str:
            coro = double(1)
            with pytest.raises(RuntimeError) as caught:
                pool.try_spawn(coro)
            assert closed(coro)
            return str(caught.value)

        message = await anyio.to_thread.run_sync(in_thread)
        assert message == (
            "Pool.try_spawn() of pool 'jobs' of registry 'app' was called outside "
            "its event loop's thread. From another thread, use "
            "pool.spawn_threadsafe(fn, *args)"
        )


# -- from another thread: spawn_threadsafe -----------------------------------------


async def test_a_pool_s_spawn_threadsafe_spawns_into_the_pool_from_a_thread() -> None:
    release = anyio.Event()
    tasks = TaskRegistry()
    pool = tasks.pool("jobs", limit=1, max_pending=1)
    async with tasks:

        def in_thread() -> list[Handle[str]]:
            return [pool.spawn_threadsafe(park, release).result() for _ in range(2)]

        running, queued = await anyio.to_thread.run_sync(in_thread)
        assert [running.status, queued.status] == [Status.RUNNING, Status.QUEUED]
        assert list(pool) == [running, queued]

        def full() -> BaseException | None:
            coro = park(release)
            future = pool.spawn_threadsafe(coro, name="third")
            exc = future.exception()
            assert closed(coro)
            return exc

        exc = await anyio.to_thread.run_sync(full)
        assert isinstance(exc, RegistryFull)
        assert "pool 'jobs'" in str(exc)
        release.set()
    assert pool.statistics().succeeded == 2


async def test_a_pool_s_spawn_threadsafe_on_the_loop_thread_names_pool_spawn() -> None:
    tasks = TaskRegistry()
    pool = tasks.pool("jobs", limit=1)
    async with tasks:
        coro = double(1)
        with pytest.raises(RuntimeError, match=r"use pool\.spawn\(fn, \*args\) there"):
            pool.spawn_threadsafe(coro)
        assert closed(coro)
    with pytest.raises(RegistryClosed, match="is CLOSED"):
        await anyio.to_thread.run_sync(lambda: pool.spawn_threadsafe(double, 1))


# -- the type ---------------------------------------------------------------------


async def test_a_pool_is_made_by_its_registry_only() -> None:
    """Regression: ``tether.Pool(...)`` made a pool the registry did not know
    (its close, ``statistics()`` and ``dump()`` missed its tasks), past
    ``pool()``'s checks."""
    tasks = TaskRegistry()
    makes: list[Callable[[], object]] = [
        lambda: Pool(),
        lambda: Pool(tasks, "jobs", 2, None),
        lambda: Pool(tasks, "jobs", limit=2),
    ]
    for make in makes:
        with pytest.raises(TypeError) as caught:
            make()
        assert str(caught.value) == (
            "tether.Pool is not constructed directly: make a pool with "
            'registry.pool("name", limit=N), which registers it with the '
            "registry whose tasks it limits"
        )
    assert isinstance(tasks.pool("jobs", limit=2), Pool)
