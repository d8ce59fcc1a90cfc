"""The task handle: outcomes, status, names, repr and debug information."""

# Handles bound inside `async with TaskRegistry()` or `pytest.raises` are checked
# after the block, which pyright takes as possibly unbound: both `__aexit__`s are
# typed `-> bool` (as anyio's task group is), so either may swallow an exception.
# pyright: reportPossiblyUnboundVariable=false

from __future__ import annotations

import functools
import inspect
import sys
import traceback
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import double, park, tether_records
from tether import Status, TaskCancelled, TaskNotFinished, TaskRegistry

pytestmark = pytest.mark.anyio


class Boom(ValueError):
    pass


async def fail_with(exc: BaseException) -> None:
    await anyio.lowlevel.checkpoint()
    raise exc


async def test_await_returns_the_result() -> None:
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(double, 21)
        assert await handle == 42
        assert handle.result() == 42
        assert handle.exception() is None
        assert await handle == 42  # a second await returns the same result


async def test_await_raises_the_tasks_own_exception_with_its_traceback() -> None:
    raised = Boom("no")
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fail_with, raised)
        try:
            await handle
        except ValueError as exc:  # `except SomeError:` keeps working
            caught: BaseException = exc
        else:  # pragma: no cover
            pytest.fail("await handle did not raise")
        assert caught is raised
        frames = [frame.name for frame in traceback.extract_tb(caught.__traceback__)]
        assert "fail_with" in frames
        assert handle.exception() is raised
        with pytest.raises(Boom) as info:
            handle.result()
        assert info.value is raised


async def test_cancelled_task_raises_task_cancelled_everywhere() -> None:
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, anyio.Event())
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        with pytest.raises(TaskCancelled, match="'park' was cancelled"):
            await handle
        with pytest.raises(TaskCancelled):
            handle.result()
        with pytest.raises(TaskCancelled):
            handle.exception()
        # Never the backend's own cancellation exception, which must not cross tasks.
        with pytest.raises(anyio.TaskCancelled):
            await handle
        assert handle.status is Status.CANCELLED


async def test_result_and_exception_before_the_end_raise_task_not_finished() -> None:
    event = anyio.Event()
    async with TaskRegistry(limit=1) as tasks:
        running = tasks.spawn(park, event)
        queued = tasks.spawn(park, event)
        for handle in (running, queued):
            with pytest.raises(TaskNotFinished, match="await the handle"):
                handle.result()
            with pytest.raises(TaskNotFinished, match=r"await handle\.wait\(\)"):
                handle.exception()
            with pytest.raises(anyio.TaskNotFinished):
                handle.result()
        event.set()
        assert await running == await queued == "released"


async def test_cancelling_the_awaiter_does_not_cancel_the_task() -> None:
    event = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, event)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await handle
        assert scope.cancelled_caught
        with anyio.move_on_after(0):
            await handle
        assert handle.status is Status.RUNNING
        event.set()
        assert await handle == "released"


async def test_await_on_an_ended_task_is_not_a_checkpoint() -> None:
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(double, 1)
        await handle
        with anyio.CancelScope() as scope:
            scope.cancel()
            assert await handle == 2  # returns at once, as a done asyncio Task does
        assert not scope.cancelled_caught


async def test_status_and_done_follow_the_task() -> None:
    gate, release = anyio.Event(), anyio.Event()
    statuses: list[Status] = []

    async def worker() -> None:
        statuses.append(me.status)
        gate.set()
        await release.wait()

    async with TaskRegistry(limit=1) as tasks:
        me = tasks.spawn(worker)
        queued = tasks.spawn(park, release)
        assert (me.status, queued.status) == (Status.RUNNING, Status.QUEUED)
        assert not me.done()
        assert not queued.done()
        await gate.wait()
        release.set()
        await me
        assert me.done()
        assert me.status is Status.FINISHED
        await queued
        assert queued.status is Status.FINISHED
    assert statuses == [Status.RUNNING]


async def test_cancel_moves_through_cancelling_to_cancelled() -> None:
    seen: list[Status] = []

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            seen.append(handle.status)

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(stubborn)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        assert (handle.status, handle.done()) == (Status.CANCELLING, False)
        handle.cancel()  # idempotent
        await handle.wait()
        assert handle.status is Status.CANCELLED
        assert handle.done()
        handle.cancel()  # a no-op on an ended task
        assert handle.status is Status.CANCELLED
    assert seen == [Status.CANCELLING]


