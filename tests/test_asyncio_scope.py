"""A task's cancel scope on asyncio, on both of its paths: tether's own native scope
(:mod:`tether._asyncio_scope`) and anyio's public ``CancelScope``, its fallback.

Every behavioural test here runs five ways: asyncio and uvloop on each scope path,
and trio (which has one path, unchanged). The whole suite also runs once with the
fallback forced by ``TETHER_ASYNCIO_SCOPE=anyio`` (see ``.ci/run``); the tests below
force each path themselves, so both are covered in every run.
"""

# Handles bound inside `async with TaskRegistry()` or `pytest.raises` are checked
# after the block, which pyright takes as possibly unbound.
# pyright: reportPossiblyUnboundVariable=false

from __future__ import annotations

import asyncio
import logging
import math
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import tether_records
from tether import Status, TaskRegistry
from tether import _asyncio_scope as scope_module

if TYPE_CHECKING:
    from collections.abc import Iterator

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

PATHS = [
    ("asyncio", "native"),
    ("asyncio", "anyio"),
    ("uvloop", "native"),
    ("uvloop", "anyio"),
    ("trio", None),
]


@pytest.fixture(params=PATHS, ids=[f"{b}-{p}" if p else b for b, p in PATHS])
def anyio_backend(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The backend, with the asyncio scope path forced for the test."""
    backend, path = request.param
    saved = None if path is None else scope_module.force(path == "native")
    try:
        if backend == "trio":
            yield "trio", {}
        else:
            yield "asyncio", {"use_uvloop": backend == "uvloop"}
    finally:
        if path is not None:
            scope_module.force(saved)


@pytest.fixture
def path(request: pytest.FixtureRequest) -> str:
    """``"native"``, ``"anyio"`` or ``"trio"``: the scope path under test."""
    backend, scope_path = request.node.callspec.params["anyio_backend"]
    return str(scope_path or backend)


def _cancelled() -> type[BaseException]:
    return anyio.get_cancelled_exc_class()


# -- shields inside a task body ------------------------------------------------------


async def shielded_cleanup(
    entered: anyio.Event, proceed: anyio.Event, log: list[str]
) -> None:
    """Cancelled, then cleans up in a shield that parks three times."""
    try:
        entered.set()
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            log.append("cleanup")
            await proceed.wait()  # parked on an event
            await anyio.sleep(0)  # noqa: ASYNC115 - ready, not parked
            await anyio.lowlevel.checkpoint()
            log.append("cleanup done")
        log.append("after shield")
        try:
            await anyio.lowlevel.checkpoint()
        except _cancelled():
            log.append("cancelled again")
            raise


async def test_a_shield_in_a_cancelled_task_finishes_its_cleanup(path: str) -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(shielded_cleanup, entered, proceed, log)
        await entered.wait()
        handle.cancel()
        await anyio.wait_all_tasks_blocked()
        assert log == ["cleanup"]
        assert handle.status is Status.CANCELLING
        proceed.set()
        await handle.wait()
    assert handle.status is Status.CANCELLED
    assert log == ["cleanup", "cleanup done", "after shield", "cancelled again"]


@pytest.mark.parametrize("how", ["cancel_all", "host_cancelled", "sibling_failed"])
async def test_a_shield_survives_every_way_tether_cancels(path: str, how: str) -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()

    async def fail() -> None:
        await entered.wait()
        raise KeyError("sibling")

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        proceed.set()

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as host:
            on_error: Literal["raise", "log"] = (
                "raise" if how == "sibling_failed" else "log"
            )
            with (
                pytest.raises(ExceptionGroup)
                if how == "sibling_failed"
                else nullcontext()
            ):
                async with TaskRegistry(on_error=on_error) as tasks:
                    handle = tasks.spawn(shielded_cleanup, entered, proceed, log)
                    await entered.wait()
                    tg.start_soon(release_later)
                    if how == "cancel_all":
                        tasks.cancel_all()
                        await handle.wait()
                        host.cancel()
                    elif how == "host_cancelled":
                        host.cancel()
                    else:
                        tasks.spawn(fail)
                    await anyio.sleep_forever()
    assert handle.status is Status.CANCELLED
    assert log == ["cleanup", "cleanup done", "after shield", "cancelled again"]


@pytest.mark.parametrize("records", ["few", "one per task"])
async def test_a_shield_among_many_tasks_survives_shutdown(
    path: str, records: str
) -> None:
    """A shutdown delivers to every task in one batch, which finds the tasks'
    anyio records in a copy made once when they are no more than the tasks
    ("few"), else one lookup per task ("one per task": each plain task parks in
    an anyio scope of its own): a shield is honoured either way."""
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()
    parked: list[str] = []

    async def plain(i: int) -> None:
        with anyio.CancelScope() if records == "one per task" else nullcontext():
            try:
                await anyio.sleep_forever()
            finally:
                parked.append(f"plain {i}")

    async def release_later() -> None:
        await anyio.wait_all_tasks_blocked()
        proceed.set()

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as host:
            async with TaskRegistry() as tasks:
                for i in range(20):
                    tasks.spawn(plain, i)
                handle = tasks.spawn(shielded_cleanup, entered, proceed, log)
                for i in range(20, 40):
                    tasks.spawn(plain, i)
                await entered.wait()
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(release_later)
                host.cancel()
                await anyio.sleep_forever()
    assert handle.status is Status.CANCELLED
    assert log == ["cleanup", "cleanup done", "after shield", "cancelled again"]
    assert sorted(parked) == sorted(f"plain {i}" for i in range(40))


async def test_a_shield_survives_a_run_all_sibling_failing(path: str) -> None:
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()

    async def fail() -> None:
        await entered.wait()
        await anyio.wait_all_tasks_blocked()
        proceed.set()  # released as the failure cancels the other input
        raise KeyError("sibling")

    with pytest.raises(KeyError):
        await tether.run_all(shielded_cleanup(entered, proceed, log), fail())
    assert log == ["cleanup", "cleanup done", "after shield", "cancelled again"]


async def test_a_task_parked_in_a_shield_costs_no_callbacks(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task parked in a shield is not polled: the loop may sleep."""
    looks: list[int] = []
    deliver = scope_module.deliver

    def counted(scopes: list[scope_module.NativeScope]) -> None:
        looks.append(len(scopes))
        deliver(scopes)

    monkeypatch.setattr(scope_module, "deliver", counted)
    entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(shielded_cleanup, entered, proceed, log)
        await entered.wait()
        handle.cancel()
        await anyio.wait_all_tasks_blocked()
        assert log == ["cleanup"]  # parked in the shield
        before = len(looks)
        for _ in range(5):  # iterations of the loop while it stays parked
            await anyio.lowlevel.checkpoint()
        looked_while_parked = len(looks) - before
        proceed.set()
    assert looked_while_parked == 0
    assert handle.status is Status.CANCELLED
    assert log == ["cleanup", "cleanup done", "after shield", "cancelled again"]
    if path == "native":
        assert looks  # the native path did deliver


async def test_a_task_cancelling_itself_inside_a_shield(path: str) -> None:
    log: list[str] = []

    async def worker(own: list[tether.Handle[None]]) -> None:
        await anyio.lowlevel.checkpoint()
        with anyio.CancelScope(shield=True):
            own[0].cancel()
            await anyio.lowlevel.checkpoint()
            log.append("shield held")
        await anyio.lowlevel.checkpoint()
        log.append("unreachable")  # pragma: no cover

    own: list[tether.Handle[None]] = []
    async with TaskRegistry() as tasks:
        own.append(tasks.spawn(worker, own))
        await own[0].wait()
    assert log == ["shield held"]
    assert own[0].status is Status.CANCELLED


# -- level-triggered cancellation ---------------------------------------------------


async def test_every_unshielded_checkpoint_raises_until_the_task_ends(
    path: str,
) -> None:
    log: list[str] = []

    async def stubborn() -> None:
        for attempt in range(3):
            try:
                await anyio.sleep(3600 if attempt == 0 else 0)
            except _cancelled():
                log.append(f"swallowed {attempt}")
        try:
            await anyio.lowlevel.checkpoint()
        finally:
            log.append("finally")
            try:
                await anyio.Event().wait()
            except _cancelled():
                log.append("the await in finally raised")
                raise

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(stubborn)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
    assert log == [
        "swallowed 0",
        "swallowed 1",
        "swallowed 2",
        "finally",
        "the await in finally raised",
    ]
    assert handle.status is Status.CANCELLED


async def test_a_task_that_swallows_and_returns_finishes(path: str) -> None:
    async def swallows() -> str:
        try:
            await anyio.sleep_forever()
        except _cancelled():
            return "kept going"
        raise AssertionError("unreachable")  # pragma: no cover

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(swallows)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        assert await handle == "kept going"
    assert handle.status is Status.FINISHED


# -- anyio's scopes and task groups inside the body ---------------------------------


async def test_move_on_after_and_fail_after_inside_a_task_work_as_alone(
    path: str,
) -> None:
    async def worker() -> str:
        with anyio.move_on_after(0) as moved:
            await anyio.sleep_forever()
        assert moved.cancelled_caught
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0):
                await anyio.sleep_forever()
        return "both expired"

    async with TaskRegistry() as tasks:
        assert await tasks.spawn(worker) == "both expired"


