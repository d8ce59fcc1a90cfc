"""The registry's lifecycle: entering, draining, the shutdown deadline, closing,
waiting for idleness, the shutdown log, and introspection."""

# Handles bound inside `async with TaskRegistry()` or `pytest.raises` are checked
# after the block, which pyright takes as possibly unbound: both `__aexit__`s are
# typed `-> bool` (as anyio's task group is), so either may swallow an exception.
# pyright: reportPossiblyUnboundVariable=false

from __future__ import annotations

import gc
import logging

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed, park, parked
from tether import (
    RegistryClosed,
    RegistryState,
    RegistryStatistics,
    Status,
    TaskRegistry,
)

pytestmark = pytest.mark.anyio


async def noop() -> None:
    await anyio.lowlevel.checkpoint()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "tether" and r.levelno == logging.WARNING
    ]


# -- entering ------------------------------------------------------------------------


async def test_spawn_before_entry_names_the_registry_and_state() -> None:
    tasks = TaskRegistry(name="app")
    before = tasks.state
    assert before is RegistryState.NEW
    coro = noop()
    with pytest.raises(RegistryClosed, match=r"'app' is NEW: .*`async with registry:`"):
        tasks.spawn(coro)
    assert closed(coro)  # closed: no "never awaited" warning
    async with tasks:
        assert tasks.state is RegistryState.OPEN
        await tasks.spawn(noop)


async def test_a_registry_is_single_use() -> None:
    async with TaskRegistry(name="app") as tasks:
        with pytest.raises(RegistryClosed, match="'app' is OPEN and was entered again"):
            async with tasks:
                pass  # pragma: no cover
        await tasks.spawn(noop)  # the failed re-entry left it intact
    with pytest.raises(RegistryClosed, match="'app' is CLOSED and was entered again"):
        async with tasks:
            pass  # pragma: no cover


# -- draining ------------------------------------------------------------------------


async def test_draining_waits_for_running_and_queued_tasks() -> None:
    states: list[RegistryState] = []

    async def worker() -> None:
        await anyio.lowlevel.checkpoint()
        states.append(tasks.state)

    async with TaskRegistry(limit=1) as tasks:
        handles = [tasks.spawn(worker) for _ in range(3)]
        assert [h.status for h in handles[1:]] == [Status.QUEUED, Status.QUEUED]
    assert all(h.status is Status.FINISHED for h in handles)
    assert states == [RegistryState.DRAINING] * 3
    assert tasks.state is RegistryState.CLOSED


async def test_own_tasks_and_their_descendants_may_spawn_while_draining() -> None:
    log: list[str] = []

    async def leaf(label: str) -> None:
        await anyio.lowlevel.checkpoint()
        log.append(label)

    async def via_task_group() -> None:
        async with anyio.create_task_group() as tg:
            # A descendant that is not itself a registry task.
            tg.start_soon(lambda: spawn_leaf("grandchild of a task group"))

    async def spawn_leaf(label: str) -> None:
        await anyio.lowlevel.checkpoint()
        tether.spawn(leaf, label)

    async def follow_up() -> None:
        assert tasks.state is RegistryState.DRAINING
        tasks.spawn(leaf, "child")
        tether.spawn(via_task_group)

    async with TaskRegistry() as tasks:
        tasks.spawn(follow_up)
    assert sorted(log) == ["child", "grandchild of a task group"]
    assert tasks.statistics().succeeded == 4


async def test_a_spawn_from_an_unrelated_task_is_refused_while_draining() -> None:
    draining, refused = anyio.Event(), anyio.Event()
    outcomes: list[str] = []

    async def outsider() -> None:
        await draining.wait()
        coro = noop()
        with pytest.raises(RegistryClosed, match=r"'app' is DRAINING: .*own tasks"):
            tasks.spawn(coro)
        assert closed(coro)
        with tasks.bind(), pytest.raises(RegistryClosed, match="DRAINING"):
            tether.spawn(noop)
        outcomes.append("refused")
        refused.set()

    async def own_task() -> None:
        draining.set()
        await refused.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(outsider)
        async with TaskRegistry(name="app") as tasks:
            tasks.spawn(own_task)
    assert outcomes == ["refused"]


