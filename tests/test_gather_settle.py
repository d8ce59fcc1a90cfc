"""settle_all and race: every outcome per position, the first success, and the
BaseExceptions and cancellations that still propagate, on every backend.

Timing is asserted on trio only, on a mock clock; asyncio and uvloop have no
virtual clock, so there the timeout test asserts outcomes and order only.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed, parked
from tether import Status, TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Coroutine

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = [pytest.mark.anyio, pytest.mark.mock_clock]


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt: raising the real one inside a test would
    look to pytest like the user pressing Ctrl-C, and stop the whole run."""


async def value(result: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    return result


async def raise_(exc: BaseException) -> None:
    await anyio.lowlevel.checkpoint()
    raise exc


async def released(gate: anyio.Event, result: Any) -> Any:
    await gate.wait()
    return result


async def set_when_blocked(gate: anyio.Event) -> None:
    await anyio.wait_all_tasks_blocked()
    gate.set()


# -- settle_all -------------------------------------------------------------------


async def test_settle_all_gives_each_result_or_exception_in_input_order() -> None:
    error = ValueError("bad")
    results = await tether.settle_all(value(1), raise_(error), value("x"))
    assert results == (1, error, "x")
    assert results[1] is error  # the input's own exception object


async def test_settle_all_never_fails_fast_a_slow_sibling_completes() -> None:
    gate = anyio.Event()
    results: tuple[Any, ...] = ()
    async with anyio.create_task_group() as tg:
        tg.start_soon(set_when_blocked, gate)  # after the failure has happened
        results = await tether.settle_all(
            raise_(ValueError("early")), released(gate, 2)
        )
    assert isinstance(results[0], ValueError)
    assert results[1] == 2


async def test_settle_all_timeout_makes_unfinished_items_timeout_errors(
    backend_name: str,
) -> None:
    record: list[str] = []
    t0 = anyio.current_time()
    waiting = value("never started")
    # asyncio has no virtual clock: its deadline must leave room for the quick and
    # the failing input to run first even on a loaded machine (10 ms did not).
    timeout = 5.0 if backend_name == "trio" else 0.5
    results = await tether.settle_all(
        value("quick"),
        raise_(ValueError("failed")),
        parked("slow", record),
        waiting,  # still waiting for the slot the slow one holds
        limit=1,
        timeout=timeout,
    )
    assert results[0] == "quick"
    assert isinstance(results[1], ValueError)
    for item in results[2:]:
        assert type(item) is TimeoutError
        assert f"did not finish within {timeout} s" in str(item)
    assert record == ["slow cleaned up"]
    assert closed(waiting)
    if backend_name == "trio":
        assert anyio.current_time() - t0 == pytest.approx(5.0)


# -- what propagates --------------------------------------------------------------


async def _settle_all(*work: Coroutine[Any, Any, Any]) -> object:
    return await tether.settle_all(*work)


async def _race(*work: Coroutine[Any, Any, Any]) -> object:
    return await tether.race(*work)


async def _run_all(*work: Coroutine[Any, Any, Any]) -> object:
    return await tether.run_all(*work)


APIS = [
    pytest.param(_run_all, id="run_all"),
    pytest.param(_settle_all, id="settle_all"),
    pytest.param(_race, id="race"),
]


@pytest.mark.parametrize("api", APIS)
async def test_a_base_exception_propagates_bare_after_cleanup(api: Any) -> None:
    record: list[str] = []

    async def interrupt() -> None:
        await anyio.wait_all_tasks_blocked()
        raise Interrupt

    with pytest.raises(Interrupt) as caught:
        await api(parked("sibling", record), interrupt())
    assert type(caught.value) is Interrupt  # bare, never grouped or reported
    assert record == ["sibling cleaned up"]


@pytest.mark.parametrize("api", APIS)
async def test_cancelling_the_caller_cancels_every_child_and_propagates(
    api: Any,
) -> None:
    record: list[str] = []

    async def caller() -> None:
        try:
            await api(parked("a", record), parked("b", record))
        except anyio.get_cancelled_exc_class():  # bare, not in a group
            record.append("cancellation propagated")
            raise
        record.append("returned")  # never

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert sorted(record[:2]) == ["a cleaned up", "b cleaned up"]
    assert record[2:] == ["cancellation propagated"]


# -- race -------------------------------------------------------------------------


async def test_race_returns_the_first_success_after_the_rest_cleaned_up() -> None:
    record: list[str] = []

    async def winner() -> str:
        await anyio.wait_all_tasks_blocked()
        return "won"

    assert (
        await tether.race(parked("a", record), winner(), parked("b", record)) == "won"
    )
    assert sorted(record) == ["a cleaned up", "b cleaned up"]  # before race returned


async def test_failures_before_a_success_do_not_end_the_race() -> None:
    async def late() -> str:
        await anyio.wait_all_tasks_blocked()  # both failures have happened by now
        return "late"

    result = await tether.race(raise_(ValueError("a")), late(), raise_(OSError("b")))
    assert result == "late"


async def test_a_losers_failure_is_logged_never_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure of an input that lost was dropped with no record at all (#26
    item 7): it is logged at INFO, with its traceback."""
    failure = ValueError("a")

    async def late() -> str:
        await anyio.wait_all_tasks_blocked()
        return "late"

    assert await tether.race(raise_(failure), late()) == "late"
    [record] = [r for r in caplog.records if r.name == "tether"]
    assert record.levelname == "INFO"
    assert record.getMessage() == "race input 1 failed and input 2 won: ValueError('a')"
    assert record.exc_info is not None
    assert record.exc_info[1] is failure


async def test_the_first_to_finish_is_the_first_item_of_as_completed() -> None:
    """race is the first success: a trio user who wants the first to finish, and
    so sees a failure that finishes first, takes as_completed's first item (the
    recipe of docs/trio.md; #26 item 7)."""
    record: list[str] = []
    async with tether.as_completed(
        raise_(ConnectionError("first to finish")), parked("slow", record)
    ) as done:
        with pytest.raises(ConnectionError, match="first to finish"):
            await done.__anext__()
    assert record == ["slow cleaned up"]


async def test_race_raises_a_group_of_every_failure_in_input_order() -> None:
    errors = [ValueError("first input"), KeyError("second"), OSError("third")]
    gates = [anyio.Event() for _ in errors]

    async def fail(gate: anyio.Event, exc: Exception) -> None:
        await gate.wait()
        raise exc

    async def release_backwards() -> None:
        for gate in reversed(gates):
            await anyio.wait_all_tasks_blocked()
            gate.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_backwards)
        with pytest.raises(ExceptionGroup, match="every race") as caught:
            await tether.race(*(fail(g, e) for g, e in zip(gates, errors, strict=True)))
        assert list(caught.value.exceptions) == errors


