"""run_all: deferred start, input order, fail-fast, what it cancels, shields, and
agreement with asyncio.gather and anyio.gather, on every backend."""

from __future__ import annotations

import functools
import gc
import logging
import sys
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import park, parked, tether_records
from tether import Status, TaskRegistry

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

T = TypeVar("T")


class RecordedCall(functools.partial[Coroutine[Any, Any, str]]):
    """A zero-argument async callable that records the moment it is called.

    A subclass of ``functools.partial`` still counts as an async callable (inspect
    unwraps partials), and its ``__call__`` is the only place the call itself can be
    seen: calling an ``async def`` runs none of its body.
    """

    record: list[str]

    def __call__(self, /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, str]:
        self.record.append(f"call {self.args[0]}")
        return super().__call__(*args, **kwargs)


async def job(name: str, record: list[str]) -> str:
    record.append(f"{name} runs")
    await anyio.lowlevel.checkpoint()
    record.append(f"{name} ends")
    return name


def recorded(name: str, record: list[str]) -> RecordedCall:
    call = RecordedCall(job, name, record)
    call.record = record
    return call


async def gated(gate: anyio.Event, value: T, done: list[object]) -> T:
    await gate.wait()
    done.append(value)
    return value


async def release_one_by_one(releases: Sequence[Callable[[], object]]) -> None:
    """Call each release once every task is blocked, so completions are ordered."""
    for release in releases:
        await anyio.wait_all_tasks_blocked()
        release()


# -- deferred start ---------------------------------------------------------------


async def test_nothing_starts_before_run_all_is_awaited() -> None:
    record: list[str] = []
    pending = tether.run_all(job("a", record), recorded("b", record))
    await anyio.wait_all_tasks_blocked()
    assert record == []  # nothing ran, and the callable was not even called
    assert await pending == ("a", "b")
    assert sorted(record) == ["a ends", "a runs", "b ends", "b runs", "call b"]
    assert record.index("call b") < record.index("b runs")


async def test_a_callable_is_called_only_when_its_slot_frees() -> None:
    record: list[str] = []
    calls = [recorded(name, record) for name in "abc"]
    assert await tether.run_all(*calls, limit=1) == ("a", "b", "c")
    assert record == [
        *("call a", "a runs", "a ends"),
        *("call b", "b runs", "b ends"),
        *("call c", "c runs", "c ends"),
    ]


# -- results ----------------------------------------------------------------------


async def test_results_come_in_input_order_for_mixed_inputs(backend_name: str) -> None:
    done: list[object] = []
    gates = [anyio.Event() for _ in range(3)]
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(gated, gates[1], 2, done)
        work: list[Any] = [
            gated(gates[0], "one", done),  # a coroutine object
            handle,  # a registry task's handle
            functools.partial(gated, gates[2], 3.0, done),  # a zero-arg callable
        ]
        expected: list[object] = ["one", 2, 3.0]
        releases: list[Callable[[], object]] = [gate.set for gate in gates]
        if backend_name != "trio":  # only asyncio has futures of its own
            import asyncio

            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            work.append(future)
            expected.append(b"four")

            def resolve() -> None:
                future.set_result(b"four")
                done.append(b"four")

            releases.append(resolve)
        results: tuple[Any, ...] = ()
        async with anyio.create_task_group() as tg:
            # The last input finishes first, the first last.
            tg.start_soon(release_one_by_one, releases[::-1])
            results = await tether.run_all(*work)
        assert done == expected[::-1]
        assert results == tuple(expected)


async def test_no_inputs_give_an_empty_tuple() -> None:
    assert await tether.run_all() == ()


# -- fail-fast --------------------------------------------------------------------


async def test_the_first_failure_is_raised_bare_after_the_siblings_cleanup() -> None:
    record: list[str] = []

    async def fail() -> None:
        await anyio.wait_all_tasks_blocked()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom") as caught:
        await tether.run_all(parked("a", record), fail(), parked("b", record))
    assert type(caught.value) is ValueError  # bare: no ExceptionGroup
    assert sorted(record) == ["a cleaned up", "b cleaned up"]  # before run_all ended
    assert getattr(caught.value, "__notes__", []) == []


