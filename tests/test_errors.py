"""Error policy: raise mode (compared with an anyio task group), log mode, a callable,
and the BaseException rule."""

# Handles bound inside `async with TaskRegistry()` or `pytest.raises` are checked
# after the block, which pyright takes as possibly unbound: both `__aexit__`s are
# typed `-> bool` (as anyio's task group is), so either may swallow an exception.
# pyright: reportPossiblyUnboundVariable=false

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, NoReturn, cast

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed, tether_records
from tether import RegistryClosed, Status, TaskCancelled, TaskRegistry

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

Start = Callable[..., object]
Host = anyio.CancelScope


async def fail_after_blocked(exc: Exception) -> None:
    await anyio.wait_all_tasks_blocked()
    raise exc


async def block(log: list[str], label: str) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        log.append(f"{label} cancelled")


async def fail_in_cleanup(exc: Exception) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        raise exc


# -- raise mode, side by side with an anyio task group ------------------------------


@asynccontextmanager
async def open_group(kind: str) -> AsyncGenerator[Start, None]:
    if kind == "tether":
        async with TaskRegistry(on_error="raise") as tasks:
            yield tasks.spawn
    else:
        async with anyio.create_task_group() as tg:
            yield tg.start_soon


async def body_fails_in_cleanup(start: Start, log: list[str], host: Host) -> None:
    start(fail_after_blocked, ValueError("child"))
    try:
        await anyio.sleep_forever()
    finally:
        raise RuntimeError("body cleanup")


async def child_fails(start: Start, log: list[str], host: Host) -> None:
    start(block, log, "sibling")
    start(fail_after_blocked, ValueError("child"))
    await anyio.sleep_forever()


async def sibling_fails_in_cleanup(start: Start, log: list[str], host: Host) -> None:
    start(block, log, "sibling")
    start(fail_in_cleanup, KeyError("cleanup"))
    start(fail_after_blocked, ValueError("child"))
    await anyio.sleep_forever()


async def body_raises(start: Start, log: list[str], host: Host) -> None:
    start(block, log, "sibling")
    await anyio.wait_all_tasks_blocked()
    raise RuntimeError("body")


async def host_cancelled(start: Start, log: list[str], host: Host) -> None:
    start(block, log, "sibling")
    start(fail_in_cleanup, KeyError("cleanup"))
    await anyio.wait_all_tasks_blocked()
    host.cancel()
    await anyio.sleep_forever()


Scenario = Callable[[Start, list[str], Host], Coroutine[Any, Any, None]]
SCENARIOS: dict[str, tuple[Scenario, list[str]]] = {
    "host_cancelled": (host_cancelled, ["KeyError"]),
    "child_fails": (child_fails, ["ValueError"]),
    "sibling_fails_in_cleanup": (sibling_fails_in_cleanup, ["KeyError", "ValueError"]),
    "body_raises": (body_raises, ["RuntimeError"]),
    "body_fails_in_cleanup": (body_fails_in_cleanup, ["RuntimeError", "ValueError"]),
}