async def test_race_never_cancels_a_handle_it_was_given() -> None:
    gate = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(released, gate, "handle")
        assert await tether.race(handle, value("coroutine")) == "coroutine"
        assert handle.status is Status.RUNNING
        gate.set()
        assert await handle == "handle"


async def test_race_with_no_inputs_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"race\(\) needs at least one input"):
        await tether.race()


# -- one handle (issue 27 item 4: the short-lived gathers) -------------------------


async def test_a_gather_of_one_finished_handle_gives_its_outcome() -> None:
    """settle_all and as_completed of one handle that has already ended, with a
    result or a failure (received by the registry's callable first)."""
    reported: list[Exception] = []
    boom = ValueError("boom")
    async with TaskRegistry(on_error=lambda _, exc: reported.append(exc)) as tasks:
        succeeded, failed = tasks.spawn(value, 1), tasks.spawn(raise_, boom)
        await tasks.wait_idle()
        assert await tether.settle_all(succeeded) == (1,)
        assert await tether.settle_all(failed) == (boom,)
        async with tether.as_completed(succeeded) as done:
            assert [pair async for pair in done] == [(0, 1)]
        with pytest.raises(ValueError, match="boom"):  # noqa: PT012 - the iteration raises
            async with tether.as_completed(failed) as done:
                async for _ in done:
                    pass  # pragma: no cover - never reached
    assert reported == [boom]


async def gather_one(api: str, handle: tether.Handle[int]) -> None:
    """Gather the one ``handle`` with ``api``; the caller is cancelled first."""
    if api == "settle_all":
        await tether.settle_all(handle)
    else:
        async with tether.as_completed(handle) as done:
            async for _ in done:
                pass  # pragma: no cover - cancelled first


@pytest.mark.parametrize("api", ["settle_all", "as_completed"])
async def test_cancelling_a_gather_of_one_handle_stops_the_wait_not_the_task(
    api: str,
) -> None:
    """A gather of one handle cancelled while it waits: the cancellation
    propagates, and the handle's task runs on (a handle is only waited for); a
    failure it has later is its registry's to report, once."""
    gate = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(released, gate, 2)
        with anyio.CancelScope() as caller:

            async def cancel_when_blocked() -> None:
                await anyio.wait_all_tasks_blocked()
                caller.cancel()

            tasks.spawn(cancel_when_blocked)
            await gather_one(api, handle)
        assert caller.cancelled_caught
        assert handle.status is Status.RUNNING
        gate.set()
        assert await handle == 2


@pytest.mark.parametrize("api", ["settle_all", "as_completed"])
async def test_a_gather_of_one_handle_in_a_cancelled_caller_raises_at_once(
    api: str,
) -> None:
    """Level-triggered: a caller already cancelled sees it at the one-handle
    gather, which leaves the handle's task alone."""
    gate = anyio.Event()
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(released, gate, 3)
        with anyio.CancelScope() as caller:
            caller.cancel()
            await gather_one(api, handle)
        assert caller.cancelled_caught
        gate.set()
        assert await handle == 3