async def test_failed_status_and_wait_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fail_with, Boom("x"))
        await handle.wait()  # does not raise
        assert handle.status is Status.FAILED
        assert handle.done()
        await handle.wait()  # and again, on an ended task
        with pytest.raises(Boom):
            await handle
    # wait() never receives a failure: it was reported as it came.
    [record] = tether_records(caplog)
    assert record.getMessage() == "Task 'fail_with' of TaskRegistry 'registry' failed"


async def test_name_defaults_to_the_qualname() -> None:
    class Service:
        async def run(self) -> None:
            await anyio.lowlevel.checkpoint()

    async with TaskRegistry() as tasks:
        assert tasks.spawn(double, 1).name == "double"
        assert tasks.spawn(Service().run).name.endswith("Service.run")
        assert tasks.spawn(double(2)).name == "double"  # a coroutine's qualname
        assert tasks.spawn(functools.partial(double, 3)).name == "double"
        assert tasks.spawn(double, 4, name="custom").name == "custom"
        assert tether.spawn(double, 5).name == "double"


async def test_repr_shows_name_status_and_outcome() -> None:
    event = anyio.Event()
    async with TaskRegistry() as tasks:
        running = tasks.spawn(park, event, name="job")
        assert repr(running) == "<tether.Handle 'job' RUNNING>"
        event.set()
        await running
        assert repr(running) == "<tether.Handle 'job' FINISHED result='released'>"
        failed = tasks.spawn(fail_with, Boom("bad"), name="f")
        with pytest.raises(Boom):
            await failed
        assert repr(failed) == "<tether.Handle 'f' FAILED exception=Boom('bad')>"
        cancelled = tasks.spawn(park, anyio.Event(), name="c")
        cancelled.cancel()
        await cancelled.wait()
        assert repr(cancelled) == "<tether.Handle 'c' CANCELLED>"


async def test_debug_records_where_the_task_was_spawned() -> None:
    async with TaskRegistry(debug=True) as tasks:
        line = inspect.stack(0)[0].lineno + 1
        handle = tasks.spawn(double, 1)
        ambient = tether.spawn(double, 2)
        await handle
        await ambient
    assert handle.spawned_at == f"{__file__}:{line}"
    assert ambient.spawned_at == f"{__file__}:{line + 1}"
    assert f"spawned_at={__file__}:{line}" in repr(handle)
    async with TaskRegistry() as tasks:
        assert tasks.spawn(double, 1).spawned_at is None


# -- cancelled from a signal handler (#21 item 2) -------------------------------------

SIGNAL_PROGRAM = Path(__file__).with_name("cancel_on_signal.py")


def _wait_until_asleep(pid: int) -> None:
    """Return once the process sleeps in the kernel (after ``ready``, that is its
    loop in its selector), so that the signal finds it there and not between two
    steps of a task; where /proc does not say (not Linux), at once."""
    import time

    stat = Path(f"/proc/{pid}/stat")
    for _ in range(2000):  # a bound for a process that never sleeps, not a timing
        try:
            state = stat.read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return
        if state == "S":
            return
        time.sleep(0.005)


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.parametrize("how", ["handle", "registry"])
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_cancel_from_a_signal_handler_wakes_the_sleeping_loop(
    backend: str, how: str
) -> None:
    """``handle.cancel()`` or ``tasks.cancel_all()`` from a ``signal.signal`` handler
    lands at once (#21 item 2: it took effect only when some timer or I/O woke the
    loop, 16.4 s in a CLI, up to the longest sleep: asyncio's ``call_soon`` from a
    handler does not wake a loop asleep in its selector)."""
    import signal
    import subprocess

    process = subprocess.Popen(
        [sys.executable, str(SIGNAL_PROGRAM), backend, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        _wait_until_asleep(process.pid)
        process.send_signal(signal.SIGINT)
        # A hang guard, not a timing assertion: the task sleeps 60 s otherwise.
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{backend}, {how}: the cancellation did not wake the loop")
    assert (out, process.returncode) == ("cancelled\n", 0), err


def test_cancel_all_of_a_registry_never_entered_does_nothing() -> None:
    """With nothing to cancel there is no loop to wake: ``cancel_all()`` outside any
    loop, on a registry never entered, stays a no-op."""
    tasks = TaskRegistry()
    tasks.cancel_all()
    assert tasks.statistics().spawned == 0


async def test_a_task_awaiting_its_own_handle_is_refused() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a task awaiting its own handle deadlocked."""
    handles: list[tether.Handle[None]] = []

    async def awaits_itself() -> None:
        await anyio.lowlevel.checkpoint()
        await handles[0]

    async with TaskRegistry() as tasks:
        handles.append(tasks.spawn(awaits_itself))
        with pytest.raises(RuntimeError, match="waits for its own handle"):
            await handles[0]
