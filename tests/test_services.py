"""Long-running work: per-task timeouts, services that restart, readiness with
start(), and done-callbacks.

Durations are asserted on trio's mock clock (``mock_clock``); on asyncio and uvloop
the same tests assert outcomes and order only.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any, NoReturn

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import tether
from helpers import closed, park, tether_records
from tether import Handle, Status, TaskCancelled, TaskRegistry

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


@pytest.fixture
def scale(backend_name: str) -> float:
    """Durations are multiplied by this: 1 on trio's mock clock, where they cost
    nothing, and 1/1000 on asyncio's real one, where only order is asserted."""
    return 1.0 if backend_name == "trio" else 0.001


def status_of(handle: Handle[Any]) -> Status:
    """Read the status afresh (type checkers keep a narrowed attribute)."""
    return handle.status


# -- timeout= ------------------------------------------------------------------------


@pytest.mark.mock_clock
async def test_a_task_that_overruns_its_timeout_fails_with_timeout_error(
    backend_name: str, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    async with TaskRegistry(name="app") as tasks:
        started = anyio.current_time()
        handle = tasks.spawn(anyio.sleep_forever, timeout=5 * scale)
        await handle.wait()
        if backend_name == "trio":
            assert anyio.current_time() - started == 5
        assert handle.status is Status.FAILED
        exc = handle.exception()
        assert type(exc) is TimeoutError
        assert str(exc) == (
            f"task 'sleep_forever' ran longer than its timeout of {5 * scale:g} s"
        )
        # on_error="log" reports it like any failure, once
        [record] = tether_records(caplog)
        assert record.getMessage() == (
            "Task 'sleep_forever' of TaskRegistry 'app' failed"
        )
        assert record.exc_info is not None
        assert record.exc_info[1] is exc


async def test_a_task_within_its_timeout_finishes() -> None:
    async def quick() -> int:
        await anyio.lowlevel.checkpoint()
        return 7

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(quick, timeout=10)
        assert await handle == 7


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_the_timeout_counts_from_the_start_not_from_the_queue() -> None:
    release = anyio.Event()
    async with TaskRegistry(limit=1) as tasks:
        tasks.spawn(park, release)
        second = tasks.spawn(anyio.sleep, 3, timeout=5)
        assert second.status is Status.QUEUED
        await anyio.sleep(60)  # queued far longer than its timeout
        release.set()
        await second
        assert status_of(second) is Status.FINISHED


async def test_cancelling_a_timed_task_cancels_it_rather_than_timing_it_out() -> None:
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(anyio.sleep_forever, timeout=1000)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
        assert handle.status is Status.CANCELLED


@pytest.mark.mock_clock
async def test_a_timeout_in_raise_mode_fails_the_block(scale: float) -> None:
    async def body() -> None:
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(anyio.sleep_forever, timeout=scale)
            await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await body()
    [exc] = caught.value.exceptions
    assert type(exc) is TimeoutError


@pytest.mark.mock_clock
async def test_every_spawn_form_takes_a_timeout(
    scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    async def ready(
        *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await anyio.sleep_forever()

    async with TaskRegistry() as tasks:
        ambient = tether.spawn(anyio.sleep_forever, timeout=scale)
        when_free = await tasks.spawn_when_free(anyio.sleep_forever, timeout=scale)
        future = await anyio.to_thread.run_sync(
            lambda: tasks.spawn_threadsafe(anyio.sleep_forever, timeout=scale)
        )
        from_thread = future.result()
        await tasks.start(ready, timeout=scale)
        started = next(h for h in tasks if h.name.endswith("ready"))
        for handle in (ambient, when_free, from_thread, started):
            await handle.wait()
            assert type(handle.exception()) is TimeoutError, handle
    # Nobody awaited them: each timeout is reported, once.
    timed_out = [r.exc_info[1] for r in tether_records(caplog) if r.exc_info]
    assert len(timed_out) == 4
    assert all(type(exc) is TimeoutError for exc in timed_out)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [(0, ValueError), (-1, ValueError), (math.nan, ValueError), ("5", TypeError)],
)
async def test_a_bad_timeout_is_refused_and_the_registry_is_intact(
    timeout: Any, error: type[Exception]
) -> None:
    async with TaskRegistry() as tasks:
        coro = anyio.sleep(1)
        with pytest.raises(error, match=r"spawn\(\.\.\., timeout=.*: timeout must be"):
            tasks.spawn(coro, timeout=timeout)
        assert closed(coro)
        with pytest.raises(error, match="timeout must be a number of seconds > 0"):
            tether.spawn(anyio.sleep, 1, timeout=timeout)
        assert tasks.statistics().spawned == 0
        await tasks.spawn(anyio.sleep, 0)  # still takes work


# -- add_done_callback --------------------------------------------------------------


async def test_done_callbacks_run_once_in_order_when_the_task_ends() -> None:
    seen: list[str] = []
    release = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, release)
        handle.add_done_callback(lambda h: seen.append(f"first {h.status.name}"))
        handle.add_done_callback(lambda h: seen.append(f"second {h.result()}"))
        await anyio.wait_all_tasks_blocked()
        assert seen == []
        release.set()
        await handle
        assert seen == ["first FINISHED", "second released"]
        # added after the end: called at once
        handle.add_done_callback(lambda h: seen.append("late"))
        assert seen[-1] == "late"
    assert len(seen) == 3


async def test_a_callback_added_by_a_callback_runs_after_those_added_before() -> None:
    """Decision (issue 19): a callback that adds a callback used to run it at once,
    before the callbacks added earlier; it now runs after them, in order, still
    before anyone awaiting the handle wakes up (asyncio's call_soon order)."""
    seen: list[str] = []
    release = anyio.Event()

    def adds(handle: Handle[str]) -> None:
        seen.append("first")
        handle.add_done_callback(lambda _: seen.append("added by first"))

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, release)
        handle.add_done_callback(adds)
        handle.add_done_callback(lambda _: seen.append("second"))
        await anyio.wait_all_tasks_blocked()
        release.set()
        await handle
        seen.append("awaiter")
        handle.add_done_callback(lambda _: seen.append("late"))  # ended: at once
    assert seen == ["first", "second", "added by first", "awaiter", "late"]


