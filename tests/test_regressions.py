"""Regressions: each test pins a defect that 0.1 had, found by an adversarial suite
run from outside the project, and fixed while the core was rebuilt."""

from __future__ import annotations

import gc
import sys
import tracemalloc
import weakref
from contextvars import copy_context
from typing import Any, NoReturn

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed, park, tether_records
from tether import Status, TaskRegistry

pytestmark = pytest.mark.anyio


# -- a run_all child is held by tether itself ------------------------------------------


async def test_a_run_all_child_parked_on_a_future_only_it_holds_survives_collection(
    backend_name: str,
) -> None:
    if backend_name == "trio":
        pytest.skip("trio holds its tasks itself: a trio task cannot be collected")
    import asyncio

    futures: weakref.WeakSet[asyncio.Future[str]] = weakref.WeakSet()

    async def orphan() -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        futures.add(future)
        return await future  # nothing but this task refers to the future

    async def collect_then_release() -> str:
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            gc.collect()
        assert len(futures) == 2, "a run_all child was garbage-collected mid-flight"
        # Held by a strong reference of tether's own: a dict whose values hold
        # the task (anyio keeps its tasks in sets and weak mappings only).
        children = [t for t in asyncio.all_tasks() if "orphan" in t.get_name()]
        assert len(children) == 2
        for task in children:
            assert any(
                isinstance(holder, dict) and task in holder.values()
                for holder in gc.get_referrers(task)
            )
        for future in list(futures):
            future.set_result("kept")
        return "collected"

    assert await tether.run_all(orphan(), orphan(), collect_then_release()) == (
        "kept",
        "kept",
        "collected",
    )


# -- cancel() from the wrong thread ----------------------------------------------------


async def test_cancel_from_another_thread_is_refused_before_it_changes_anything() -> (
    None
):
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


# -- a host cancellation reaches the tasks ---------------------------------------------


async def test_a_host_cancelled_as_the_body_ends_cancels_tasks_not_yet_started() -> (
    None
):
    log: list[str] = []

    async def work() -> None:
        log.append("ran")
        await anyio.lowlevel.checkpoint()
        log.append("finished")

    handles: list[tether.Handle[None]] = []
    with anyio.CancelScope() as host:
        async with TaskRegistry() as tasks:
            handles.append(tasks.spawn(work))
            host.cancel()  # the body ends with its host cancelled
    assert host.cancelled_caught
    assert handles[0].status is Status.CANCELLED
    assert log == []


async def test_a_host_cancelled_while_draining_cancels_parked_tasks() -> None:
    release = anyio.Event()
    handles: list[tether.Handle[str]] = []
    with anyio.CancelScope() as host:
        async with TaskRegistry() as tasks:
            handles.append(tasks.spawn(park, release))
            await anyio.wait_all_tasks_blocked()
            host.cancel()
    assert handles[0].status is Status.CANCELLED


# -- the queue keeps only live entries -------------------------------------------------


async def test_cancelled_queued_tasks_do_not_accumulate_in_the_queue() -> None:
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


# -- BaseExceptions are re-raised bare, on every backend -------------------------------


async def test_a_task_raising_generator_exit_is_reraised_bare() -> None:
    async def closes() -> None:
        await anyio.lowlevel.checkpoint()
        raise GeneratorExit

    handles: list[tether.Handle[None]] = []

    async def main() -> None:
        async with TaskRegistry() as tasks:
            handles.append(tasks.spawn(closes))
            await anyio.sleep_forever()

    with pytest.raises(GeneratorExit):
        await main()
    assert handles[0].status is Status.CANCELLED


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
async def test_an_on_error_callback_raising_a_base_exception_is_reraised_bare(
    kind: type[BaseException], caplog: pytest.LogCaptureFixture
) -> None:
    def on_error(handle: tether.Handle[Any], exc: Exception) -> None:
        raise kind

    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    async def main() -> None:
        async with TaskRegistry(on_error=on_error) as tasks:
            tasks.spawn(fails)
            await anyio.sleep_forever()

    with pytest.raises(kind):
        await main()
    # The failure the callback could not handle is still on record.
    assert [r.exc_info[1] for r in tether_records(caplog) if r.exc_info] != []


async def test_an_on_error_callback_returning_a_coroutine_is_closed_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handle_async(exc: Exception) -> None:
        raise AssertionError("never awaited")  # pragma: no cover

    returned: list[Any] = []

    def on_error(handle: tether.Handle[Any], exc: Exception) -> None:
        coro = handle_async(exc)
        returned.append(coro)
        return coro  # type: ignore[return-value]  # the mistake under test

    async def fails() -> None:
        raise ValueError("boom")

    async with TaskRegistry(on_error=on_error) as tasks:
        tasks.spawn(fails)
    assert closed(returned[0])
    assert any("never awaited" in r.getMessage() for r in tether_records(caplog))


# -- contexts and threads --------------------------------------------------------------


async def test_spawn_with_the_context_it_runs_in_counts_nothing_phantom() -> None:
    async def work() -> str:
        await anyio.lowlevel.checkpoint()
        return "ran"

    async with TaskRegistry(shutdown_timeout=0.1) as tasks:
        context = copy_context()
        handle = context.run(lambda: tasks.spawn(work, context=context))
        assert await handle == "ran"
    assert tasks.statistics().succeeded == 1