async def test_tether_cancellation_goes_through_a_scope_in_the_body(path: str) -> None:
    """Neither an inner scope nor its deadline takes tether's cancellation for its
    own: the task ends cancelled, not timed out."""
    log: list[str] = []

    async def worker(entered: anyio.Event) -> None:
        with anyio.move_on_after(3600) as inner:
            try:
                entered.set()
                await anyio.sleep_forever()
            finally:
                inner.cancel()  # the inner scope is cancelled too, as it unwinds
        log.append("unreachable")  # pragma: no cover

    async with TaskRegistry() as tasks:
        entered = anyio.Event()
        handle = tasks.spawn(worker, entered)
        await entered.wait()
        handle.cancel()
        await handle.wait()
    assert handle.status is Status.CANCELLED
    assert log == []


async def test_a_task_group_inside_a_cancelled_task_is_cancelled(path: str) -> None:
    log: list[str] = []

    async def child(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
            log.append(f"{name} cleaned up")

    async def worker() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(child, "a")
            tg.start_soon(child, "b")
        log.append("unreachable")  # pragma: no cover

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(worker)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
    assert handle.status is Status.CANCELLED
    assert sorted(log) == ["a cleaned up", "b cleaned up"]


async def test_a_child_failure_in_a_task_group_during_cancellation_fails_the_task(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def child() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise KeyError("cleanup failed")

    async def worker() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(child)

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(worker)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
        exc = handle.exception()
    assert handle.status is Status.FAILED
    assert isinstance(exc, ExceptionGroup)
    group = cast("ExceptionGroup[Exception]", exc)
    assert group.subgroup(KeyError) is not None
    [record] = tether_records(caplog)  # nobody awaited it: reported, once
    assert record.exc_info is not None
    assert record.exc_info[1] is exc


async def test_asyncios_own_timeout_and_task_group_in_a_cancelled_task(
    path: str,
) -> None:
    """asyncio's structures count cancellation requests: tether's stays counted
    while they unwind, so they never take it for their own."""
    if path == "trio":
        pytest.skip("asyncio's own structures")
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout and asyncio.TaskGroup are 3.11+")
    else:
        log: list[str] = []

        async def child() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                log.append("child cancelled")

        async def worker(entered: anyio.Event) -> None:
            async with asyncio.timeout(3600), asyncio.TaskGroup() as tg:
                tg.create_task(child())
                entered.set()
                await asyncio.sleep(3600)
            log.append("unreachable")  # pragma: no cover

        async with TaskRegistry() as tasks:
            entered = anyio.Event()
            handle = tasks.spawn(worker, entered)
            await entered.wait()
            await anyio.wait_all_tasks_blocked()
            handle.cancel()
            await handle.wait()
        assert handle.status is Status.CANCELLED  # not FAILED with a TimeoutError
        assert log == ["child cancelled"]


# -- deadlines: timeout= keeps anyio's scope ----------------------------------------


async def test_timeout_gives_the_builtin_timeout_error(path: str) -> None:
    async with TaskRegistry(on_error=lambda h, e: None) as tasks:
        handle = tasks.spawn(anyio.sleep_forever, timeout=0.001)
        await handle.wait()
    assert handle.status is Status.FAILED
    assert type(handle.exception()) is TimeoutError


async def test_a_task_with_a_timeout_sees_its_deadline(path: str) -> None:
    seen: list[float] = []

    async def worker() -> None:
        seen.append(anyio.current_effective_deadline())
        try:
            await anyio.sleep_forever()
        finally:
            seen.append(anyio.current_effective_deadline())

    async with TaskRegistry() as tasks:
        before = anyio.current_time()
        handle = tasks.spawn(worker, timeout=3600)
        await anyio.wait_all_tasks_blocked()
        handle.cancel()
        await handle.wait()
    assert before + 3600 <= seen[0] <= anyio.current_time() + 3600
    assert seen[1] == -math.inf  # cancelled: as anyio says inside any scope
    assert handle.status is Status.CANCELLED


async def test_a_task_with_a_timeout_has_a_deadline_scope_of_its_own(path: str) -> None:
    """The backend makes the scope of a task with a timeout (anyio's, or trio's):
    tether's own scope has no deadline, so that every other task's is two slots and
    no test of a deadline in cancel(), enter and exit."""
    release = anyio.Event()
    async with TaskRegistry() as tasks:
        timed = tasks.spawn(release.wait, timeout=3600)
        plain = tasks.spawn(release.wait)
        await anyio.wait_all_tasks_blocked()
        assert type(timed.scope_) is not scope_module.NativeScope
        assert (type(plain.scope_) is scope_module.NativeScope) == (path == "native")
        release.set()
    assert scope_module.NativeScope.__slots__ == ("state", "task")
    with pytest.raises(TypeError, match="new_deadline_scope"):
        scope_module.NativeScope().deadline = 1.0


async def test_a_task_without_a_timeout_sees_no_deadline(path: str) -> None:
    seen: list[float] = []

    async def worker() -> None:
        seen.append(anyio.current_effective_deadline())

    with anyio.move_on_after(3600):  # around the registry: never the task's
        async with TaskRegistry() as tasks:
            await tasks.spawn(worker)
    assert seen == [math.inf]


# -- foreign cancellation on asyncio -------------------------------------------------


async def test_a_foreign_cancel_of_the_raw_task_is_not_tethers(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``Task.cancel()`` from outside tether ends the task CANCELLED, and is never
    claimed by its scope as tether's own: the registry takes it for what such a
    request usually is, the event loop ending, and says so."""
    if path == "trio":
        pytest.skip("a trio task has no cancel() of its own")
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(anyio.sleep_forever)
        await anyio.wait_all_tasks_blocked()
        (raw,) = [t for t in asyncio.all_tasks() if t.get_name() == handle.name]
        assert isinstance(raw, asyncio.Task)
        raw.cancel()  # a foreign cancel, on purpose
        await handle.wait()
    assert handle.status is Status.CANCELLED
    records = tether_records(caplog)
    if sys.version_info >= (3, 11):
        [record] = records
        assert "was still open when its event loop ended" in record.getMessage()
    else:  # Python 3.10 counts no requests: nothing tells it from another cancel
        assert records == []


def _anyio_counts_at_enter() -> bool:
    """Whether anyio's asyncio CancelScope records the task's request count when
    entered, which is how it tells a foreign request from its own."""
    from anyio._backends._asyncio import CancelScope

    return "_cancelling_at_enter" in CancelScope.__slots__


@pytest.mark.parametrize("path_name", ["native", "anyio"])
@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
@pytest.mark.parametrize("tether_too", [False, True])
@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="Python 3.10's tasks do not count cancellation requests",
)
def test_the_loop_ending_is_told_from_tethers_own_cancellation(
    backend: str, path_name: str, tether_too: bool
) -> None:
    """asyncio.run() cancelling what is left is foreign, even when tether asked for
    the same task's cancellation first (the task was still cleaning up)."""
    if path_name == "anyio" and tether_too and not _anyio_counts_at_enter():
        pytest.skip(
            "this anyio's CancelScope takes a foreign request that comes while its "
            "own is delivered for its own (anyio #1214, fixed in later releases)"
        )
    kept: list[TaskRegistry] = []

    async def worker() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            if tether_too:  # cancelled by tether: clean up until the loop ends
                with anyio.CancelScope(shield=True):
                    await anyio.Event().wait()  # ended only by the loop's cancel

    async def main() -> None:
        registry = TaskRegistry(name="left")
        await registry.open()
        handle = registry.spawn(worker, name="forever")
        kept.append(registry)  # alive past the loop: only the loop's end tells
        await anyio.wait_all_tasks_blocked()
        if tether_too:
            handle.cancel()
            await anyio.wait_all_tasks_blocked()

    saved = scope_module.force(path_name == "native")
    try:
        with pytest.warns(ResourceWarning, match="'left' was still open"):
            anyio.run(main, backend_options={"use_uvloop": backend == "uvloop"})
    finally:
        scope_module.force(saved)
    assert kept[0].statistics().cancelled == 1


# -- eager task factories ------------------------------------------------------------


async def test_a_shield_holds_under_an_eager_task_factory(
    path: str, backend_name: str
) -> None:
    if backend_name != "asyncio":
        pytest.skip("eager task factories are asyncio's own (uvloop rejects them)")
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    else:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        try:
            entered, proceed, log = anyio.Event(), anyio.Event(), list[str]()
            async with TaskRegistry() as tasks:
                handle = tasks.spawn(shielded_cleanup, entered, proceed, log)
                assert log == []  # not run inside spawn
                await entered.wait()
                handle.cancel()
                await anyio.wait_all_tasks_blocked()
                proceed.set()
            assert log == [
                "cleanup",
                "cleanup done",
                "after shield",
                "cancelled again",
            ]
            assert handle.status is Status.CANCELLED
        finally:
            loop.set_task_factory(None)


# -- the guard -----------------------------------------------------------------------


@pytest.fixture
def undecided() -> Iterator[None]:
    """The path not decided yet, as in a fresh process; restored after (after the
    test's own monkeypatch is undone: the restore may load anyio's state)."""
    saved = scope_module.force(None)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(scope_module.FORCE_VARIABLE, raising=False)
        try:
            yield
        finally:
            scope_module.force(saved)


def _backend_scope() -> object:
    from tether._asyncio import AsyncioBackend

    return AsyncioBackend().new_scope


@pytest.mark.usefixtures("undecided")
class TestTheGuard:
    """The self-test at the first backend of a process, and the fallback."""

    pytestmark = pytest.mark.parametrize(
        "anyio_backend", [("asyncio", None)], ids=["asyncio"], indirect=True
    )

    async def test_the_installed_anyio_passes_the_self_test(self) -> None:
        assert scope_module.native_scopes_usable()
        assert _backend_scope() is scope_module.NativeScope

    async def test_a_reader_that_misses_shields_falls_back_and_says_so(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def never(task: object) -> bool:
            return False

        monkeypatch.setattr(scope_module, "_shielded", never)
        with caplog.at_level(logging.DEBUG, logger="tether"):
            assert _backend_scope() is type(anyio.CancelScope())
        assert not scope_module.native_scopes_usable()  # decided once
        (record,) = [r for r in caplog.records if r.name == "tether"]
        assert record.levelno == logging.DEBUG
        assert "a shielded anyio scope is not seen as one" in record.getMessage()

    async def test_anyio_without_the_state_read_falls_back(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        def moved() -> None:
            raise AttributeError("module has no attribute '_task_states'")

        monkeypatch.setattr(scope_module, "_load", moved)
        with caplog.at_level(logging.DEBUG, logger="tether"):
            assert _backend_scope() is type(anyio.CancelScope())
        assert "could not be read" in caplog.text
        assert "_task_states" in caplog.text

    async def test_the_environment_variable_forces_the_fallback(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        monkeypatch.setenv(scope_module.FORCE_VARIABLE, "anyio")
        with caplog.at_level(logging.DEBUG, logger="tether"):
            assert _backend_scope() is type(anyio.CancelScope())
        assert "forced by TETHER_ASYNCIO_SCOPE=anyio" in caplog.text

    async def test_a_misspelt_environment_variable_is_refused(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(scope_module.FORCE_VARIABLE, "anyIO")
        with pytest.raises(ValueError, match=r"TETHER_ASYNCIO_SCOPE='anyIO' is not"):
            _backend_scope()
        monkeypatch.setenv(scope_module.FORCE_VARIABLE, "native")
        assert scope_module.native_scopes_usable()


# -- the cancellation questions, asked of anyio's records ----------------------------


async def test_the_backends_cancellation_questions_answer_as_anyios() -> None:
    """Issue 27 item 4: the backend's ``current_effective_deadline`` and
    ``checkpoint_if_cancelled`` (on the native path, read from anyio's task
    records with one lookup) answer as anyio's own: outside any scope, under a
    deadline, under a cancelled scope, and inside a shield within it."""
    from tether._loop import current_backend

    backend = current_backend()
    answers: list[tuple[float, float]] = []

    def ask() -> None:
        answers.append(
            (backend.current_effective_deadline(), anyio.current_effective_deadline())
        )

    ask()
    deadline = anyio.current_time() + 100
    with anyio.CancelScope(deadline=deadline):
        ask()
        await backend.checkpoint_if_cancelled()  # not cancelled: returns
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            ask()
            with anyio.CancelScope(shield=True):
                ask()
                await backend.checkpoint_if_cancelled()  # shielded: returns
            await backend.checkpoint_if_cancelled()
            pytest.fail("a cancelled scope's checkpoint_if_cancelled returned")
        assert cancelled.cancelled_caught
    assert answers == [
        (math.inf, math.inf),
        (deadline, deadline),
        (-math.inf, -math.inf),
        (math.inf, math.inf),
    ]