async def test_a_done_callback_runs_before_awaiters_wake() -> None:
    order: list[str] = []

    async def waiter(handle: Handle[str]) -> None:
        await handle
        order.append("awaiter")

    release = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(park, release)
        tasks.spawn(waiter, handle)
        handle.add_done_callback(lambda _: order.append("callback"))
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert order == ["callback", "awaiter"]


async def test_a_done_callback_sees_cancellation_of_a_queued_task() -> None:
    seen: list[Status] = []
    release = anyio.Event()
    async with TaskRegistry(limit=1) as tasks:
        tasks.spawn(park, release)
        queued = tasks.spawn(park, release)
        queued.add_done_callback(lambda h: seen.append(h.status))
        queued.cancel()
        assert seen == [Status.CANCELLED]
        release.set()


async def test_a_raising_done_callback_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(handle: Handle[None]) -> None:
        raise RuntimeError("bug in a callback")

    after: list[int] = []
    async with TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(anyio.sleep, 0)
        handle.add_done_callback(broken)
        handle.add_done_callback(lambda h: after.append(1))
        await handle
    assert after == [1]
    [record] = tether_records(caplog)
    assert record.getMessage() == (
        "A done-callback of task 'sleep' raised; the task is unaffected"
    )
    assert record.__dict__["tether_registry"] == "app"
    assert record.__dict__["tether_task"] == "sleep"


async def test_reading_a_failure_in_a_done_callback_does_not_swallow_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> NoReturn:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    seen: list[BaseException | None] = []
    async with TaskRegistry(name="app") as tasks:
        tasks.spawn(fail).add_done_callback(lambda h: seen.append(h.exception()))
    assert [type(e) for e in seen] == [ValueError]
    assert len(tether_records(caplog)) == 1  # still reported


async def test_add_done_callback_refuses_what_it_cannot_call() -> None:
    async def later(handle: Handle[None]) -> None: ...

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(anyio.sleep, 0)
        with pytest.raises(TypeError, match="must be a plain `def`"):
            handle.add_done_callback(later)
        with pytest.raises(TypeError, match="fn must be a callable"):
            handle.add_done_callback(42)  # type: ignore[arg-type]


# -- spawn_service -------------------------------------------------------------------