async def test_shutdown_timeout_zero_cancels_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Order only, on every backend: a zero deadline leaves no time to wait.
    seen: list[RegistryState] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            seen.append(tasks.state)

    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        handle = tasks.spawn(worker, name="w")
        await anyio.wait_all_tasks_blocked()
    assert seen == [RegistryState.CANCELLING]
    assert handle.status is Status.CANCELLED
    (warning,) = warnings_of(caplog)
    assert (
        warning.getMessage() == "TaskRegistry 'app' cancelled 1 task(s) at shutdown: w"
    )


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
class TestShutdownDeadlineOnTheMockClock:
    """The deadline itself, on trio's mock clock (asyncio has no virtual clock)."""

    async def test_tasks_get_shutdown_timeout_seconds_then_are_cancelled(self) -> None:
        ended: dict[str, tuple[str, float]] = {}

        async def sleeper(label: str, seconds: float) -> None:
            try:
                await anyio.sleep(seconds)
            except anyio.get_cancelled_exc_class():
                ended[label] = ("cancelled", anyio.current_time() - start)
                raise
            ended[label] = ("done", anyio.current_time() - start)

        async def follow_up() -> None:
            await anyio.sleep(1)
            tasks.spawn(sleeper, "follow-up", 100)  # under the same deadline

        start = anyio.current_time()
        async with TaskRegistry(shutdown_timeout=5) as tasks:
            tasks.spawn(sleeper, "quick", 3)
            tasks.spawn(sleeper, "slow", 10)
            tasks.spawn(follow_up)
        assert ended == {
            "quick": ("done", 3),
            "slow": ("cancelled", 5),
            "follow-up": ("cancelled", 5),
        }

    async def test_no_timeout_waits_as_long_as_it_takes(self) -> None:
        async with TaskRegistry() as tasks:
            handle = tasks.spawn(anyio.sleep, 10_000)
        assert handle.status is Status.FINISHED


# -- cancellation of the host and closing ---------------------------------------------


async def test_host_cancelled_while_draining_cancels_all_and_propagates() -> None:
    log: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            log.append(tasks.state.name)

    async def cancel_host() -> None:
        await anyio.wait_all_tasks_blocked()
        assert tasks.state is RegistryState.DRAINING
        host.cancel()

    with anyio.CancelScope() as host:
        async with TaskRegistry() as tasks:
            tasks.spawn(worker)
            tasks.spawn(cancel_host)
    assert host.cancelled_caught
    assert log == ["CANCELLING"]
    assert tasks.state is RegistryState.CLOSED


async def test_leaving_an_idle_registry_in_a_cancelled_host_raises_there() -> None:
    """Leaving the block is a cancellation point even when nothing ran: the idle
    close that skips the drain (issue 27 item 4) still raises the host's
    cancellation from ``__aexit__``, as the drain did."""
    after: list[str] = []
    with anyio.CancelScope() as host:
        host.cancel()
        async with TaskRegistry() as tasks:
            pass
        after.append("after the block")
    assert host.cancelled_caught
    assert after == []
    assert tasks.state is RegistryState.CLOSED


async def test_a_closed_registry_refuses_every_spawn() -> None:
    async with TaskRegistry(name="app", limit=1) as tasks:
        pass
    assert tasks.state is RegistryState.CLOSED
    with pytest.raises(
        RegistryClosed, match=r"'app' is CLOSED: .*Open a new TaskRegistry"
    ):
        tasks.spawn(noop)
    coro = noop()
    with pytest.raises(RegistryClosed, match="'app' is CLOSED"):
        await tasks.spawn_when_free(coro)
    assert closed(coro)


# -- wait_idle -------------------------------------------------------------------------