async def test_failures_seen_before_the_cancellation_took_effect_become_notes() -> None:
    gate = anyio.Event()

    async def fail(message: str) -> None:
        await gate.wait()
        raise ValueError(message)

    async with anyio.create_task_group() as tg:
        # Both wake in the same scheduling round: the second fails before the
        # cancellation caused by the first can reach it.
        tg.start_soon(release_one_by_one, [gate.set])
        with pytest.raises(ValueError, match=r"^(first|second)\n") as caught:
            await tether.run_all(fail("first"), fail("second"))
        assert type(caught.value) is ValueError
        if str(caught.value) == "first":
            expected = "run_all input 2 also failed: ValueError('second')"
        else:  # trio wakes tasks in an unspecified order
            expected = "run_all input 1 also failed: ValueError('first')"
        assert getattr(caught.value, "__notes__", []) == [expected]


async def test_failures_after_a_checkpoint_in_one_step_all_become_notes() -> None:
    """Regression (issue 19): on trio the siblings of the first failure were
    cancelled inside their checkpoint (trio's checkpoint() looks for a cancellation
    after its schedule point), so their failures never happened and Boom('3') came
    without notes. The cancellation now lands after the step, as on asyncio."""

    class Boom(Exception):
        pass

    async def fail(n: int) -> None:
        await anyio.lowlevel.checkpoint()
        raise Boom(str(n))

    with pytest.raises(Boom) as caught:
        await tether.run_all(*(fail(n) for n in range(4)))
    notes: list[str] = getattr(caught.value, "__notes__", [])
    failed = sorted([str(caught.value)] + [note[-3] for note in notes])
    assert failed == ["0", "1", "2", "3"]  # every failure, once: raised or a note
    assert all("also failed: Boom(" in note for note in notes)


async def test_an_input_cancelled_from_outside_is_a_failure(backend_name: str) -> None:
    """A cancellation run_all did not cause is the input's outcome, raised as
    TaskCancelled, never the backend's cancellation and never a missing result.
    asyncio only: there an input can await a future that its owner cancels."""
    if backend_name == "trio":
        pytest.skip("a trio input cannot be cancelled by anything but its caller")
    import asyncio

    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def awaits_cancelled() -> int:
        inner: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        inner.cancel()
        return await inner

    future.cancel()
    for work in (future, awaits_cancelled()):
        with pytest.raises(
            tether.TaskCancelled, match="input 1 was cancelled from out"
        ):
            await tether.run_all(work)
    settled = await tether.settle_all(awaits_cancelled(), asyncio.sleep(0, "ok"))
    assert isinstance(settled[0], tether.TaskCancelled)
    assert settled[1] == "ok"
    with pytest.raises(ExceptionGroup) as group:
        await tether.race(awaits_cancelled())
    assert [type(exc) for exc in group.value.exceptions] == [tether.TaskCancelled]


# -- what run_all cancels -----------------------------------------------------------


async def test_run_all_never_cancels_a_handle_or_future_it_was_given(
    backend_name: str,
) -> None:
    async def fail() -> None:
        await anyio.wait_all_tasks_blocked()
        raise ValueError("boom")

    async def wait_for(*work: Any) -> None:
        await tether.run_all(*work)

    async with TaskRegistry() as tasks:
        gate = anyio.Event()
        handle = tasks.spawn(park, gate)
        others: list[Any] = []
        if backend_name != "trio":
            import asyncio

            others.append(asyncio.get_running_loop().create_future())

        with pytest.raises(ValueError, match="boom"):  # run_all fails ...
            await tether.run_all(handle, *others, fail())
        async with anyio.create_task_group() as tg:  # ... or is cancelled
            tg.start_soon(wait_for, handle, *others)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()

        assert handle.status is Status.RUNNING
        for future in others:
            assert not future.done()
            future.set_result(None)
        gate.set()
        assert await handle == "released"


async def test_a_handle_delivers_its_failure_to_run_all_even_once_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fail() -> None:
        await anyio.wait_all_tasks_blocked()  # run_all is waiting on the handle
        raise ValueError("boom")

    handles: list[tether.Handle[Any]] = []
    async with TaskRegistry() as tasks:  # on_error="log"
        handles.append(tasks.spawn(fail))
        handles.append(tasks.spawn(park, anyio.Event()))
        handles[1].cancel()
        with pytest.raises(ValueError, match="boom"):
            await tether.run_all(handles[0])
    # Delivered to the run_all that awaited it, so not reported as well.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Handles of a closed registry are final, and accepted.
    with pytest.raises(ValueError, match="boom"):
        await tether.run_all(handles[0])
    with pytest.raises(tether.TaskCancelled):
        await tether.run_all(handles[1])