class Flaky:
    """A service body that fails ``failures`` times, then returns its run count,
    recording the clock at each run's start."""

    def __init__(self, failures: int, run_for: float = 0) -> None:
        self.failures = failures
        self.run_for = run_for
        self.starts: list[float] = []

    async def __call__(self) -> int:
        self.starts.append(anyio.current_time())
        await anyio.sleep(self.run_for)
        if len(self.starts) <= self.failures:
            raise ConnectionError(f"run {len(self.starts)} lost its connection")
        return len(self.starts)


@pytest.mark.mock_clock
async def test_a_service_restarts_after_failures_with_growing_jittered_backoff(
    backend_name: str, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    body = Flaky(failures=3)
    async with TaskRegistry(name="app") as tasks:
        service = tasks.spawn_service(
            body, name="feed", backoff=scale, max_backoff=3 * scale
        )
        assert await service == 4
        assert service.restarts == 3
        assert tasks.statistics().restarts == 3
    if backend_name == "trio":
        gaps = [b - a for a, b in zip(body.starts, body.starts[1:], strict=False)]
        # backoff 1, then 2, then 3 (capped), each scaled by a jitter in [0.5, 1]
        for gap, ceiling in zip(gaps, [1, 2, 3], strict=True):
            assert ceiling / 2 <= gap <= ceiling
    warnings = [r.getMessage() for r in tether_records(caplog, logging.WARNING)]
    assert len(warnings) == 3
    assert warnings[0].startswith(
        "Service 'feed' of TaskRegistry 'app' failed: "
        "ConnectionError('run 1 lost its connection'); restart 1 of 5 within 60 s, in "
    )
    assert not tether_records(caplog, logging.ERROR)  # recovered: nothing to report


@pytest.mark.mock_clock
async def test_a_service_that_spends_its_budget_reports_the_last_failure(
    scale: float,
) -> None:
    reported: list[tuple[str, str]] = []

    def on_error(handle: Handle[Any], exc: Exception) -> None:
        reported.append((handle.name, str(exc)))

    body = Flaky(failures=100)
    async with TaskRegistry(on_error=on_error) as tasks:
        service = tasks.spawn_service(body, name="feed", max_restarts=2, backoff=scale)
        await service.wait()
        assert service.status is Status.FAILED
        assert service.restarts == 2
    assert len(body.starts) == 3  # the first run and two restarts
    assert reported == [("feed", "run 3 lost its connection")]


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_a_service_that_stays_up_earns_its_budget_back() -> None:
    # Each run lasts 100 s, longer than the 60 s window: one restart in the budget
    # is always enough, however many runs fail.
    body = Flaky(failures=5, run_for=100)
    async with TaskRegistry() as tasks:
        service = tasks.spawn_service(
            body, max_restarts=1, restart_window=60, backoff=1
        )
        assert await service == 6
        assert service.restarts == 5


class Failing:
    """A service body that raises each exception of ``failures`` in turn (each
    run after ``run_for`` seconds), then returns its run count."""

    def __init__(self, *failures: Exception, run_for: float = 0) -> None:
        self.failures = list(failures)
        self.run_for = run_for
        self.runs = 0

    async def __call__(self) -> int:
        self.runs += 1
        await anyio.sleep(self.run_for)
        if self.failures:
            raise self.failures.pop(0)
        return self.runs


@pytest.mark.mock_clock
async def test_a_failure_outside_restart_on_fails_the_service_at_once(
    scale: float,
) -> None:
    """A bug is not an outage: only the failures named in restart_on restart a
    service (#26 item 6: every Exception restarted it, bugs included)."""
    reported: list[Exception] = []
    bug = TypeError("a bug")
    body = Failing(ConnectionError("outage"), bug, ConnectionError("unreached"))
    async with TaskRegistry(on_error=lambda _h, exc: reported.append(exc)) as tasks:
        service = tasks.spawn_service(
            body, restart_on=(ConnectionError, TimeoutError), backoff=scale
        )
        await service.wait()
        assert service.status is Status.FAILED
        assert service.restarts == 1  # after the ConnectionError, not after the bug
    assert body.runs == 2
    assert reported == [bug]


@pytest.mark.mock_clock
async def test_restart_on_takes_one_exception_class_and_its_subclasses(
    scale: float,
) -> None:
    body = Failing(ConnectionResetError("reset"), ConnectionRefusedError("refused"))
    async with TaskRegistry() as tasks:
        service = tasks.spawn_service(body, restart_on=ConnectionError, backoff=scale)
        assert await service == 3
        assert service.restarts == 2


@pytest.mark.mock_clock
async def test_a_restart_logs_its_traceback_once_per_outage_then_one_line(
    backend_name: str, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    """240 lines of tracebacks for one server outage were too many (#26 item 6):
    the first restart of an outage and each new kind of failure carry the
    traceback; a repeat is one line; a service that stayed up for a whole window
    starts a new outage."""
    body = Failing(
        ConnectionError("down"),
        ConnectionError("still down"),
        ConnectionError("still down"),
        TimeoutError("slow"),
        TimeoutError("slow"),
    )
    async with TaskRegistry(name="app") as tasks:
        service = tasks.spawn_service(
            body, name="feed", max_restarts=None, backoff=scale, max_backoff=scale
        )
        assert await service == 6
    records = tether_records(caplog, logging.WARNING)
    told = [r.exc_info is not None for r in records]
    assert told == [True, False, False, True, False]
    repeat = records[1].getMessage()
    assert repeat.startswith(
        "Service 'feed' of TaskRegistry 'app' failed: "
        "ConnectionError('still down'); restart 2 within 60 s, in "
    )
    assert repeat.endswith(" s (traceback as at the first restart)")
    assert records[0].exc_info is not None
    assert str(records[0].exc_info[1]) == "down"


@pytest.mark.mock_clock
@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_a_service_up_for_a_whole_window_logs_a_new_outage_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each run lasts 100 s, longer than the 60 s window.
    body = Failing(ConnectionError("a"), ConnectionError("b"), run_for=100)
    async with TaskRegistry() as tasks:
        assert await tasks.spawn_service(body, backoff=1) == 3
    told = [r.exc_info is not None for r in tether_records(caplog, logging.WARNING)]
    assert told == [True, True]


@pytest.mark.mock_clock
async def test_restart_always_restarts_a_service_that_returns(
    scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []

    async def tick() -> int:
        runs.append(len(runs) + 1)
        await anyio.lowlevel.checkpoint()
        return len(runs)

    async with TaskRegistry(name="app") as tasks:
        service = tasks.spawn_service(
            tick, name="tick", restart="always", max_restarts=3, backoff=scale
        )
        assert await service == 4  # budget spent after a return: its last value
        assert service.restarts == 3
    assert runs == [1, 2, 3, 4]
    last = tether_records(caplog, logging.WARNING)[-1].getMessage()
    assert last == (
        "Service 'tick' of TaskRegistry 'app' returned after 3 restart(s) within "
        "60 s and is not restarted again"
    )


# -- on_give_up= ---------------------------------------------------------------------


@pytest.mark.mock_clock
async def test_a_service_that_gives_up_with_on_give_up_raise_fails_the_registry(
    backend_name: str, scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 21 item 5: a watchdog that spent its budget was reported, and the
    app ran on blind. With on_give_up="raise" its giving up ends the registry as
    a failure in raise mode does, in a registry in log mode: every task and the
    body are cancelled at once, and the block raises the last failure, once (it
    is not logged besides)."""
    body = Flaky(failures=100)
    ran_on: list[str] = []
    siblings: list[Handle[None]] = []
    gave_up_at = 0.0

    async def app() -> None:
        nonlocal gave_up_at
        async with TaskRegistry(name="app") as tasks:
            siblings.append(tasks.spawn(anyio.sleep_forever, name="sibling"))
            tasks.spawn_service(
                body,
                name="watchdog",
                max_restarts=2,
                backoff=scale,
                on_give_up="raise",
            )
            try:
                await anyio.sleep_forever()
            finally:
                gave_up_at = anyio.current_time()
            ran_on.append("body")  # pragma: no cover - the body is cancelled

    with pytest.raises(ExceptionGroup) as caught:
        await app()
    [failure] = caught.value.exceptions
    assert isinstance(failure, ConnectionError)
    assert str(failure) == "run 3 lost its connection"
    assert len(body.starts) == 3  # the first run and two restarts
    assert [h.status for h in siblings] == [Status.CANCELLED]
    assert ran_on == []
    if backend_name == "trio":
        gaps = [b - a for a, b in zip(body.starts, body.starts[1:], strict=False)]
        for gap, ceiling in zip(gaps, [1, 2], strict=True):  # the backoff, jittered
            assert ceiling / 2 <= gap <= ceiling
        assert gave_up_at == body.starts[-1]  # at the last failure, not later
    assert not tether_records(caplog)  # raised, not reported besides
    assert len(tether_records(caplog, logging.WARNING)) == 2 + 1  # restarts, shutdown


@pytest.mark.mock_clock
async def test_on_give_up_raise_takes_a_failure_outside_restart_on_at_once(
    scale: float,
) -> None:
    bug = TypeError("a bug")
    body = Failing(bug, ConnectionError("unreached"))

    async def app() -> None:
        async with TaskRegistry() as tasks:
            tasks.spawn_service(
                body, restart_on=ConnectionError, backoff=scale, on_give_up="raise"
            )
            await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await app()
    assert caught.value.exceptions == (bug,)
    assert body.runs == 1


@pytest.mark.mock_clock
async def test_on_give_up_raise_fails_a_service_that_gives_up_after_returning(
    scale: float, caplog: pytest.LogCaptureFixture
) -> None:
    async def tick() -> int:
        await anyio.lowlevel.checkpoint()
        return 1

    services: list[Handle[int]] = []

    async def app() -> None:
        async with TaskRegistry(name="app") as tasks:
            service = tasks.spawn_service(
                tick,
                restart="always",
                max_restarts=2,
                backoff=scale,
                on_give_up="raise",
            )
            services.append(service)
            await anyio.sleep_forever()

    with pytest.raises(ExceptionGroup) as caught:
        await app()
    [failure] = caught.value.exceptions
    assert type(failure) is RuntimeError
    assert str(failure) == (
        "service 'test_on_give_up_raise_fails_a_service_that_gives_up_after_"
        "returning.<locals>.tick' of TaskRegistry 'app' returned after 2 "
        "restart(s) within 60 s and gave up (on_give_up='raise')"
    )
    assert [s.exception() for s in services] == [failure]
    assert len(tether_records(caplog, logging.WARNING)) == 2  # the restarts


@pytest.mark.mock_clock
async def test_a_service_that_recovers_or_is_cancelled_never_escalates(
    scale: float,
) -> None:
    called: list[Handle[Any]] = []
    services: list[Handle[None]] = []
    async with TaskRegistry() as tasks:
        recovered = tasks.spawn_service(
            Flaky(failures=2), backoff=scale, on_give_up="raise"
        )
        assert await recovered == 3
        tasks.spawn_service(Flaky(failures=0), on_give_up=called.append)
        parked = tasks.spawn_service(anyio.sleep_forever, on_give_up="raise")
        await anyio.wait_all_tasks_blocked()
        parked.cancel()
        await parked.wait()
        services.append(tasks.spawn_service(anyio.sleep_forever, on_give_up="raise"))
        await anyio.wait_all_tasks_blocked()
    # Cancelled by the close: no escalation.
    assert [h.status for h in services] == [Status.CANCELLED]
    assert called == []


@pytest.mark.mock_clock
async def test_on_give_up_calls_a_function_with_the_ended_handle(
    scale: float,
) -> None:
    """The callable runs once the task has ended (its failure is on the handle),
    and the failure still goes to on_error."""
    seen: list[tuple[Status, str]] = []
    reported: list[Exception] = []

    def alert(handle: Handle[int]) -> None:
        seen.append((handle.status, str(handle.exception())))

    async with TaskRegistry(on_error=lambda _h, exc: reported.append(exc)) as tasks:
        service = tasks.spawn_service(
            Flaky(failures=100), max_restarts=1, backoff=scale, on_give_up=alert
        )
        await service.wait()
        assert seen == [(Status.FAILED, "run 2 lost its connection")]
        await anyio.wait_all_tasks_blocked()
        assert reported == [service.exception()]


@pytest.mark.mock_clock
async def test_an_after_drain_service_that_gives_up_in_the_drain_ends_it(
    scale: float,
) -> None:
    """A service kept through the drain (stop="after-drain") that gives up there
    with on_give_up="raise" ends the drain at once, where it would wait forever."""
    never = anyio.Event()
    waiters: list[Handle[None]] = []

    async def app() -> None:
        async with TaskRegistry(shutdown_timeout=None) as tasks:
            waiters.append(tasks.spawn(never.wait, name="waiter"))
            tasks.spawn_service(
                Flaky(failures=100, run_for=10 * scale),
                max_restarts=1,
                backoff=scale,
                stop="after-drain",
                on_give_up="raise",
            )

    with pytest.raises(ExceptionGroup) as caught:
        await app()
    [failure] = caught.value.exceptions
    assert str(failure) == "run 2 lost its connection"
    assert [h.status for h in waiters] == [Status.CANCELLED]


class Monitor:
    """An object with start() and close() around a private registry: its
    watchdog's giving up cancels its other tasks, and close() raises it."""

    def __init__(self, probe: Flaky, backoff: float) -> None:
        self._tasks = TaskRegistry(name="monitor", ambient=False)
        self._probe = probe
        self._backoff = backoff
        self.checks: Handle[None] | None = None

    async def start(self) -> None:
        await self._tasks.open()
        self.checks = self._tasks.spawn(anyio.sleep_forever, name="checks")
        self._tasks.spawn_service(
            self._probe,
            name="watchdog",
            max_restarts=1,
            backoff=self._backoff,
            on_give_up="raise",
        )

    async def close(self) -> None:
        await self._tasks.aclose()


@pytest.mark.mock_clock
async def test_a_service_giving_up_ends_a_registry_opened_with_open(
    scale: float,
) -> None:
    monitor = Monitor(Flaky(failures=100), scale)
    await monitor.start()
    assert monitor.checks is not None
    await monitor.checks.wait()  # cancelled when the watchdog gave up
    assert monitor.checks.status is Status.CANCELLED
    with pytest.raises(ExceptionGroup) as caught:
        await monitor.close()
    [failure] = caught.value.exceptions
    assert str(failure) == "run 2 lost its connection"


async def alert_later(handle: Handle[Any]) -> None: ...


def alert_nobody() -> None:
    """Review defect: an on_give_up that cannot take the handle was accepted,
    and failed only the day the service gave up, as a done-callback's ERROR."""


def alert_two(handle: Handle[Any], channel: str) -> None: ...


@pytest.mark.parametrize(
    ("on_give_up", "error", "match"),
    [
        ("close", ValueError, r"on_give_up='close'\): use 'raise' \(the service's"),
        (42, TypeError, r"on_give_up=42\): on_give_up must be 'raise', a callable"),
        (alert_later, TypeError, r"alert_later\): on_give_up is called synchron"),
        (alert_nobody, TypeError, r"alert_nobody\): on_give_up is called with one"),
        (alert_two, TypeError, r"alert_two\): .*the service's handle, which it"),
    ],
)
async def test_a_bad_on_give_up_is_refused_and_the_registry_is_intact(
    on_give_up: Any, error: type[Exception], match: str
) -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(error, match=match):
            tasks.spawn_service(Flaky(0), on_give_up=on_give_up)
        assert tasks.statistics().spawned == 0


async def test_restart_on_failure_does_not_restart_a_service_that_returns() -> None:
    body = Flaky(failures=0)
    async with TaskRegistry() as tasks:
        assert await tasks.spawn_service(body) == 1
    assert len(body.starts) == 1


async def test_cancelling_a_service_never_restarts_it() -> None:
    runs: list[str] = []

    async def serve() -> None:
        runs.append("run")
        await anyio.sleep_forever()

    async with TaskRegistry() as tasks:
        service = tasks.spawn_service(serve)
        await anyio.wait_all_tasks_blocked()
        service.cancel()
        await service.wait()
        assert status_of(service) is Status.CANCELLED
        await anyio.wait_all_tasks_blocked()
        assert service.restarts == 0
    assert runs == ["run"]


@pytest.mark.mock_clock
async def test_closing_ends_a_backoff_sleep_at_once(backend_name: str) -> None:
    body = Flaky(failures=100)
    services: list[Handle[int]] = []
    closing_at = 0.0
    async with TaskRegistry(shutdown_timeout=None) as tasks:
        services.append(tasks.spawn_service(body, backoff=1000, max_backoff=1000))
        await anyio.wait_all_tasks_blocked()  # failed once, sleeping ~1000 s
        closing_at = anyio.current_time()
    [service] = services
    assert service.status is Status.CANCELLED  # a daemon: cancelled, not drained
    assert len(body.starts) == 1
    if backend_name == "trio":
        assert anyio.current_time() == closing_at


async def test_a_service_is_a_daemon_the_shutdown_warning_does_not_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def consume() -> None:
        await anyio.sleep_forever()

    async with TaskRegistry(name="app") as tasks:
        tasks.spawn_service(consume)
        await anyio.wait_all_tasks_blocked()
    assert not tether_records(caplog, logging.WARNING)


@pytest.mark.mock_clock
async def test_a_service_timeout_limits_each_run(scale: float) -> None:
    hung: list[int] = []

    async def poll() -> str:
        hung.append(1)
        if len(hung) < 3:
            await anyio.sleep_forever()  # a run that hangs
        return "polled"

    async with TaskRegistry() as tasks:
        service = tasks.spawn_service(poll, timeout=10 * scale, backoff=scale)
        assert await service == "polled"
        assert service.restarts == 2


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"restart": "never"}, ValueError, r"restart='never'\): use 'on-failure'"),
        ({"max_restarts": 0}, ValueError, r"max_restarts=0\): max_restarts must be"),
        ({"max_restarts": 1.5}, TypeError, "max_restarts must be a whole number"),
        ({"backoff": "1"}, TypeError, r"backoff='1'\): backoff must be a number"),
        ({"restart": 1}, TypeError, r"restart=1\): use 'on-failure'"),
        ({"restart_window": 0}, ValueError, "restart_window must be a number of"),
        ({"backoff": -1}, ValueError, r"backoff=-1\): backoff must be a number"),
        ({"backoff": 0}, ValueError, "a restart loop without a delay would spin"),
        ({"backoff": 5, "max_backoff": 1}, ValueError, "must be >= backoff"),
        ({"timeout": 0}, ValueError, r"timeout=0\): timeout must be a number"),
        ({"name": 3}, TypeError, "name must be a str"),
        ({"restart_on": "x"}, TypeError, r"restart_on='x'\): pass the Exception"),
        (
            {"restart_on": (ConnectionError, KeyboardInterrupt)},
            TypeError,
            "KeyboardInterrupt never restarts it",
        ),
        ({"restart_on": ()}, ValueError, r"restart_on=\(\)\): an empty tuple"),
    ],
)
async def test_bad_service_options_are_refused_and_the_registry_is_intact(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(error, match=match):
            tasks.spawn_service(Flaky(0), **options)
        assert tasks.statistics().spawned == 0
        assert await tasks.spawn_service(Flaky(0)) == 1


async def test_a_service_needs_a_function_it_can_call_again() -> None:
    async def consume() -> None: ...

    def sync() -> None: ...

    async with TaskRegistry() as tasks:
        coro = consume()
        with pytest.raises(TypeError, match=r"runs only once\. Pass the async"):
            tasks.spawn_service(coro)  # type: ignore[arg-type]
        assert closed(coro)
        with pytest.raises(TypeError, match="is a sync function"):
            tasks.spawn_service(sync)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"functools\.partial"):
            tasks.spawn_service(consume, queue="jobs")