async def test_wait_idle_waits_for_running_and_queued_without_closing() -> None:
    log: list[int] = []

    async def worker(i: int) -> None:
        await anyio.lowlevel.checkpoint()
        log.append(i)

    async with TaskRegistry(limit=2) as tasks:
        for i in range(5):
            tasks.spawn(worker, i)
        await tasks.wait_idle()
        assert sorted(log) == [0, 1, 2, 3, 4]
        assert tasks.state is RegistryState.OPEN
        assert len(tasks) == 0
        with anyio.CancelScope() as scope:
            scope.cancel()
            await tasks.wait_idle()  # a checkpoint even when idle
        assert scope.cancelled_caught
        await tasks.spawn(worker, 5)
    assert len(log) == 6


async def record_when_idle(tasks: TaskRegistry, record: list[str]) -> None:
    await tasks.wait_idle()
    record.append("idle")


async def test_wait_idle_waits_for_the_work_and_not_for_the_daemons() -> None:
    """Regression: ``wait_idle()`` never returned while a daemon ran (a reader, a
    heartbeat, a service), though daemons do not hold up the drain either. It
    returns once the other tasks have ended; the daemons keep running until the
    registry closes, ``stop="after-drain"`` included."""
    record: list[str] = []
    release = anyio.Event()

    async def worker() -> None:
        await release.wait()
        record.append("worker done")

    async with TaskRegistry() as tasks:
        daemons = [
            tasks.spawn(parked, "heartbeat", record, daemon=True),
            tasks.spawn(parked, "reader", record, daemon=True, stop="after-drain"),
            tasks.spawn_service(parked, "service", record),
        ]
        with anyio.fail_after(10):  # before the fix: never
            await tasks.wait_idle()  # only daemons: at once
        tasks.spawn(worker)

        async with anyio.create_task_group() as group:
            group.start_soon(record_when_idle, tasks, record)
            await anyio.wait_all_tasks_blocked()
            assert record == []
            release.set()
        assert record == ["worker done", "idle"]
        assert [h.status for h in daemons] == [Status.RUNNING] * 3
        assert tasks.state is RegistryState.OPEN
    assert sorted(record[2:]) == [
        "heartbeat cleaned up",
        "reader cleaned up",
        "service cleaned up",
    ]


async def test_a_daemon_may_wait_for_its_registry_to_be_idle() -> None:
    """A supervising daemon waits for the work: the caller is a daemon, so it
    does not keep the registry busy. (A task that is not one is refused.)"""
    record: list[str] = []
    release = anyio.Event()

    async def worker(i: int) -> None:
        await release.wait()
        record.append(f"worker {i}")

    async def supervisor(tasks: TaskRegistry) -> None:
        await tasks.wait_idle()
        record.append("idle")

    async with TaskRegistry() as tasks:
        tasks.spawn(worker, 1)
        tasks.spawn(worker, 2)
        watching = tasks.spawn(supervisor, tasks, daemon=True)
        await anyio.wait_all_tasks_blocked()
        assert record == []
        release.set()
        await watching
    assert sorted(record[:2]) == ["worker 1", "worker 2"]
    assert record[2] == "idle"


async def test_wait_idle_counts_work_queued_behind_a_daemon_s_slot() -> None:
    record: list[str] = []

    async def worker() -> None:
        await anyio.lowlevel.checkpoint()
        record.append("worker done")

    async with TaskRegistry(limit=1) as tasks:
        daemon = tasks.spawn(parked, "daemon", record, daemon=True)
        queued = tasks.spawn(worker)
        assert queued.status is Status.QUEUED

        async with anyio.create_task_group() as group:
            group.start_soon(record_when_idle, tasks, record)
            await anyio.wait_all_tasks_blocked()
            assert record == []  # the queued worker is work still to do
            daemon.cancel()  # frees the slot
        assert record == ["daemon cleaned up", "worker done", "idle"]


async def test_cancelling_wait_idle_cancels_no_task() -> None:
    event = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, event)
        with anyio.move_on_after(0):
            await tasks.wait_idle()
        assert handle.status is Status.RUNNING
        event.set()