async def test_a_handle_run_all_stopped_waiting_for_reports_its_own_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """run_all waits for a handle as one of its awaiters, without a task of its
    own (#26 item 8); once it stops waiting (a sibling input failed), a later
    failure of the handle is its registry's to report, once."""
    gate = anyio.Event()

    async def fail_when(event: anyio.Event) -> None:
        await event.wait()
        raise KeyError("later")

    async def fail_now() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("now")

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(fail_when, gate)
        with pytest.raises(ValueError, match="now"):
            await tether.run_all(handle, fail_now())
        assert handle.status is Status.RUNNING
        gate.set()
        await handle.wait()
        [record] = tether_records(caplog)
        assert record.exc_info is not None
        assert record.exc_info[1] is handle.exception()


async def test_a_shielded_part_of_a_child_survives_a_siblings_failure() -> None:
    record: list[str] = []
    in_shield = anyio.Event()

    async def shielded() -> None:
        try:
            with anyio.CancelScope(shield=True):
                in_shield.set()
                await anyio.wait_all_tasks_blocked()  # the sibling fails meanwhile
                for _ in range(3):
                    await anyio.lowlevel.checkpoint()  # would raise if unshielded
                record.append("shielded part completed")
            await anyio.sleep_forever()
        finally:
            record.append("cancelled after the shield")

    async def fail() -> None:
        await in_shield.wait()
        record.append("sibling fails")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await tether.run_all(shielded(), fail())
    assert record == [
        "sibling fails",
        "shielded part completed",
        "cancelled after the shield",
    ]


# -- the same results as the references ------------------------------------------


async def _asyncio_gather(*coros: Coroutine[Any, Any, int]) -> tuple[int, ...]:
    import asyncio

    return tuple(await asyncio.gather(*coros))


async def _anyio_gather(*coros: Coroutine[Any, Any, int]) -> tuple[int, ...]:
    gather: Any = getattr(anyio, "gather", None)  # new in anyio 4.15
    return tuple(await gather(*coros))


async def _scenario(
    gather: Callable[..., Coroutine[Any, Any, tuple[int, ...]]],
    release_order: tuple[int, ...],
) -> tuple[tuple[int, ...], list[object]]:
    completed: list[object] = []
    gates = [anyio.Event() for _ in release_order]
    results: tuple[int, ...] = ()
    async with anyio.create_task_group() as tg:
        tg.start_soon(release_one_by_one, [gates[i].set for i in release_order])
        results = await gather(
            *(gated(gate, 10 * i, completed) for i, gate in enumerate(gates))
        )
    return results, completed


@pytest.mark.parametrize("reference", ["asyncio.gather", "anyio.gather"])
@pytest.mark.parametrize(
    "release_order", [(), (0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)]
)
async def test_results_and_order_match_the_reference(
    reference: str, release_order: tuple[int, ...], backend_name: str
) -> None:
    """run_all returns what the reference returns, in the same order, whatever
    the completion order. Results and order only: the error shape differs on
    purpose (asyncio.gather neither cancels the other inputs nor groups; anyio.gather
    always raises an ExceptionGroup; run_all cancels and raises the first bare)."""
    if reference == "asyncio.gather":
        if backend_name == "trio":
            pytest.skip("asyncio.gather needs an asyncio event loop")
        gather = _asyncio_gather
    else:
        if not hasattr(anyio, "gather"):
            pytest.skip("anyio.gather appeared in anyio 4.15")
        gather = _anyio_gather

    async def ours(*coros: Coroutine[Any, Any, int]) -> tuple[int, ...]:
        return await tether.run_all(*coros)

    expected = await _scenario(gather, release_order)
    assert await _scenario(ours, release_order) == expected
    assert expected == (
        tuple(10 * i for i in range(len(release_order))),
        [10 * i for i in release_order],
    )


async def test_a_run_all_child_parked_on_a_future_only_it_holds_survives_collection(
    backend_name: str,
) -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a run_all child parked on a future that only it held could be garbage-collected
    mid-flight; tether now holds every child by a strong reference of its own."""
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


async def test_race_reports_a_failed_handle_when_another_input_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    race dropped the failure of a handle when another input won."""
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
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    race reported again a failure its registry had already reported."""

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
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    a run_all child failing after the caller had left was lost."""

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