async def test_spawn_threadsafe_from_a_worker_of_an_own_task_while_draining() -> None:
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


async def test_an_eager_task_factory_set_after_entry_is_held_too(
    backend_name: str,
) -> None:
    if backend_name != "asyncio":
        pytest.skip("task factories are asyncio's; uvloop rejects the eager ones")
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    else:
        import asyncio

        log: list[str] = []

        async def work() -> str:
            log.append("ran")
            await anyio.lowlevel.checkpoint()
            return "done"

        loop = asyncio.get_running_loop()
        with anyio.fail_after(5):
            async with TaskRegistry() as tasks:
                loop.set_task_factory(asyncio.eager_task_factory)
                try:
                    handle = tasks.spawn(work)
                    assert log == []  # never inside spawn
                finally:
                    loop.set_task_factory(None)
                assert await handle == "done"


# -- shutdown cancels a task waiting in spawn_when_free --------------------------------


async def test_a_task_waiting_in_spawn_when_free_at_shutdown_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
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


# -- failures through the gather family are never lost ---------------------------------


async def test_as_completed_over_handles_raises_a_handles_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    async def consume(handles: list[tether.Handle[NoReturn]]) -> None:
        async with tether.as_completed(*handles) as done:
            async for _ in done:
                pass

    async with TaskRegistry() as tasks:
        handles = [tasks.spawn(fails) for _ in range(3)]
        with pytest.raises(ValueError, match="boom") as caught:
            await consume(handles)
        # None lost: each failure is raised, a note on the raised one, or reported
        # by the registry (once; a handle that failed before anyone awaited it is
        # reported as it fails, and a later await still raises it).
        notes: list[str] = getattr(caught.value, "__notes__", [])
        reported = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
        assert len({id(exc) for exc in reported}) == len(reported) <= 3
        assert 1 + len(notes) + len(reported) >= 3


async def test_race_reports_a_failed_handle_when_another_input_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    go, failed = anyio.Event(), anyio.Event()

    async def fails() -> str:
        await go.wait()
        try:
            raise ValueError("lost in the race")
        finally:
            failed.set()

    async def wins() -> str:
        await failed.wait()
        return "won"

    async def starts_the_failure() -> str:
        await anyio.wait_all_tasks_blocked()  # race is awaiting the handle now
        go.set()
        await anyio.sleep_forever()
        raise AssertionError("cancelled by race")  # pragma: no cover

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fails)
        assert await tether.race(handle, wins(), starts_the_failure()) == "won"
    # race received the failure and could not raise it: reported once, then.
    messages = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert [str(m) for m in messages] == ["lost in the race"]


async def test_race_does_not_report_again_what_the_registry_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> str:
        raise ValueError("reported once")

    async def wins() -> str:
        await anyio.wait_all_tasks_blocked()
        return "won"

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fails)
        await handle.wait()  # failed with nobody awaiting: reported now
        assert await tether.race(handle, wins()) == "won"
    messages = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert [str(m) for m in messages] == ["reported once"]


async def test_a_run_all_child_failing_after_the_caller_left_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails_in_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise ValueError("cleanup failed")

    with anyio.CancelScope() as scope:
        scope.cancel()  # cancelled once started: the child fails while cancelled

        async def run() -> None:
            await tether.run_all(fails_in_cleanup())

        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                group.start_soon(run)
                await anyio.wait_all_tasks_blocked()
                group.cancel_scope.cancel()
    logged = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert [str(e) for e in logged] == ["cleanup failed"]


# -- deadlocks that are detected, and failures never dropped ------------------------


async def test_a_task_awaiting_its_own_handle_is_refused() -> None:
    handles: list[tether.Handle[None]] = []

    async def awaits_itself() -> None:
        await anyio.lowlevel.checkpoint()
        await handles[0]

    async with TaskRegistry() as tasks:
        handles.append(tasks.spawn(awaits_itself))
        with pytest.raises(RuntimeError, match="waits for its own handle"):
            await handles[0]


async def test_a_task_calling_its_registrys_wait_idle_is_refused() -> None:
    async def waits_for_idle(tasks: TaskRegistry) -> None:
        await tasks.wait_idle()

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(waits_for_idle, tasks)
        with pytest.raises(RuntimeError, match=r"called its registry's wait_idle\(\)"):
            await handle


async def test_a_failure_superseded_by_a_keyboard_interrupt_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise ValueError("superseded")  # fails in its cleanup

    async def interrupts() -> None:
        await anyio.wait_all_tasks_blocked()
        raise KeyboardInterrupt

    async def main() -> None:
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(fails)
            tasks.spawn(interrupts)
            await anyio.sleep_forever()

    with pytest.raises(KeyboardInterrupt):
        await main()
    logged = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert [str(e) for e in logged] == ["superseded"]


# -- faults: threads spawning while the registry shuts down ----------------------------


async def test_spawn_threadsafe_from_many_threads_during_shutdown() -> None:
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