@pytest.mark.parametrize("kind", ["tether", "anyio"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_raise_mode_behaves_like_a_task_group(kind: str, scenario: str) -> None:
    body, expected = SCENARIOS[scenario]
    log: list[str] = []
    with pytest.raises(ExceptionGroup) as info, anyio.CancelScope() as host:
        async with open_group(kind) as start:
            await body(start, log, host)
    assert sorted(type(e).__name__ for e in info.value.exceptions) == expected
    if scenario != "body_fails_in_cleanup":
        assert log == ["sibling cancelled"]


async def test_raise_mode_holds_each_failure_once_even_if_received() -> None:
    async def relay(handle: tether.Handle[None]) -> None:
        await handle  # receives the task's own exception and re-raises it

    failure = ValueError("child")
    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            handle = tasks.spawn(fail_after_blocked, failure)
            tasks.spawn(relay, handle)
            await handle  # the body receives it too, and re-raises it
    assert info.value.exceptions == (failure,)


async def test_raise_mode_holds_a_failure_once_when_a_nested_group_carries_it() -> None:
    """Decision (issue 19): a group the body raises that holds failures the
    registry has (a nested task group that awaited a handle, or the group
    aclose() raised) adds only the failures it does not have."""
    failure = ValueError("child")
    other = KeyError("body's own")

    async def relay(handle: tether.Handle[None]) -> None:
        await handle

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            handle = tasks.spawn(fail_after_blocked, failure)
            with anyio.CancelScope(shield=True):
                try:
                    async with anyio.create_task_group() as group:
                        group.start_soon(relay, handle)
                except ExceptionGroup as nested:
                    raise ExceptionGroup(
                        "nested", [*nested.exceptions, other]
                    ) from None
    found: list[Exception] = list(info.value.exceptions)
    assert found[0] is failure
    [inner] = found[1:]
    assert isinstance(inner, ExceptionGroup)
    assert cast("ExceptionGroup[Exception]", inner).exceptions == (other,)


async def test_a_raised_group_never_changes_afterwards() -> None:
    """Regression (issue 19): the group handed the registry's own list of failures
    to ExceptionGroup, whose `args` kept it: a failure collected later showed up in
    a group already raised."""
    first, late = ValueError("first"), KeyError("late")
    raised: list[BaseException] = []

    async def terminate() -> None:
        try:
            # Closes first; `first` fails while it drains (once all are blocked).
            await tasks.aclose()  # raises the group of what failed so far
        except ExceptionGroup as group:
            raised.append(group)
        raise late  # after the close: the block, still to leave, raises it

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(fail_after_blocked, first)
            tasks.spawn(terminate)
            await anyio.sleep_forever()
    [early] = raised
    assert isinstance(early, ExceptionGroup)
    assert cast("ExceptionGroup[Exception]", early).exceptions == (first,)
    assert list(early.args[1]) == [first]
    assert set(info.value.exceptions) == {first, late}


async def test_raise_mode_closes_the_registry_and_drops_queued_tasks() -> None:
    log: list[str] = []

    async def late(log: list[str]) -> None:
        log.append("late ran")  # pragma: no cover - dropped unstarted

    async def spawn_in_cleanup() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with pytest.raises(RegistryClosed, match="'strict' is CANCELLING"):
                tasks.spawn(late, log)
            log.append("refused")

    with pytest.raises(ExceptionGroup):  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(name="strict", on_error="raise", limit=2) as tasks:
            tasks.spawn(spawn_in_cleanup)
            tasks.spawn(fail_after_blocked, ValueError("child"))
            queued = tasks.spawn(late, log)
            await anyio.sleep_forever()
    assert queued.status is Status.CANCELLED
    assert log == ["refused"]


async def test_raise_mode_failure_while_draining() -> None:
    log: list[str] = []
    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(block, log, "sibling")
            tasks.spawn(fail_after_blocked, ValueError("child"))
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert log == ["sibling cancelled"]


@pytest.mark.parametrize("mode", ["raise", "log"])
async def test_host_cancellation_propagates_bare(mode: Any) -> None:
    log: list[str] = []
    with anyio.CancelScope() as outer:
        async with TaskRegistry(on_error=mode) as tasks:
            tasks.spawn(block, log, "task")
            await anyio.wait_all_tasks_blocked()
            outer.cancel()
            await anyio.lowlevel.checkpoint()
    assert outer.cancelled_caught
    assert log == ["task cancelled"]


# -- log mode and callable mode -----------------------------------------------------


async def test_log_mode_isolates_and_the_awaiter_receives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    event = anyio.Event()

    async def survivor() -> str:
        await event.wait()
        return "survived"

    async with TaskRegistry(on_error="log") as tasks:
        sibling = tasks.spawn(survivor)
        failing = tasks.spawn(fail_after_blocked, ValueError("received"))
        with pytest.raises(ValueError, match="received"):
            await failing
        event.set()
        assert await sibling == "survived"
    assert tether_records(caplog) == []


async def test_log_mode_reports_an_unreceived_failure_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failure = ValueError("lost")
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(fail_after_blocked, failure, name="job")
        await handle.wait()  # wait() never counts as receiving
        await tasks.wait_idle()
        (record,) = tether_records(caplog)
        assert record.getMessage() == "Task 'job' of TaskRegistry 'app' failed"
        assert record.exc_info is not None
        assert record.exc_info[1] is failure
        assert "fail_after_blocked" in caplog.text  # the traceback
        with pytest.raises(ValueError, match="lost"):
            await handle  # a later await still raises it
        with pytest.raises(ValueError, match="lost"):
            handle.result()
    assert len(tether_records(caplog)) == 1


async def test_log_mode_reports_when_every_awaiter_is_cancelled_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scopes: list[anyio.CancelScope] = []

    async def awaiter(handle: tether.Handle[None]) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await handle

    async def fail_and_cancel_awaiters() -> None:
        await anyio.wait_all_tasks_blocked()
        for scope in scopes:
            scope.cancel()  # before any awaiter can resume
        raise ValueError("nobody got it")

    async with (
        anyio.create_task_group() as tg,
        TaskRegistry(on_error="log") as tasks,
    ):
        handle = tasks.spawn(fail_and_cancel_awaiters)
        tg.start_soon(awaiter, handle)
        tg.start_soon(awaiter, handle)
        await tasks.wait_idle()
        await anyio.wait_all_tasks_blocked()
    assert all(scope.cancelled_caught for scope in scopes)
    (record,) = tether_records(caplog)
    assert "nobody got it" in str(record.exc_info)


async def test_log_mode_one_awaiter_receiving_is_enough(
    caplog: pytest.LogCaptureFixture,
) -> None:
    received: list[BaseException] = []
    scopes: list[anyio.CancelScope] = []

    async def awaiter(handle: tether.Handle[None]) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            try:
                await handle
            except ValueError as exc:
                received.append(exc)

    async def fail_and_cancel_one_awaiter() -> None:
        await anyio.wait_all_tasks_blocked()
        scopes[0].cancel()
        raise ValueError("one")

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fail_and_cancel_one_awaiter)
        tasks.spawn(awaiter, handle)
        tasks.spawn(awaiter, handle)
    assert len(received) == 1
    assert [scope.cancelled_caught for scope in scopes].count(True) == 1
    assert tether_records(caplog) == []


@pytest.mark.parametrize("mode", ["log", "callable"])
async def test_body_exception_is_reraised_bare_after_cleanup(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[BaseException] = []

    def report(handle: tether.Handle[Any], exc: Exception) -> None:
        reported.append(exc)

    on_error: tether.OnError = "log" if mode == "log" else report
    log: list[str] = []
    with pytest.raises(RuntimeError, match="body"):  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error=on_error) as tasks:
            tasks.spawn(block, log, "task")
            tasks.spawn(fail_in_cleanup, KeyError("in cleanup"))
            await anyio.wait_all_tasks_blocked()
            raise RuntimeError("body")
    assert log == ["task cancelled"]
    # A failure during cleanup goes to the reporter.
    if mode == "log":
        (record,) = tether_records(caplog)
        assert "in cleanup" in str(record.exc_info)
    else:
        assert [type(e) for e in reported] == [KeyError]
        assert tether_records(caplog) == []


async def test_callable_mode_reports_to_the_callable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reported: list[tuple[str, BaseException]] = []
    failure = ValueError("x")
    async with TaskRegistry(
        on_error=lambda h, e: reported.append((h.name, e))
    ) as tasks:
        tasks.spawn(fail_after_blocked, failure, name="job")
    assert reported == [("job", failure)]
    assert tether_records(caplog) == []


async def test_a_callable_that_raises_is_logged_and_the_registry_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_error(handle: tether.Handle[Any], exc: Exception) -> None:
        raise LookupError("callback broke")

    async with TaskRegistry(name="app", on_error=on_error) as tasks:
        await tasks.spawn(fail_after_blocked, ValueError("task broke")).wait()
        first, second = tether_records(caplog)
        assert "task broke" in str(first.exc_info)
        assert "callback broke" in str(second.exc_info)
        assert "on_error callback of TaskRegistry 'app'" in second.getMessage()

        async def fine() -> str:
            return "ok"

        assert await tasks.spawn(fine) == "ok"


# -- BaseExceptions that are not Exceptions -----------------------------------------


class Abort(BaseException):
    pass


@pytest.mark.parametrize("mode", ["raise", "log", "callable"])
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, Abort])
async def test_a_base_exception_in_a_task_cancels_everything_and_is_reraised_bare(
    mode: str, exc_type: type[BaseException]
) -> None:
    # trio turns a real Ctrl-C into KeyboardInterrupt at a checkpoint; one raised by
    # a task is an ordinary exception to it, so KeyboardInterrupt is tested as is.
    reported: list[BaseException] = []

    def report(handle: tether.Handle[Any], exc: Exception) -> None:
        reported.append(exc)  # pragma: no cover - must never be called

    on_error: Any = mode if mode != "callable" else report
    log: list[str] = []
    interrupt = exc_type("stop")

    async def interrupting() -> None:
        await anyio.wait_all_tasks_blocked()
        raise interrupt

    handles: list[tether.Handle[None]] = []
    with pytest.raises(exc_type) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error=on_error) as tasks:
            handles += [tasks.spawn(block, log, "sibling"), tasks.spawn(interrupting)]
            await anyio.sleep_forever()
    sibling, handle = handles
    assert info.value is interrupt  # bare, not in a group
    assert log == ["sibling cancelled"]
    assert sibling.status is handle.status is Status.CANCELLED
    with pytest.raises(TaskCancelled) as cancelled:
        await handle
    assert cancelled.value.__cause__ is interrupt
    assert reported == []