async def test_one_idle_waiter_cancelled_leaves_the_others_waiting_and_woken() -> None:
    """The idle waiters (``wait_idle()`` callers and the close's drain) share one
    wakeup; on asyncio each awaits a future of its own, so a waiter cancelled
    while the others wait cancels none of theirs, and the others still wake."""
    event = anyio.Event()
    woken: list[str] = []
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, event)

        async def idle_waiter(label: str, scope: anyio.CancelScope) -> None:
            with scope:
                await tasks.wait_idle()
                woken.append(label)

        first, second = anyio.CancelScope(), anyio.CancelScope()
        async with anyio.create_task_group() as group:
            group.start_soon(idle_waiter, "first", first)
            group.start_soon(idle_waiter, "second", second)
            await anyio.wait_all_tasks_blocked()
            first.cancel()  # while both wait on the same wakeup
            await anyio.wait_all_tasks_blocked()
            assert woken == []
            assert handle.status is Status.RUNNING
            event.set()
        assert woken == ["second"]
        assert first.cancelled_caught


# -- the shutdown log -----------------------------------------------------------


async def test_shutdown_logs_one_warning_with_at_most_20_names(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TaskRegistry(name="app", shutdown_timeout=0, limit=20) as tasks:
        for i in range(25):
            tasks.spawn(park, anyio.Event(), name=f"t{i}")
        await anyio.wait_all_tasks_blocked()
    names = ", ".join(f"t{i}" for i in range(20))
    (warning,) = warnings_of(caplog)
    assert warning.getMessage() == (
        f"TaskRegistry 'app' cancelled 25 task(s) at shutdown: {names} and 5 more"
    )
    debug = [
        r for r in caplog.records if r.name == "tether" and r.levelno == logging.DEBUG
    ]
    assert [r.getMessage() for r in debug] == [
        *(
            f"TaskRegistry 'app' cancels task 't{i}' at shutdown (RUNNING)"
            for i in range(20)
        ),
        *(
            f"TaskRegistry 'app' cancels task 't{i}' at shutdown (QUEUED)"
            for i in range(20, 25)
        ),
    ]


async def test_a_clean_shutdown_logs_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TaskRegistry() as tasks:
        tasks.spawn(noop)
    # At most the INFO that draining started with a task still running.
    assert [
        r for r in caplog.records if r.name == "tether" and r.levelno > logging.INFO
    ] == []


# -- introspection ------------------------------------------------------------------


async def test_len_iter_repr_and_properties() -> None:
    event = anyio.Event()
    tasks = TaskRegistry(name="app", limit=2)
    assert repr(tasks) == "<tether.TaskRegistry 'app' NEW running=0 queued=0 limit=2>"
    async with tasks:
        handles = [tasks.spawn(park, event) for _ in range(3)]
        assert len(tasks) == 3
        assert list(tasks) == handles  # running first, then queued
        assert (
            repr(tasks) == "<tether.TaskRegistry 'app' OPEN running=2 queued=1 limit=2>"
        )
        assert (tasks.name, tasks.limit) == ("app", 2)
        handles[2].cancel()
        assert list(tasks) == handles[:2]
        event.set()
    assert list(tasks) == []
    assert (
        repr(TaskRegistry())
        == "<tether.TaskRegistry 'registry' NEW running=0 queued=0>"
    )
    assert TaskRegistry().limit is None


async def test_a_registry_and_a_pool_are_true_even_when_empty() -> None:
    """A library's ``registry or TaskRegistry()`` swapped the caller's registry for
    a new one while the caller's had no task yet: ``__len__`` made it false."""
    event = anyio.Event()
    given = TaskRegistry()
    assert given
    async with given:
        pool = given.pool("jobs", limit=1)
        assert len(given) == len(pool) == 0
        assert given
        assert pool
        chosen = given or TaskRegistry()
        assert chosen is given
        pool.spawn(park, event)
        assert len(given) == len(pool) == 1
        assert given
        assert pool
        event.set()
    assert given


async def test_statistics_is_a_frozen_record() -> None:
    async with TaskRegistry() as tasks:
        stats = tasks.statistics()
        assert stats == RegistryStatistics(
            spawned=0, queued=0, running=0, succeeded=0, failed=0, cancelled=0
        )
        with pytest.raises(AttributeError):
            stats.spawned = 1  # type: ignore[misc]  # frozen on purpose


# -- the backend, once per event-loop run ----------------------------------------------


def test_each_event_loop_run_makes_its_own_backend_and_its_registries_share_it() -> (
    None
):
    """Issue 27 item 4: the backend object is made at the first registry or gather
    of a run and reused by the rest of that run (making it was half the cost of an
    empty registry), never kept once per process: runs of asyncio, trio, asyncio
    again, one after another in one process, each get the backend of their own
    loop (the later asyncio run's spawn_threadsafe reaches its own loop)."""
    from tether._loop import current_backend

    backends: list[object] = []

    async def one_run() -> None:
        async with TaskRegistry() as first, TaskRegistry() as second:
            await first.spawn(noop)
            await second.spawn(noop)
            await tether.settle_all(first.spawn(noop))
            assert first.backend_ is second.backend_ is current_backend()
            done = anyio.Event()

            async def finish() -> None:
                done.set()

            await anyio.to_thread.run_sync(second.spawn_threadsafe, finish)
            await done.wait()
        backends.append(first.backend_)

    anyio.run(one_run, backend="asyncio")
    anyio.run(one_run, backend="trio")
    anyio.run(one_run, backend="asyncio")
    assert [type(b).__name__ for b in backends] == [
        "AsyncioBackend",
        "TrioBackend",
        "AsyncioBackend",
    ]
    assert backends[0] is not backends[2]


async def test_a_task_calling_its_registrys_wait_idle_is_refused() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a task calling its own registry's wait_idle() deadlocked."""

    async def waits_for_idle(tasks: TaskRegistry) -> None:
        await tasks.wait_idle()

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(waits_for_idle, tasks)
        with pytest.raises(RuntimeError, match=r"called its registry's wait_idle\(\)"):
            await handle


async def test_the_daemons_pools_and_closers_of_a_registry_are_its_own() -> None:
    """Issue 27 item 4: a registry shares one empty, frozen stand-in for its sets
    of daemons and closers and its pools until it has the first of each; the first
    of one registry's is never another's, and closing one leaves the other's."""
    async with TaskRegistry(name="a") as a, TaskRegistry(name="b") as b:
        daemon = a.spawn(anyio.sleep_forever, daemon=True)
        late = a.spawn(anyio.sleep_forever, daemon=True, stop="after-drain")
        a.pool("jobs", limit=1)
        assert a.dump().count("daemon") == 2
        assert "daemon" not in b.dump()
        assert "pool 'jobs'" in a.dump()
        assert "pool" not in b.dump()

        async def close_itself() -> None:
            await b.aclose()  # a closer of b's own

        await b.spawn(close_itself)
        assert b.state is tether.RegistryState.CLOSED
        assert not daemon.done()
        assert not late.done()
    assert daemon.status is tether.Status.CANCELLED
    assert late.status is tether.Status.CANCELLED


# -- the open registries, for dump() ---------------------------------------------------


async def test_a_registry_collected_while_open_leaves_dump() -> None:
    """Issue 27 item 4: the open registries are weak references by id (a WeakSet
    cost an open and close a third of its time): one collected while open warns,
    and leaves the set, so that no later registry with its id is taken for it."""
    registry = TaskRegistry(name="forgotten")
    await registry.open()
    async with TaskRegistry(name="kept"):
        assert "forgotten" in tether.dump()
        # Two statements: the last reference may go at `del` or in a cycle.
        with pytest.warns(ResourceWarning, match="'forgotten' was garbage-collected"):  # noqa: PT031
            del registry
            gc.collect()
        assert "forgotten" not in tether.dump()
        assert "kept" in tether.dump()
    assert tether.dump() == "no open TaskRegistry"
