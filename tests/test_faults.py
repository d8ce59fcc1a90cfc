"""Faults injected into 0.2's features: deadlocks the docs promise end at the
shutdown deadline, cancellations swallowed once, spawns refused while cancelling,
KeyboardInterrupt in a service, timeouts around shields."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import tether
from helpers import closed
from tether import Handle, RegistryClosed, Status, TaskRegistry

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


@pytest.fixture
def scale(backend_name: str) -> float:
    """1 on trio's mock clock; 1/1000 on asyncio, where only order is asserted."""
    return 1.0 if backend_name == "trio" else 0.001


@pytest.mark.mock_clock
async def test_a_task_awaiting_its_own_child_at_limit_1_deadlocks_until_the_deadline(
    backend_name: str, scale: float
) -> None:
    # The documented deadlock: the child waits in the queue for the slot its
    # parent holds while waiting for it. shutdown_timeout still ends it.
    handles: list[Handle[Any]] = []

    async def parent(tasks: TaskRegistry) -> None:
        child = tasks.spawn(anyio.sleep, 0, name="child")
        handles.append(child)
        await child

    body_ended = 0.0
    async with TaskRegistry(limit=1, shutdown_timeout=10 * scale) as tasks:
        handles.append(tasks.spawn(parent, tasks, name="parent"))
        await anyio.wait_all_tasks_blocked()
        assert [h.status for h in handles] == [Status.RUNNING, Status.QUEUED]
        body_ended = anyio.current_time()
    if backend_name == "trio":
        assert anyio.current_time() - body_ended == 10
    # The parent sees its own cancellation, not the child's TaskCancelled: both
    # end CANCELLED, and no failure is reported.
    assert [h.status for h in handles] == [Status.CANCELLED, Status.CANCELLED]


async def test_a_task_that_swallows_a_cancellation_once_is_cancelled_again() -> None:
    swallowed: list[str] = []

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            swallowed.append("once")  # and carries on, as it should not
        await anyio.sleep_forever()  # the scope is still cancelled: raises again

    handles: list[Handle[None]] = []
    async with TaskRegistry(shutdown_timeout=0) as tasks:
        handles.append(tasks.spawn(stubborn))
        await anyio.wait_all_tasks_blocked()
    assert swallowed == ["once"]
    assert handles[0].status is Status.CANCELLED


async def test_a_spawn_from_cleanup_while_cancelling_is_refused_and_closed() -> None:
    refused: list[str] = []
    coros: list[Any] = []

    async def cleanup_spawns() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            coro = anyio.lowlevel.checkpoint()
            coros.append(coro)
            try:
                tether.spawn(coro)
            except RegistryClosed as exc:
                refused.append(str(exc))

    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        tasks.spawn(cleanup_spawns)
        await anyio.wait_all_tasks_blocked()
    assert refused == [
        "TaskRegistry 'app' is CANCELLING: it is cancelling its tasks (a failure in "
        "raise mode, the shutdown deadline, or a cancellation) and takes no new work"
    ]
    assert closed(coros[0])
    assert tasks.statistics().spawned == 1


async def test_a_keyboard_interrupt_in_a_service_is_never_restarted() -> None:
    runs: list[int] = []

    async def interrupted() -> None:
        runs.append(1)
        await anyio.lowlevel.checkpoint()
        raise KeyboardInterrupt

    async def body() -> None:
        async with TaskRegistry() as tasks:
            tasks.spawn_service(interrupted, backoff=0.001)
            await anyio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        await body()
    assert runs == [1]


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_a_timeout_waits_for_a_shield_then_fails() -> None:
    async def shielded() -> str:
        with anyio.CancelScope(shield=True):
            await anyio.sleep(10)  # past the deadline, shielded
        await anyio.lowlevel.checkpoint()  # the deadline's cancellation lands here
        return "never"

    async with TaskRegistry(on_error=lambda h, e: None) as tasks:
        started = anyio.current_time()
        handle = tasks.spawn(shielded, timeout=1)
        await handle.wait()
        assert anyio.current_time() - started == 10
        assert type(handle.exception()) is TimeoutError