async def test_a_base_exception_in_the_body_cancels_everything_and_propagates() -> None:
    log: list[str] = []
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - leaving the block raises
        async with TaskRegistry() as tasks:
            tasks.spawn(block, log, "task")
            await anyio.wait_all_tasks_blocked()
            raise KeyboardInterrupt
    assert log == ["task cancelled"]


async def test_a_task_raising_generator_exit_is_reraised_bare() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a task raising GeneratorExit was not re-raised bare from the block on every
    backend."""

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
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    an on_error callback raising KeyboardInterrupt or SystemExit lost it, and the
    failure with it."""

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
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    an on_error callback that returned a coroutine left it never awaited, with
    nothing said."""

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


async def test_a_failure_superseded_by_a_keyboard_interrupt_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a failure superseded by a KeyboardInterrupt was dropped unlogged."""

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


# -- the body's scope, made at its first need (issue 27 item 4) ----------------------


async def test_a_body_that_nothing_cancels_never_needs_its_scope() -> None:
    """Issue 27 item 4: on asyncio's native scope a block's body gets its cancel
    scope only when something first cancels it, so a short-lived registry that
    nothing fails in never makes one; where a backend cannot make a scope late
    (trio, anyio's scope on asyncio) the body enters one as it starts."""

    async def ok() -> None:
        await anyio.lowlevel.checkpoint()

    from tether._loop import current_backend

    async with TaskRegistry(on_error="raise") as tasks:
        late = current_backend().late_scope is not None
        assert (tasks.body_scope_ is None) is late
        await tasks.spawn(ok)
        assert (tasks.body_scope_ is None) is late
    assert tasks.body_scope_ is None


async def test_a_late_body_scope_cancels_the_body_outside_its_shield() -> None:
    """Issue 27 item 4: the body's scope made at the failure (asyncio's native
    scope) cancels the body as one entered at the start does: not inside a shield
    the body entered before, and at the body's first checkpoint after it."""
    log: list[str] = []

    async def fails() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(fails)
            with anyio.CancelScope(shield=True):
                await anyio.wait_all_tasks_blocked()  # the task fails meanwhile
                await anyio.lowlevel.checkpoint()
                log.append("the shield held")
            log.append("no checkpoint yet")
            await anyio.lowlevel.checkpoint()
            log.append("not reached")
    assert log == ["the shield held", "no checkpoint yet"]
    assert [str(e) for e in info.value.exceptions] == ["boom"]