# -- start() -------------------------------------------------------------------------


async def serve(
    port: int,
    events: list[str],
    *,
    task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED,
) -> None:
    await anyio.lowlevel.checkpoint()
    events.append("bound")
    task_status.started(f"listening on {port}")
    await anyio.lowlevel.checkpoint()
    events.append("served")


async def test_start_returns_the_value_the_task_reports_and_the_task_runs_on() -> None:
    events: list[str] = []
    async with TaskRegistry() as tasks:
        assert await tasks.start(serve, 8000, events) == "listening on 8000"
        assert events[0] == "bound"  # and the task runs on
    assert events == ["bound", "served"]


async def test_the_same_function_starts_under_an_anyio_task_group() -> None:
    events: list[str] = []
    async with anyio.create_task_group() as tg:
        assert await tg.start(serve, 1, events) == "listening on 1"


async def test_start_raises_a_failure_before_ready_and_does_not_report_it() -> None:
    reported: list[Exception] = []

    async def broken(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.lowlevel.checkpoint()
        raise OSError("address in use")

    async with TaskRegistry(on_error=lambda h, e: reported.append(e)) as tasks:
        with pytest.raises(OSError, match="address in use"):
            await tasks.start(broken)
        assert tasks.statistics().failed == 1
    assert reported == []  # received by start's caller: not reported again


async def test_start_raises_when_the_task_returns_before_ready() -> None:
    async def forgetful(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.lowlevel.checkpoint()

    async with TaskRegistry() as tasks:
        with pytest.raises(
            RuntimeError, match=r"'.*forgetful' returned before it called"
        ):
            await tasks.start(forgetful)


async def test_a_failure_just_after_ready_is_reported_not_lost() -> None:
    reported: list[Exception] = []

    async def flaky(
        *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        raise ValueError("right after")  # before the starter wakes up

    async with TaskRegistry(on_error=lambda h, e: reported.append(e)) as tasks:
        await tasks.start(flaky)
    assert [str(e) for e in reported] == ["right after"]


async def test_reporting_ready_twice_fails_the_task() -> None:
    reported: list[Exception] = []

    async def twice(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(1)
        task_status.started(2)

    async with TaskRegistry(on_error=lambda h, e: reported.append(e)) as tasks:
        assert await tasks.start(twice) == 1
    [exc] = reported
    assert "called task_status.started() twice" in str(exc)


async def test_cancelling_the_starter_while_it_waits_cancels_the_task() -> None:
    cleanup: list[str] = []
    handles: list[Handle[Any]] = []

    async def slow_start(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleanup.append("cleaned up")

    starter = anyio.CancelScope()

    async def start_it(tasks: TaskRegistry) -> None:
        with starter:
            await tasks.start(slow_start)

    async with TaskRegistry() as tasks, anyio.create_task_group() as tg:
        tg.start_soon(start_it, tasks)
        await anyio.wait_all_tasks_blocked()  # the task runs, not yet ready
        handles.extend(tasks)
        starter.cancel()
        for handle in handles:
            await handle.wait()
    assert starter.cancelled_caught
    assert [h.status for h in handles] == [Status.CANCELLED]
    assert cleanup == ["cleaned up"]


async def test_start_raises_task_cancelled_when_the_registry_cancels_it() -> None:
    async def never_ready(
        *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await anyio.sleep_forever()

    async def starter(tasks: TaskRegistry, outcome: list[str]) -> None:
        try:
            await tasks.start(never_ready)
        except TaskCancelled as exc:
            outcome.append(str(exc))

    outcome: list[str] = []
    async with TaskRegistry() as tasks:
        tasks.spawn(starter, tasks, outcome)
        await anyio.wait_all_tasks_blocked()
        for handle in tasks:
            if handle.name.endswith("never_ready"):
                handle.cancel()
    [message] = outcome
    assert message.endswith("never_ready' was cancelled")


async def test_start_waits_for_a_slot_under_a_limit() -> None:
    events: list[str] = []
    release = anyio.Event()

    async def free_the_slot() -> None:
        await anyio.wait_all_tasks_blocked()
        events.append("slot freed")
        release.set()

    async with TaskRegistry(limit=1) as tasks, anyio.create_task_group() as tg:
        tasks.spawn(park, release)
        tg.start_soon(free_the_slot)
        assert await tasks.start(serve, 1, events) == "listening on 1"
    assert events == ["slot freed", "bound", "served"]


async def test_start_refuses_what_it_cannot_start() -> None:
    async def no_status(port: int) -> None: ...

    events: list[str] = []
    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError, match="give the function a parameter"):
            await tasks.start(no_status, 1)  # type: ignore[arg-type]
        coro = no_status(1)
        with pytest.raises(TypeError, match="needs the function itself"):
            await tasks.start(coro)  # type: ignore[call-overload]
        assert closed(coro)
        with pytest.raises(TypeError, match="is a sync function"):
            await tasks.start(print)  # type: ignore[arg-type]
        assert tasks.statistics().spawned == 0
    with pytest.raises(tether.RegistryClosed, match="CLOSED"):
        await tasks.start(serve, 1, events)
