"""Seeing what runs: hooks, the context a task runs in, and dump()."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import park, tether_records
from tether import Handle, Hooks, Status, TaskRegistry

pytestmark = pytest.mark.anyio

request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "request_id", default="none"
)


class Recorder(Hooks):
    """Records each hook call as ``"<moment> <name> <status> <request_id>"``."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _record(self, moment: str, handle: Handle[Any]) -> None:
        self.calls.append(
            f"{moment} {handle.name} {handle.status.name} {request_id.get()}"
        )

    def spawned(self, handle: Handle[Any], /) -> None:
        self._record("spawned", handle)

    def started(self, handle: Handle[Any], /) -> None:
        self._record("started", handle)

    def ended(self, handle: Handle[Any], /) -> None:
        self._record("ended", handle)


async def job(value: int) -> int:
    request_id.set("changed by the task")
    await anyio.lowlevel.checkpoint()
    return value


# -- hooks -----------------------------------------------------------------------


async def test_hooks_see_spawn_start_and_end_in_the_right_contexts() -> None:
    hooks = Recorder()
    async with TaskRegistry(hooks=hooks) as tasks:
        request_id.set("req-1")
        handle = tasks.spawn(job, 1, name="job")
        assert hooks.calls == ["spawned job RUNNING req-1"]
        assert await handle == 1
    assert hooks.calls == [
        "spawned job RUNNING req-1",
        "started job RUNNING req-1",  # in the task's own context, a copy
        "ended job FINISHED changed by the task",  # as the task ends, in it
    ]


async def test_hooks_see_failures_cancellations_and_queued_tasks() -> None:
    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    hooks = Recorder()
    release = anyio.Event()
    async with TaskRegistry(hooks=hooks, limit=1, on_error=lambda h, e: None) as tasks:
        tasks.spawn(park, release, name="holder")
        queued = tasks.spawn(park, release, name="queued")
        queued.cancel()  # never started: ended without started
        failing = tasks.spawn(fail, name="fail")
        await anyio.wait_all_tasks_blocked()
        release.set()
        await failing.wait()
    assert [c.rsplit(" ", 1)[0] for c in hooks.calls] == [
        "spawned holder RUNNING",
        "spawned queued QUEUED",
        "ended queued CANCELLED",
        "spawned fail QUEUED",
        "started holder RUNNING",
        "ended holder FINISHED",
        "started fail RUNNING",
        "ended fail FAILED",
    ]


async def test_the_ended_hook_runs_before_callbacks_and_awaiters() -> None:
    order: list[str] = []

    class Ended(Hooks):
        def ended(self, handle: Handle[Any], /) -> None:
            order.append("hook")

    async with TaskRegistry(hooks=Ended()) as tasks:
        handle = tasks.spawn(anyio.sleep, 0)
        handle.add_done_callback(lambda _: order.append("callback"))
        await handle
        order.append("awaiter")
    assert order == ["hook", "callback", "awaiter"]


async def test_a_raising_hook_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Hooks):
        def started(self, handle: Handle[Any], /) -> None:
            raise RuntimeError("bug in a hook")

    async with TaskRegistry(name="app", hooks=Broken()) as tasks:
        assert await tasks.spawn(job, 3, name="job") == 3
    [record] = tether_records(caplog)
    assert record.getMessage() == (
        "The started hook of TaskRegistry 'app' of task 'job' raised; the task is "
        "unaffected"
    )
    assert record.__dict__["tether_task"] == "job"