@pytest.mark.mock_clock
async def test_start_while_the_registry_shuts_down_raises_task_cancelled(
    scale: float,
) -> None:
    outcome: list[str] = []

    async def never_ready(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.sleep_forever()

    async def starter(tasks: TaskRegistry) -> None:
        try:
            await tasks.start(never_ready)
        except tether.TaskCancelled:
            outcome.append("TaskCancelled")

    async with anyio.create_task_group() as tg:
        tasks = TaskRegistry(shutdown_timeout=scale)
        await tasks.open()
        tg.start_soon(starter, tasks)
        await anyio.wait_all_tasks_blocked()
        await tasks.aclose()
    assert outcome == ["TaskCancelled"]


async def test_a_service_failing_in_raise_mode_only_fails_the_block_when_spent() -> (
    None
):
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        await anyio.lowlevel.checkpoint()
        raise ConnectionError(f"run {len(runs)}")

    async def body() -> None:
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn_service(flaky, max_restarts=2, backoff=0.001)
            await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await body()
    assert [str(e) for e in caught.value.exceptions] == ["run 3"]
    assert len(runs) == 3


# -- found by review: done-callbacks, hooks and services at the edges ------------


async def test_a_done_callback_that_spawns_respects_the_limit_and_the_queue() -> None:
    order: list[str] = []
    peak = [0]

    async def work(tasks: TaskRegistry, name: str) -> None:
        order.append(name)
        peak[0] = max(peak[0], tasks.statistics().running)
        await anyio.lowlevel.checkpoint()

    async with TaskRegistry(limit=2) as tasks:
        first = tasks.spawn(work, tasks, "a")
        tasks.spawn(work, tasks, "b")
        tasks.spawn(work, tasks, "c")  # queued
        tasks.spawn(work, tasks, "d")  # queued
        first.add_done_callback(lambda h: tasks.spawn(work, tasks, "from callback"))
    assert peak[0] <= 2
    assert order[-1] == "from callback"  # behind the tasks already queued


@pytest.mark.parametrize("how", ["body ends", "cancel", "queued then cancel_all"])
async def test_a_service_ended_before_its_first_run_leaves_no_coroutine(
    how: str,
) -> None:
    runs: list[int] = []

    async def consume() -> None:
        runs.append(1)
        await anyio.sleep_forever()

    release = anyio.Event()
    services: list[Handle[None]] = []
    async with TaskRegistry(limit=1) as tasks:
        if how == "queued then cancel_all":
            tasks.spawn(release.wait)
        services.append(tasks.spawn_service(consume))
        if how == "cancel":
            services[0].cancel()
        elif how == "queued then cancel_all":
            tasks.cancel_all()
    # warnings are errors: an un-awaited coroutine would fail the test
    assert services[0].status is Status.CANCELLED
    assert runs == []


async def test_callbacks_a_spawned_hook_adds_to_a_service_are_kept() -> None:
    ended: list[str] = []

    class Tracker(tether.Hooks):
        def spawned(self, handle: Handle[Any], /) -> None:
            handle.add_done_callback(lambda h: ended.append(h.name))

    async def once() -> None:
        await anyio.lowlevel.checkpoint()

    async with TaskRegistry(hooks=Tracker()) as tasks:
        await tasks.spawn_service(once, name="service")
        await tasks.spawn(once, name="plain")
    assert ended == ["service", "plain"]


@pytest.mark.parametrize("where", ["done-callback", "started hook", "ended hook"])
async def test_a_keyboard_interrupt_from_a_callback_or_hook_ends_everything_bare(
    where: str,
) -> None:
    def interrupt(handle: Handle[Any]) -> None:
        raise KeyboardInterrupt

    class Hooks(tether.Hooks):
        def started(self, handle: Handle[Any], /) -> None:
            if where == "started hook":
                interrupt(handle)

        def ended(self, handle: Handle[Any], /) -> None:
            if where == "ended hook":
                interrupt(handle)

    others: list[Handle[Any]] = []

    async def body() -> None:
        async with TaskRegistry(hooks=Hooks()) as tasks:
            others.append(tasks.spawn(anyio.sleep_forever, name="bystander"))
            handle = tasks.spawn(anyio.lowlevel.checkpoint, name="trigger")
            if where == "done-callback":
                handle.add_done_callback(interrupt)
            await anyio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        await body()
    assert others[0].status is Status.CANCELLED


async def test_a_keyboard_interrupt_from_a_callback_added_late_reaches_its_caller() -> (
    None
):
    def interrupt(handle: Handle[Any]) -> None:
        raise KeyboardInterrupt

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(anyio.lowlevel.checkpoint)
        await handle
        with pytest.raises(KeyboardInterrupt):
            handle.add_done_callback(interrupt)  # ended: called at once, here


async def test_the_spawned_hook_comes_before_ended_for_a_daemon_spawned_closing() -> (
    None
):
    calls: list[str] = []

    class Order(tether.Hooks):
        def spawned(self, handle: Handle[Any], /) -> None:
            calls.append(f"spawned {handle.name}")

        def ended(self, handle: Handle[Any], /) -> None:
            calls.append(f"ended {handle.name}")

    release = anyio.Event()

    async def last_words() -> None:
        await release.wait()
        # while draining: a daemon of our own, queued behind us at limit=1, is
        # dropped at once
        tether.spawn(anyio.sleep_forever, name="heartbeat", daemon=True)

    async with TaskRegistry(hooks=Order(), limit=1) as tasks:
        tasks.spawn(last_words, name="worker")
        await anyio.wait_all_tasks_blocked()
        release.set()
    heartbeat = [c for c in calls if c.endswith("heartbeat")]
    assert heartbeat == ["spawned heartbeat", "ended heartbeat"]


async def test_a_service_failing_while_it_is_cancelled_fails_and_is_reported() -> None:
    reported: list[str] = []

    async def converts_cancellation() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            raise ConnectionError("closed while reading") from None

    async with TaskRegistry(on_error=lambda h, e: reported.append(str(e))) as tasks:
        service = tasks.spawn_service(converts_cancellation)
        await anyio.wait_all_tasks_blocked()
        service.cancel()
        await service.wait()
        assert service.status is Status.FAILED
        assert service.restarts == 0
    assert reported == ["closed while reading"]


async def test_a_partial_of_an_async_callable_object_is_a_service() -> None:
    import functools

    class Consumer:
        async def __call__(self, queue: str) -> str:
            await anyio.lowlevel.checkpoint()
            return queue

    async with TaskRegistry() as tasks:
        service = tasks.spawn_service(functools.partial(Consumer(), "jobs"))
        assert await service == "jobs"


async def test_dump_from_a_worker_thread_while_tasks_come_and_go() -> None:
    stop = anyio.Event()

    async def churn(tasks: TaskRegistry) -> None:
        while not stop.is_set():
            tasks.spawn(anyio.lowlevel.checkpoint)
            await anyio.lowlevel.checkpoint()

    def dump_many() -> list[str]:
        return [tether.dump() for _ in range(200)]

    dumps: list[str] = []
    async with TaskRegistry(name="app", debug=True) as tasks:
        tasks.spawn(churn, tasks)
        dumps.extend(await anyio.to_thread.run_sync(dump_many))
        stop.set()
    assert all(d.startswith("TaskRegistry 'app' OPEN for ") for d in dumps)
    assert not any(" -" in d for d in dumps)  # no negative age or duration


async def test_spawn_threadsafe_from_many_threads_during_shutdown() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    spawn_threadsafe from many threads during shutdown could spawn into a closed
    registry or lose a spawn."""
    import concurrent.futures
    import threading

    started = threading.Barrier(9)
    outcomes: list[str] = []
    lock = threading.Lock()

    def hammer(tasks: TaskRegistry) -> None:
        started.wait()
        for _ in range(50):
            try:
                future = tasks.spawn_threadsafe(park_briefly)
            except tether.RegistryClosed:
                with lock:
                    outcomes.append("refused at once")
                continue
            try:
                handle = future.result(timeout=10)
            except tether.RegistryClosed:
                with lock:
                    outcomes.append("refused on the loop")
            else:
                with lock:
                    outcomes.append(f"spawned {handle.name}")

    work: list[concurrent.futures.Future[None]] = []
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        async with TaskRegistry(shutdown_timeout=0) as tasks:
            work += [pool.submit(hammer, tasks) for _ in range(8)]
            await anyio.to_thread.run_sync(started.wait)
            await anyio.lowlevel.checkpoint()
        # The registry closed while the threads kept spawning: they must all get
        # an answer, never hang, and nothing spawned may outlive the registry.
        for future in work:
            await anyio.to_thread.run_sync(future.result, 10)
    assert len(outcomes) == 8 * 50
    assert all(h.done() for h in tasks)
    stats = tasks.statistics()
    assert stats.running == stats.queued == 0
    assert stats.spawned == sum(o.startswith("spawned") for o in outcomes)


async def park_briefly() -> None:
    await anyio.lowlevel.checkpoint()
