"""A registry that fits real programs: open()/aclose() across tasks, private
registries, daemon tasks, what closing logs, and the teaching errors newcomers hit."""

from __future__ import annotations

import gc
import logging
import os
import sys
import sysconfig
from typing import Any, NoReturn

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import tether
from helpers import closed, park, tether_records
from tether import RegistryClosed, RegistryState, Status, TaskRegistry
from tether._dump import suspended_at

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def state_of(registry: TaskRegistry) -> RegistryState:
    """Read the state afresh (type checkers keep a narrowed attribute)."""
    return registry.state


# -- a client object: start() opens, close() closes, from any task -------------------


class Client:
    """A client in the shape of discord.py's: start() and close() are separate
    methods, and a "terminate" event handled in one of its own tasks closes it."""

    def __init__(self) -> None:
        self.tasks = TaskRegistry(name="client", shutdown_timeout=5)
        self.received: list[str] = []
        self.stopped = anyio.Event()

    async def start(self) -> None:
        await self.tasks.open()

    def dispatch(self, event: str) -> tether.Handle[None]:
        return self.tasks.spawn(self._handle, event, name=f"on_{event}")

    async def _handle(self, event: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.received.append(event)
        if event == "terminate":
            await self.close()  # from one of the registry's own tasks
            self.stopped.set()

    async def close(self) -> None:
        await self.tasks.aclose()


async def test_a_client_closes_itself_from_one_of_its_own_tasks() -> None:
    client = Client()
    await client.start()
    release = anyio.Event()
    slow = client.tasks.spawn(park, release, name="slow")
    client.dispatch("message")
    terminate = client.dispatch("terminate")
    await anyio.wait_all_tasks_blocked()
    # The terminate handler waits for every task but itself: `slow` still runs.
    assert state_of(client.tasks) is RegistryState.DRAINING
    assert not terminate.done()
    release.set()
    await client.stopped.wait()
    assert state_of(client.tasks) is RegistryState.CLOSED
    assert await slow == "released"
    await terminate
    assert sorted(client.received) == ["message", "terminate"]
    await client.close()  # once more, from outside: it is closed, returns at once


async def test_open_in_one_task_and_aclose_in_another() -> None:
    registry = TaskRegistry(name="service")
    release = anyio.Event()
    handles: list[tether.Handle[str]] = []

    async def starts() -> None:
        await registry.open()
        handles.append(registry.spawn(park, release))

    async def stops() -> None:
        release.set()
        await registry.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(starts)
    async with anyio.create_task_group() as group:
        group.start_soon(stops)
    assert registry.state is RegistryState.CLOSED
    assert await handles[0] == "released"


async def test_open_binds_nothing() -> None:
    registry = TaskRegistry()
    await registry.open()
    try:
        with pytest.raises(tether.NoRegistry):
            tether.current_registry()
        with registry.bind():
            assert tether.current_registry() is registry
    finally:
        await registry.aclose()


async def test_a_second_aclose_during_a_slow_drain_cancels_at_once() -> None:
    registry = TaskRegistry(name="server")  # no shutdown_timeout: drains forever
    await registry.open()
    handle = registry.spawn(park, anyio.Event())
    async with anyio.create_task_group() as group:
        group.start_soon(registry.aclose)  # the first Ctrl+C: drain
        await anyio.wait_all_tasks_blocked()
        assert state_of(registry) is RegistryState.DRAINING
        await registry.aclose()  # the second: cancel, and wait for the close
        assert state_of(registry) is RegistryState.CLOSED
    assert handle.status is Status.CANCELLED


async def test_two_own_tasks_closing_at_once_both_end() -> None:
    """Regression (issue 19): the second closer, one of the registry's own tasks,
    waited for the close, which waited for it: the loop could never end."""
    registry = TaskRegistry(name="bot", shutdown_timeout=5)
    await registry.open()

    async def terminate() -> None:
        await anyio.lowlevel.checkpoint()
        await registry.aclose()

    first = registry.spawn(terminate, name="first")
    second = registry.spawn(terminate, name="second")
    await first.wait()
    await second.wait()
    assert state_of(registry) is RegistryState.CLOSED
    # The first to close is spared, and returns; the other escalated, which cancels
    # every task but the closer, so it sees its cancellation after its wait. (On
    # trio either may run first.)
    assert sorted(h.status.name for h in (first, second)) == ["CANCELLED", "FINISHED"]
    assert registry.statistics().running == 0
    await registry.aclose()  # from outside, once more: closed, returns at once


async def test_an_own_task_closing_during_an_outside_drain_ends() -> None:
    """Regression (issue 19): an own task calling aclose() while an outside aclose()
    drains escalates, waits for every task but itself, and ends."""
    registry = TaskRegistry(name="server")  # no deadline: only escalation ends it
    await registry.open()
    go = anyio.Event()
    parked = registry.spawn(park, anyio.Event(), name="parked")

    async def terminate() -> None:
        await go.wait()
        await registry.aclose()

    closer = registry.spawn(terminate, name="terminate")
    async with anyio.create_task_group() as group:
        group.start_soon(registry.aclose)
        await anyio.wait_all_tasks_blocked()
        assert state_of(registry) is RegistryState.DRAINING
        go.set()
    assert state_of(registry) is RegistryState.CLOSED
    assert parked.status is Status.CANCELLED
    assert closer.status is Status.CANCELLED


async def test_aclose_in_a_finally_during_shutdown_returns() -> None:
    """Regression (issue 19): a task's `finally:` calling aclose() while the registry
    cancels it waited for its own end."""
    record: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await registry.aclose()
            record.append("closed in finally")

    handles: list[tether.Handle[None]] = []
    async with TaskRegistry(name="app") as registry:
        handles.append(registry.spawn(worker))
        await anyio.wait_all_tasks_blocked()
        registry.cancel_all()
    assert record == ["closed in finally"]
    assert handles[0].status is Status.CANCELLED


async def test_aclose_in_a_cancelled_finally_raises_the_cancellation_again() -> None:
    """aclose() is a checkpoint: unshielded in a cancelled task's `finally:`, it
    closes the registry and then raises the task's cancellation, as any await."""
    after: list[str] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            await registry.aclose()
            after.append("unreachable")  # pragma: no cover

    handles: list[tether.Handle[None]] = []
    async with TaskRegistry(name="app", shutdown_timeout=0.001) as registry:
        handles.append(registry.spawn(worker))
    assert after == []
    assert handles[0].status is Status.CANCELLED


async def test_the_block_waits_for_the_task_that_closed_it() -> None:
    """Leaving the block never leaves a task running: the own task that closed the
    registry goes on after aclose() returns, and the block waits for it."""
    record: list[str] = []

    closed_it = anyio.Event()
    go_on = anyio.Event()

    async def terminate() -> None:
        await registry.aclose()
        closed_it.set()
        await go_on.wait()  # not cancelled: it is the closer, and goes on
        record.append("terminate returned")

    handles: list[tether.Handle[None]] = []
    async with TaskRegistry(name="app") as registry:
        handles.append(registry.spawn(terminate))
        await closed_it.wait()
        assert state_of(registry) is RegistryState.CLOSED
        go_on.set()  # leaving the block must still wait for terminate to return
    assert record == ["terminate returned"]
    assert handles[0].status is Status.FINISHED


async def test_raise_mode_a_closer_failing_after_its_close_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression (issue 19): in raise mode, the task that closed the registry and
    then failed ended FAILED, neither raised nor logged. With no block left to
    raise it, the failure is reported as in log mode."""
    registry = TaskRegistry(name="bot", on_error="raise")
    await registry.open()

    async def terminate() -> None:
        await registry.aclose()
        raise ValueError("after the close")

    handle = registry.spawn(terminate, name="terminate")
    await handle.wait()
    assert handle.status is Status.FAILED
    [record] = tether_records(caplog)
    assert record.getMessage() == (
        "Task 'terminate' of TaskRegistry 'bot' failed after the registry had closed"
    )
    assert record.exc_info is not None
    assert record.exc_info[1] is handle.exception()
    assert record.tether_registry == "bot"  # type: ignore[attr-defined]
    assert record.tether_task == "terminate"  # type: ignore[attr-defined]
    await registry.aclose()


async def test_raise_mode_a_closer_failing_after_its_close_is_raised_by_the_block() -> (
    None
):
    """Regression (issue 19): inside a block, the block still to leave raises it."""
    failure = ValueError("after the close")
    closed_it = anyio.Event()

    async def terminate() -> None:
        await registry.aclose()
        closed_it.set()
        await anyio.lowlevel.checkpoint()
        raise failure

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as registry:
            registry.spawn(terminate)
            await closed_it.wait()
    assert info.value.exceptions == (failure,)


async def test_aclose_in_the_body_closes_and_the_body_runs_on() -> None:
    """Decision (issue 19): aclose() in the body closed the registry and cancelled
    the body, whose rest was skipped silently at its next checkpoint. Closing
    does not cancel the body: it runs on, its spawns raise RegistryClosed, and
    leaving the block waits for nothing more."""
    record: list[str] = []
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(park, anyio.Event(), name="parked")
        await anyio.wait_all_tasks_blocked()
        tasks.cancel_all()
        await tasks.aclose()
        await anyio.lowlevel.checkpoint()  # the body is not cancelled
        record.append("the body ran on")
        with pytest.raises(RegistryClosed, match="'app' is CLOSED"):
            tasks.spawn(park, anyio.Event())
        assert handle.status is Status.CANCELLED
    assert record == ["the body ran on"]


async def test_aclose_from_a_task_leaves_the_body_running() -> None:
    """Decision (issue 19): a task of the block that closes the registry (a
    "terminate" handler) does not cancel the body either; a failure in raise
    mode, or a KeyboardInterrupt, still does."""
    record: list[str] = []
    closed_it = anyio.Event()

    async def terminate() -> None:
        await tasks.aclose()
        closed_it.set()

    async with TaskRegistry(name="app") as tasks:
        tasks.spawn(terminate)
        await closed_it.wait()
        await anyio.lowlevel.checkpoint()
        record.append("the body ran on")
    assert record == ["the body ran on"]


async def test_aclose_raises_what_the_block_would() -> None:
    async def fails() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    registry = TaskRegistry(on_error="raise")
    await registry.open()
    registry.spawn(fails)
    with pytest.raises(ExceptionGroup) as info:
        await registry.aclose()
    assert [str(e) for e in info.value.exceptions] == ["boom"]
    with pytest.raises(RegistryClosed, match="CLOSED"):
        registry.spawn(fails)


async def test_a_registry_is_opened_once() -> None:
    registry = TaskRegistry(name="app")
    await registry.open()
    with pytest.raises(RegistryClosed, match="'app' is OPEN and was entered again"):
        await registry.open()
    await registry.aclose()


async def test_aclose_of_a_registry_never_opened_closes_it() -> None:
    registry = TaskRegistry()
    await registry.aclose()
    assert registry.state is RegistryState.CLOSED
    with pytest.raises(RegistryClosed, match="CLOSED"):
        await registry.open()


async def test_a_registry_never_opened_closes_twice_and_refuses_start() -> None:
    """Regression (issue 19): a second aclose() of a registry never opened, and a
    start() after it, raised AttributeError (it has no backend)."""

    async def ready(*, task_status: anyio.abc.TaskStatus[int]) -> None:
        task_status.started(1)  # pragma: no cover - refused before it runs

    registry = TaskRegistry(name="never")
    await registry.aclose()
    await registry.aclose()
    assert registry.state is RegistryState.CLOSED
    with pytest.raises(RegistryClosed, match="'never' is CLOSED"):
        await registry.start(ready)
    with pytest.raises(RegistryClosed, match="'never' is NEW"):
        await TaskRegistry(name="never").start(ready)
    # Its neighbours, never opened either: refused the same way, or harmless.
    with pytest.raises(RegistryClosed, match="'never' is CLOSED"):
        await registry.spawn_when_free(anyio.sleep, 0)
    with pytest.raises(RegistryClosed, match="'never' is CLOSED"):
        registry.spawn_service(anyio.sleep, 0)
    registry.cancel_all()
    await registry.wait_idle()
    assert registry.dump() == "TaskRegistry 'never' CLOSED: 0 running, 0 queued"


async def test_a_registry_collected_while_open_warns() -> None:
    async def open_and_forget() -> None:
        registry = TaskRegistry(name="forgotten")
        await registry.open()

    with pytest.warns(ResourceWarning, match="'forgotten' was garbage-collected"):
        await open_and_forget()
    gc.collect()


# -- ambient or private ---------------------------------------------------------------


async def test_a_private_registry_binds_nothing_and_its_tasks_keep_the_apps() -> None:
    seen: list[TaskRegistry] = []

    async def handler() -> None:
        seen.append(tether.current_registry())
        tether.spawn(anyio.lowlevel.checkpoint)  # goes to the app's registry

    library = TaskRegistry(name="library", ambient=False)
    async with TaskRegistry(name="app") as app:
        async with library:
            assert tether.current_registry() is app  # the library leaked nothing
            await library.spawn(handler)
        await app.wait_idle()
    assert seen == [app]
    assert app.statistics().spawned == 1
    assert library.statistics().spawned == 1


async def test_a_private_registry_with_its_own_context_gives_the_openers_ambient() -> (
    None
):
    """Decision (issue 19): `ambient=False` with `context="registry"`: the task runs
    in a copy of the context the registry was opened in, ambient registry
    included, so it sees the registry bound where the library was started, not
    the one bound where it was spawned (and never the private one)."""
    seen: list[str] = []

    async def handler() -> None:
        seen.append(tether.current_registry().name)

    library = TaskRegistry(name="library", ambient=False, context="registry")
    async with TaskRegistry(name="app") as app:
        await library.open()  # started by the app: the app is bound here
        request = TaskRegistry(name="request")
        await request.open()
        with request.bind():  # a request handler spawns into the library
            handle = library.spawn(handler)
        await handle
        await library.aclose()
        await request.aclose()
    assert seen == [app.name]


async def test_a_task_sees_the_registry_that_owns_it_as_ambient() -> None:
    seen: list[str] = []

    async def job() -> None:
        seen.append(tether.current_registry().name)

    async with TaskRegistry(name="outer"):
        owner = TaskRegistry(name="owner")
        await owner.open()
        await owner.spawn(job)  # spawned from a context where "outer" is bound
        await owner.aclose()
    other = TaskRegistry(name="other", ambient=True)
    await other.open()
    await other.spawn(job)  # spawned from a context where nothing is bound
    await other.aclose()
    assert seen == ["owner", "other"]


# -- daemon tasks ---------------------------------------------------------------------


async def test_a_daemon_is_cancelled_as_soon_as_closing_begins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []

    async def consumer() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            order.append("consumer cancelled")

    async def send_email(daemon: tether.Handle[None]) -> None:
        await daemon.wait()  # runs on until the daemon is gone
        order.append("email sent")

    async with TaskRegistry(name="app") as tasks:
        daemon = tasks.spawn(consumer, daemon=True)
        email = tasks.spawn(send_email, daemon)
        await anyio.wait_all_tasks_blocked()
        assert order == []
    assert order == ["consumer cancelled", "email sent"]
    assert [h.status for h in tasks] == []  # nothing left behind
    assert daemon.status is Status.CANCELLED  # pyright: ignore[reportPossiblyUnboundVariable]
    assert email.status is Status.FINISHED  # pyright: ignore[reportPossiblyUnboundVariable]
    assert [
        r for r in tether_records(caplog, logging.INFO) if r.levelno >= logging.WARNING
    ] == []


async def test_daemon_on_every_spawn_form(backend_name: str) -> None:
    del backend_name  # on every backend
    daemons: list[tether.Handle[Any]] = []

    async with TaskRegistry(limit=10) as tasks:
        daemons.append(tether.spawn(anyio.sleep_forever, daemon=True))
        daemons.append(await tasks.spawn_when_free(anyio.sleep_forever, daemon=True))

        def in_thread() -> tether.Handle[Any]:
            return tasks.spawn_threadsafe(anyio.sleep_forever, daemon=True).result()

        daemons.append(await anyio.to_thread.run_sync(in_thread))
        await anyio.wait_all_tasks_blocked()
    assert [h.status for h in daemons] == [Status.CANCELLED] * 3


async def test_a_daemon_spawned_while_draining_never_runs() -> None:
    ran: list[str] = []

    async def late() -> None:
        ran.append("late")  # pragma: no cover - cancelled before its first step

    async def follow_up(tasks: TaskRegistry) -> tether.Handle[None]:
        await anyio.lowlevel.checkpoint()  # the body has ended: draining
        return tasks.spawn(late, daemon=True)

    handles: list[tether.Handle[tether.Handle[None]]] = []
    async with TaskRegistry() as tasks:
        handles.append(tasks.spawn(follow_up, tasks))
    assert (await handles[0]).status is Status.CANCELLED
    assert ran == []


# -- what closing logs ----------------------------------------------------------------


async def test_draining_logs_one_info_with_names_grouped_and_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = anyio.Event()

    async def release_soon() -> None:
        await anyio.lowlevel.checkpoint()
        release.set()

    async with TaskRegistry(name="app", shutdown_timeout=10) as tasks:
        for _ in range(3):
            tasks.spawn(park, release, name="send_email")
        tasks.spawn(park, release, name="flush")
        await anyio.wait_all_tasks_blocked()
        tasks.spawn(release_soon, name="release")
    (info,) = [
        r for r in tether_records(caplog, logging.INFO) if r.levelno == logging.INFO
    ]
    assert info.getMessage() == (
        "TaskRegistry 'app' is draining 5 task(s) (send_email x3, flush, release), "
        "for at most 10 s before it cancels them"
    )
    assert info.tether_registry == "app"  # type: ignore[attr-defined]
    assert info.tether_task is None  # type: ignore[attr-defined]


async def test_a_drain_with_no_time_says_it_cancels_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 27: a drain with no time (``shutdown_timeout=0``, or the remainder
    tether.aiohttp's ``drain="on-shutdown"`` gives once it has passed) says what
    happens, not "for at most 0 s"."""
    release = anyio.Event()
    handles: list[tether.Handle[str]] = []
    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        handles.append(tasks.spawn(park, release, name="job"))
    (info,) = [
        r for r in tether_records(caplog, logging.INFO) if r.levelno == logging.INFO
    ]
    assert info.getMessage() == (
        "TaskRegistry 'app' is draining 1 task(s) (job), with no time left to "
        "drain: it cancels them at once"
    )
    assert handles[0].status is Status.CANCELLED


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_a_long_shutdown_warns_every_5_s_naming_where_tasks_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(12)  # cleanup that takes 12 s

    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        tasks.spawn(stubborn)
        await anyio.wait_all_tasks_blocked()
    warnings = [r.getMessage() for r in tether_records(caplog, logging.WARNING)]
    assert len(warnings) == 3  # at 5 s, at 10 s, then what shutdown cancelled
    assert warnings[0].startswith(
        "TaskRegistry 'app' has been cancelling its tasks for 5 s; still running: "
        "test_a_long_shutdown_warns_every_5_s_naming_where_tasks_wait.<locals>."
        "stubborn (suspended at "
    )
    assert "for 10 s" in warnings[1]
    assert warnings[2] == "TaskRegistry 'app' cancelled 1 task(s) at shutdown: " + (
        "test_a_long_shutdown_warns_every_5_s_naming_where_tasks_wait.<locals>.stubborn"
    )


async def test_a_long_drain_warns_on_every_backend_then_ends_when_the_task_does(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The drain's WARNING comes from a timer of the loop on asyncio (issue 27
    item 4: an anyio scope with a deadline cost a short drain a quarter of its
    time) and from a deadline on trio. Here the interval is a hundredth of a
    second, and the task waits for the WARNING itself: no time is asserted."""
    monkeypatch.setattr("tether._registry.STILL_WAITING_EVERY", 0.01)
    warned = anyio.Event()

    class Warned(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "has been draining" in record.getMessage():
                warned.set()

    async def slow() -> None:
        await warned.wait()

    handler = Warned(logging.WARNING)
    logging.getLogger("tether").addHandler(handler)
    handles: list[tether.Handle[None]] = []
    try:
        async with TaskRegistry(name="app") as tasks:
            handles.append(tasks.spawn(slow, name="slow"))
    finally:
        logging.getLogger("tether").removeHandler(handler)
    assert handles[0].status is Status.FINISHED
    [first, *_] = tether_records(caplog, logging.WARNING)
    assert first.getMessage().startswith(
        "TaskRegistry 'app' has been draining for 0 s; still running: slow "
        "(suspended at "
    )


@pytest.mark.mock_clock
async def test_drains_at_once_share_the_loop_s_timer_and_each_keeps_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On asyncio the drains of a run share one timer of the loop (issue 27 item
    4). Registry ``a`` drains first, its next WARNING an hour away; ``b`` drains
    next with a deadline of a hundredth of a second, which must still cut it (the
    shared timer is armed again, earlier); its task's cleanup then lets ``a``'s
    task finish."""
    monkeypatch.setattr("tether._registry.STILL_WAITING_EVERY", 3600.0)
    released = anyio.Event()
    handles: list[tether.Handle[None]] = []

    async def waits_for_b() -> None:
        await released.wait()

    async def stuck() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            released.set()

    async def drain_a() -> None:
        async with TaskRegistry(name="a") as a:
            handles.append(a.spawn(waits_for_b))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(drain_a)
            await anyio.wait_all_tasks_blocked()  # a drains, its timer armed
            async with TaskRegistry(name="b", shutdown_timeout=0.01) as b:
                handles.append(b.spawn(stuck))
    assert [h.status for h in handles] == [Status.FINISHED, Status.CANCELLED]


async def wait_for_reply(reply: anyio.Event) -> None:
    """The application's own frame, above the library's."""
    await reply.wait()


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_the_long_shutdown_warning_names_the_apps_own_frame_and_debug_the_chain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression (issue 27): the WARNING named the innermost frame, a library's
    (``Event.wait (asyncio/locks.py:213)``), which told the reader nothing."""

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(7):
                await wait_for_reply(anyio.Event())  # a reply that never comes

    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        tasks.spawn(stubborn, name="stubborn")
        await anyio.wait_all_tasks_blocked()
    warning = tether_records(caplog, logging.WARNING)[0].getMessage()
    assert warning.startswith(
        "TaskRegistry 'app' has been cancelling its tasks for 5 s; still running: "
        "stubborn (suspended at wait_for_reply ("
    )
    assert "test_lifetime.py:" in warning
    [chain] = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tether" and "is suspended at" in r.getMessage()
    ]
    assert chain.startswith("TaskRegistry 'app': task 'stubborn' is suspended at ")
    assert "stubborn (" in chain  # 3.10 has no qualified names
    assert " > wait_for_reply (" in chain
    inner = chain.split(" > wait_for_reply (", 1)[1]
    assert "anyio" in inner  # the library's frames too, at DEBUG


async def test_suspended_at_names_the_innermost_frame_of_the_app_not_the_library() -> (
    None
):
    coros: list[object] = []

    async def parked(reply: anyio.Event) -> None:
        coros.append(anyio.get_current_task().coro)
        await wait_for_reply(reply)

    reply = anyio.Event()
    where = ""
    async with TaskRegistry() as tasks:
        tasks.spawn(parked, reply)
        await anyio.wait_all_tasks_blocked()
        where = suspended_at(coros[0])
        reply.set()
    assert where.startswith("wait_for_reply (")
    assert "test_lifetime.py:" in where
    assert suspended_at(None) == "not started"


async def test_suspended_at_names_the_apps_frame_not_an_installed_packages() -> None:
    """Regression (issue 27 item 5): a task waiting in an installed package (an
    HTTP client's internals, under site-packages) was said to wait there, not at
    the application's line that called it. The package's frame is made here by
    compiling its code under a file name in site-packages."""
    purelib = sysconfig.get_paths()["purelib"]
    source = "async def get(reply):\n    await reply.wait()\n"
    namespace: dict[str, Any] = {}
    filename = os.path.join(purelib, "someclient", "connection.py")
    exec(compile(source, filename, "exec"), namespace)
    get = namespace["get"]
    coros: list[object] = []

    async def fetch(reply: anyio.Event) -> None:
        coros.append(anyio.get_current_task().coro)
        await get(reply)  # the application's own line

    reply = anyio.Event()
    where = ""
    async with TaskRegistry() as tasks:
        tasks.spawn(fetch, reply)
        await anyio.wait_all_tasks_blocked()
        where = suspended_at(coros[0])
        reply.set()
    assert where.split(" (")[0].endswith("fetch")  # 3.10 has no qualified names
    assert "test_lifetime.py:" in where


async def test_the_shutdown_warning_groups_names_and_gives_spawn_sites(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TaskRegistry(name="app", shutdown_timeout=0, debug=True) as tasks:
        for _ in range(2):
            tasks.spawn(park, anyio.Event(), name="job")  # the same line twice
        await anyio.wait_all_tasks_blocked()
    (warning,) = tether_records(caplog, logging.WARNING)
    message = warning.getMessage()
    assert message.startswith(
        "TaskRegistry 'app' cancelled 2 task(s) at shutdown: job ("
    )
    assert message.endswith(") x2")
    assert "test_lifetime.py:" in message


async def test_the_shutdown_warning_names_plain_and_pooled_tasks_alike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Plain tasks are counted by name without a call each; a pool's tasks, which
    carry an annex, by the same names (no spawn site without ``debug=True``)."""
    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        jobs = tasks.pool("jobs", limit=1)
        for _ in range(3):
            tasks.spawn(park, anyio.Event(), name="plain")
        jobs.spawn(park, anyio.Event(), name="pooled")
        jobs.spawn(park, anyio.Event(), name="pooled")  # queued in the pool
        await anyio.wait_all_tasks_blocked()
    (warning,) = tether_records(caplog, logging.WARNING)
    assert warning.getMessage() == (
        "TaskRegistry 'app' cancelled 5 task(s) at shutdown: plain x3, pooled x2"
    )


async def test_the_shutdown_warning_lists_equal_counts_in_spawn_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Names cancelled as often as each other are listed in the order they were
    first spawned, whatever the hash seed (a regression: counting a few names
    through a set listed them in the set's order)."""
    names = ["fox", "ant", "emu", "cat", "bee", "dog"]
    async with TaskRegistry(name="app", shutdown_timeout=0) as tasks:
        for name in [*names, "yak", "yak"]:
            tasks.spawn(park, anyio.Event(), name=name)
        await anyio.wait_all_tasks_blocked()
    (warning,) = tether_records(caplog, logging.WARNING)
    assert warning.getMessage() == (
        "TaskRegistry 'app' cancelled 8 task(s) at shutdown: yak x2, "
        + ", ".join(names)
    )


# -- teaching errors ------------------------------------------------------------------


async def send(user_id: int, *, retries: int = 3) -> int:
    return user_id + retries  # pragma: no cover


async def test_a_keyword_argument_to_spawn_shows_partial() -> None:
    async with TaskRegistry() as tasks:
        lesson = r"spawn\(functools\.partial\(send, retries=\.\.\.\)\)"
        with pytest.raises(TypeError, match=lesson):
            tasks.spawn(send, 1, retries=5)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match=r"functools\.partial"):
            tether.spawn(send, 1, retries=5)  # type: ignore[call-overload]
        assert len(tasks) == 0


async def test_a_coroutine_that_already_ran_is_refused_at_the_spawn() -> None:
    async def job() -> int:
        return 1

    coro = job()
    assert await coro == 1
    async with TaskRegistry() as tasks:
        with pytest.raises(
            TypeError, match="has already run: a coroutine runs only once"
        ):
            tasks.spawn(coro)
        fresh = job()
        fresh.close()
        with pytest.raises(TypeError, match="has already run"):
            tasks.spawn(fresh)
        assert closed(fresh)
        assert tasks.statistics().spawned == 0


def test_exceptions_are_shown_as_tether_names() -> None:
    assert repr(tether.NoRegistry("x")) == "NoRegistry('x')"
    assert f"{tether.NoRegistry.__module__}.{tether.NoRegistry.__qualname__}" == (
        "tether.NoRegistry"
    )


async def test_a_lambda_is_a_run_all_input() -> None:
    async def fetch(i: int) -> int:
        await anyio.lowlevel.checkpoint()
        return i * 10

    assert await tether.run_all(*(lambda i=i: fetch(i) for i in range(3))) == (
        0,
        10,
        20,
    )


@pytest.mark.tether_no_leaks(allow=["left"])  # left open on purpose
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_registry_still_open_when_its_event_loop_ends_warns(backend: str) -> None:
    name = "trio" if backend == "trio" else "asyncio"
    options: dict[str, Any] = {"use_uvloop": True} if backend == "uvloop" else {}
    if name == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("Python 3.10's tasks do not count cancellation requests")
    kept: list[TaskRegistry] = []

    async def main() -> None:
        registry = TaskRegistry(name="left")
        await registry.open()
        registry.spawn(anyio.sleep_forever, name="forever")
        kept.append(registry)  # alive past the loop: only the loop's end tells
        await anyio.wait_all_tasks_blocked()

    with pytest.warns(ResourceWarning, match="'left' was still open when its event"):
        anyio.run(main, backend=name, backend_options=options)
    assert kept[0].statistics().cancelled == 1


@pytest.mark.tether_no_leaks(allow=["left"])  # left open on purpose
@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_queued_tasks_of_a_registry_left_open_never_start_at_loop_end(
    backend: str,
) -> None:
    """Decision (issue 19): the event loop's end cancels the running tasks of a
    registry left open, and each freed slot started the next queued task in a
    loop that was ending; the warning did not name them. Queued tasks are now
    dropped, never started, and the warning names them with the rest."""
    name = "trio" if backend == "trio" else "asyncio"
    options: dict[str, Any] = {"use_uvloop": True} if backend == "uvloop" else {}
    if name == "asyncio" and sys.version_info < (3, 11):
        pytest.skip("Python 3.10's tasks do not count cancellation requests")
    started: list[str] = []
    kept: list[TaskRegistry] = []

    async def job(label: str) -> None:
        started.append(label)
        await anyio.sleep_forever()

    async def main() -> None:
        registry = TaskRegistry(name="left", limit=1)
        await registry.open()
        for label in ("running", "queued 1", "queued 2"):
            registry.spawn(job, label, name=label)
        kept.append(registry)
        await anyio.wait_all_tasks_blocked()

    with pytest.warns(ResourceWarning) as warned:
        anyio.run(main, backend=name, backend_options=options)
    assert started == ["running"]
    [warning] = [w for w in warned if "'left'" in str(w.message)]
    assert "with tasks running, queued 1, queued 2" in str(warning.message)
    stats = kept[0].statistics()
    assert (stats.cancelled, stats.queued, stats.running) == (3, 0, 0)


@pytest.mark.tether_no_leaks(allow=["left"])  # left open on purpose
@pytest.mark.filterwarnings("error::ResourceWarning")
@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10's tasks do not count cancellation requests",
)
def test_a_registry_left_open_logs_with_its_fields_when_warnings_are_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression (issue 19): with warnings turned into errors, the warning of a
    registry left open becomes an ERROR record (never raised inside a task), which
    lacked the `tether_task` field every tether record carries."""

    async def main() -> None:
        registry = TaskRegistry(name="left")
        await registry.open()
        registry.spawn(anyio.sleep_forever, name="forever")
        await anyio.wait_all_tasks_blocked()

    anyio.run(main, backend="asyncio")
    [record] = tether_records(caplog)
    assert "'left' was still open when its event loop ended" in record.getMessage()
    assert record.tether_registry == "left"  # type: ignore[attr-defined]
    assert record.tether_task == "forever"  # type: ignore[attr-defined]


async def test_a_host_cancelled_as_the_body_ends_cancels_tasks_not_yet_started() -> (
    None
):
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a host cancelled as the body ended went on to drain, and tasks not yet started
    ran."""
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
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a host cancelled while the registry drained did not reach the parked tasks."""
    release = anyio.Event()
    handles: list[tether.Handle[str]] = []
    with anyio.CancelScope() as host:
        async with TaskRegistry() as tasks:
            handles.append(tasks.spawn(park, release))
            await anyio.wait_all_tasks_blocked()
            host.cancel()
    assert handles[0].status is Status.CANCELLED