@pytest.mark.parametrize("where", ["hook", "callback", "on_error"])
async def test_a_cancellation_raised_by_a_hook_or_callback_changes_nothing(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (issue 19): the backend's cancellation raised from a hook, a
    done-callback or the on_error callable (reading result() of a cancelled
    asyncio future there) cancelled every task and the body, and the block
    raised it. It is logged like any exception; only KeyboardInterrupt and
    SystemExit end everything. (trio makes no Cancelled outside a checkpoint:
    there the attempt raises an ordinary error, which must change nothing too.)"""

    def cancelled(*_: object) -> None:
        raise anyio.get_cancelled_exc_class()()

    class Ended(Hooks):
        def ended(self, handle: Handle[Any], /) -> None:
            cancelled()

    async def fails(_: int) -> int:
        await anyio.lowlevel.checkpoint()
        raise ValueError("reported")

    release = anyio.Event()
    body_went_on = False
    async with TaskRegistry(
        name="app",
        hooks=Ended() if where == "hook" else None,
        on_error=cancelled if where == "on_error" else "log",
    ) as tasks:
        sibling = tasks.spawn(park, release, name="sibling")
        first = tasks.spawn(fails if where == "on_error" else job, 1, name="first")
        if where == "callback":
            first.add_done_callback(cancelled)
        await first.wait()
        await anyio.lowlevel.checkpoint()  # a cancellation of the body lands here
        body_went_on = True
        release.set()
        assert await sibling == "released"
    assert body_went_on
    messages = [r.getMessage() for r in tether_records(caplog)]
    if where == "on_error":
        assert messages == [
            "Task 'first' of TaskRegistry 'app' failed",
            "The on_error callback of TaskRegistry 'app' raised while reporting "
            "task 'first'",
        ]
    else:
        what = (
            "The ended hook of TaskRegistry 'app'"
            if where == "hook"
            else "A done-callback"
        )
        assert f"{what} of task 'first' raised; the task is unaffected" in messages


async def test_statistics_add_up_inside_hooks_while_queued_tasks_are_dropped() -> None:
    """Regression (issue 19): cancel_all() and shutdown emptied the queue's count at
    once, then closed the tasks one by one, calling their hooks: statistics() read
    there gave a sum below `spawned` (4 against 2, then 3)."""
    sums: list[tuple[int, int]] = []

    class Counts(Hooks):
        def ended(self, handle: Handle[Any], /) -> None:
            stats = tasks.statistics()
            sums.append(
                (
                    stats.spawned,
                    stats.queued
                    + stats.running
                    + stats.succeeded
                    + stats.failed
                    + stats.cancelled,
                )
            )

    async with TaskRegistry(limit=1, hooks=Counts()) as tasks:
        for _ in range(4):
            tasks.spawn(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        tasks.cancel_all()  # three queued are dropped, one running is cancelled
        await anyio.wait_all_tasks_blocked()
        for _ in range(3):
            tasks.spawn(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        tasks.spawn(anyio.sleep_forever)  # queued: shutdown drops it
        tasks.cancel_all()
    assert len(sums) == 8
    assert all(spawned == total for spawned, total in sums), sums


async def test_any_object_with_hook_methods_will_do() -> None:
    ended: list[str] = []

    class JustEnded:
        def ended(self, handle: Handle[Any]) -> None:
            ended.append(handle.name)

    async with TaskRegistry(hooks=JustEnded()) as tasks:  # type: ignore[arg-type]
        tasks.spawn(anyio.sleep, 0, name="a")
    assert ended == ["a"]


async def test_services_timeouts_and_start_are_seen_by_hooks() -> None:
    hooks = Recorder()
    runs: list[int] = []

    async def flaky() -> str:
        runs.append(1)
        await anyio.lowlevel.checkpoint()
        if len(runs) == 1:
            raise ConnectionError
        return "ok"

    async with TaskRegistry(hooks=hooks) as tasks:
        service = tasks.spawn_service(flaky, name="svc", backoff=0.001)
        assert await service == "ok"
        assert service.restarts == 1
    # one task, whatever its runs
    assert [c.split(" ")[0] for c in hooks.calls] == ["spawned", "started", "ended"]


def test_hooks_that_cannot_be_called_are_refused() -> None:
    class AsyncHook:
        async def ended(self, handle: Handle[Any]) -> None: ...

    class NotAMethod:
        started = 3

    with pytest.raises(TypeError, match="at least one of the methods"):
        TaskRegistry(hooks=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"hooks\.ended is called synchronously"):
        TaskRegistry(hooks=AsyncHook())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"hooks\.started must be a method"):
        TaskRegistry(hooks=NotAMethod())  # type: ignore[arg-type]


# -- context="spawner" | "registry" ----------------------------------------------


async def read_request_id() -> str:
    await anyio.lowlevel.checkpoint()
    return request_id.get()


async def test_tasks_run_in_a_copy_of_the_spawners_context_by_default() -> None:
    async with TaskRegistry() as tasks:
        request_id.set("req-7")
        assert await tasks.spawn(read_request_id) == "req-7"


async def test_context_registry_keeps_request_context_out_of_background_work() -> None:
    request_id.set("at open")
    async with TaskRegistry(context="registry") as tasks:
        request_id.set("req-7")
        assert await tasks.spawn(read_request_id) == "at open"
        assert await tether.spawn(read_request_id) == "at open"
        # an explicit context= still wins
        explicit = contextvars.copy_context()
        assert await tasks.spawn(read_request_id, context=explicit) == "req-7"
        # and the task still sees its registry as ambient
        assert await tasks.spawn(current_is, tasks)


async def current_is(registry: TaskRegistry) -> bool:
    await anyio.lowlevel.checkpoint()
    return tether.current_registry() is registry


async def test_context_registry_applies_to_queued_and_threadsafe_spawns() -> None:
    release = anyio.Event()
    request_id.set("at open")
    async with TaskRegistry(context="registry", limit=1) as tasks:
        request_id.set("req-8")
        tasks.spawn(park, release)
        queued = tasks.spawn(read_request_id)
        release.set()
        assert await queued == "at open"

        def from_thread() -> Handle[str]:
            request_id.set("thread")
            return tasks.spawn_threadsafe(read_request_id).result()

        handle = await anyio.to_thread.run_sync(from_thread)
        assert await handle == "at open"


def test_an_unknown_context_policy_is_refused() -> None:
    with pytest.raises(ValueError, match=r"context='request'\): use 'spawner'"):
        TaskRegistry(context="request")  # type: ignore[arg-type]


# -- dump() ---------------------------------------------------------------------


async def consume(release: anyio.Event) -> None:
    await release.wait()


async def test_dump_draws_tasks_with_status_age_site_and_await_chain() -> None:
    release = anyio.Event()

    async def nested() -> None:
        async with TaskRegistry(name="inner") as inner:
            inner.spawn(consume, release, name="inner-job")
            await release.wait()

    text = everything = ""
    async with TaskRegistry(name="app", debug=True, limit=2) as tasks:
        tasks.spawn(consume, release, name="consumer", daemon=True)
        tasks.spawn(nested, name="nested")
        tasks.spawn(consume, release, name="waiting")
        await anyio.wait_all_tasks_blocked()
        text = tasks.dump()
        everything = tether.dump()
        release.set()
    lines = text.splitlines()
    assert lines[0].startswith("TaskRegistry 'app' OPEN for ")
    assert lines[0].endswith(": 2 running, 1 queued (limit 2)")
    assert lines[1].startswith("├── consumer RUNNING, daemon, age ")
    assert ", spawned at " in lines[1]
    assert __file__ in lines[1]
    assert ": suspended at consume (" in lines[1]
    assert " > " in lines[1]  # the await chain goes on, into anyio
    assert lines[2].startswith("├── nested RUNNING, age ")
    assert lines[3].startswith("│   └── TaskRegistry 'inner' OPEN for ")
    assert lines[4].startswith("│       └── inner-job RUNNING: suspended at consume (")
    assert lines[5].startswith("└── waiting QUEUED, age ")
    assert len(lines) == 6
    assert everything == text  # the inner registry is drawn under its task only
    assert tether.dump() == "no open TaskRegistry"


async def test_dump_without_debug_leaves_out_age_and_site() -> None:
    release = anyio.Event()
    line = ""
    async with TaskRegistry(name="app") as tasks:
        tasks.spawn(consume, release, name="job")
        await anyio.wait_all_tasks_blocked()
        line = tasks.dump().splitlines()[1]
        release.set()
    assert line.startswith("└── job RUNNING: suspended at consume (")


async def test_dump_shows_a_service_restarts() -> None:
    runs: list[int] = []
    second_run, parked = anyio.Event(), anyio.Event()

    async def flaky() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise ConnectionError
        second_run.set()
        await parked.wait()

    line = ""
    async with TaskRegistry(name="app") as tasks:
        tasks.spawn_service(flaky, name="svc", backoff=0.001)
        await second_run.wait()
        await anyio.wait_all_tasks_blocked()
        line = tasks.dump().splitlines()[1]
        parked.set()
    assert line.startswith("└── svc RUNNING, daemon, restarted 1 time(s): ")


async def test_dump_of_a_closed_registry_is_its_header() -> None:
    async with TaskRegistry(name="app") as tasks:
        pass
    assert tasks.dump().startswith("TaskRegistry 'app' CLOSED")
    assert tasks.statistics().spawned == 0
    assert tasks.state is tether.RegistryState.CLOSED
    assert not list(tasks)


async def test_status_is_shown_while_cancelling() -> None:
    release = anyio.Event()

    async def stubborn() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await release.wait()

    text = ""
    handles: list[Handle[None]] = []
    async with TaskRegistry(name="app") as tasks:
        handles.append(tasks.spawn(stubborn, name="stubborn"))
        await anyio.wait_all_tasks_blocked()
        handles[0].cancel()
        await anyio.wait_all_tasks_blocked()
        text = tasks.dump()
        release.set()  # before any assertion: the block waits for the cleanup
    assert handles[0].status is Status.CANCELLED
    assert "└── stubborn CANCELLING: suspended at " in text
    assert "stubborn (" in text


async def test_hooks_do_not_change_what_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with TaskRegistry(hooks=Recorder()) as tasks:
        await tasks.spawn(anyio.sleep, 0)
    assert not tether_records(caplog, logging.DEBUG + 1)
