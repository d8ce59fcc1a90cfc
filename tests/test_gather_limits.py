"""run_all's options: limit, per_second and burst, timeout, and the coroutines it
never starts, which it closes.

Timing is asserted on trio only, on a mock clock that jumps ahead whenever every
task is blocked. asyncio and uvloop have no virtual clock: there these tests assert
the order of events only, with real deadlines short enough not to slow the run.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed, parked

pytestmark = [pytest.mark.anyio, pytest.mark.mock_clock]


async def never_started(name: str, record: list[str]) -> None:
    record.append(f"{name} started")  # pragma: no cover - the tests assert it is not


# -- limit ------------------------------------------------------------------------


async def test_limit_bounds_how_many_inputs_run_at_once() -> None:
    running = peak = 0

    async def child(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        running -= 1
        return i

    results = await tether.run_all(*(child(i) for i in range(10)), limit=3)
    assert results == tuple(range(10))
    assert peak == 3


# -- per_second and burst ---------------------------------------------------------


async def test_per_second_spaces_the_starts(backend_name: str) -> None:
    starts: list[tuple[int, float]] = []
    t0 = anyio.current_time()

    async def child(i: int) -> int:
        starts.append((i, anyio.current_time() - t0))
        return i

    # On the real clock a fast rate keeps the test short; order is all it checks.
    per_second = 1.0 if backend_name == "trio" else 1000.0
    results = await tether.run_all(*(child(i) for i in range(4)), per_second=per_second)
    assert results == (0, 1, 2, 3)
    assert [i for i, _ in starts] == [0, 1, 2, 3]
    if backend_name == "trio":
        assert [t for _, t in starts] == pytest.approx([0.0, 1.0, 2.0, 3.0])


async def test_burst_starts_that_many_at_once_then_spaces_the_rest(
    backend_name: str,
) -> None:
    starts: list[tuple[int, float]] = []
    t0 = anyio.current_time()

    async def child(i: int) -> int:
        starts.append((i, anyio.current_time() - t0))
        return i

    per_second = 1.0 if backend_name == "trio" else 1000.0
    work = (child(i) for i in range(6))
    results = await tether.run_all(*work, per_second=per_second, burst=3)
    assert results == tuple(range(6))
    assert sorted(i for i, _ in starts[:3]) == [0, 1, 2]  # the burst
    assert [i for i, _ in starts[3:]] == [3, 4, 5]
    if backend_name == "trio":
        times = [t for _, t in sorted(starts)]
        assert times == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])


async def test_a_failure_is_raised_at_once_not_at_the_next_rate_slot(
    backend_name: str,
) -> None:
    record: list[str] = []
    t0 = anyio.current_time()

    async def fail() -> None:
        record.append("fail started")
        raise ValueError("boom")

    second = never_started("second", record)
    with pytest.raises(ValueError, match="boom"):
        # One start every 1,000 s: the failure must not wait for the next one.
        await tether.run_all(fail(), second, per_second=0.001)
    assert record == ["fail started"]
    assert closed(second)
    if backend_name == "trio":
        assert anyio.current_time() == t0


# -- timeout ----------------------------------------------------------------------


async def test_timeout_raises_the_builtin_timeout_error_and_cancels_the_rest(
    backend_name: str,
) -> None:
    record: list[str] = []
    t0 = anyio.current_time()

    async def quick() -> str:
        return "quick"

    # asyncio has no virtual clock: the deadline leaves room for what must start
    # or finish before it even on a loaded machine.
    timeout = 5.0 if backend_name == "trio" else 0.5
    with pytest.raises(TimeoutError, match="2 of 3 inputs unfinished") as caught:
        await tether.run_all(
            quick(), parked("a", record), parked("b", record), timeout=timeout
        )
    assert type(caught.value) is TimeoutError  # the builtin, on 3.10 as well
    assert sorted(record) == ["a cleaned up", "b cleaned up"]
    if backend_name == "trio":
        assert anyio.current_time() - t0 == pytest.approx(5.0)


async def test_time_waiting_for_a_slot_counts_toward_the_timeout(
    backend_name: str,
) -> None:
    record: list[str] = []
    t0 = anyio.current_time()

    async def child(name: str, seconds: float) -> None:
        record.append(f"{name} started")
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            record.append(f"{name} cancelled")
            raise
        record.append(f"{name} finished")

    if backend_name == "trio":
        # 3 s each, one at a time: the second starts at 3 and the deadline at 5
        # cuts it short, though it ran for only 2 s of its own.
        with pytest.raises(TimeoutError):
            await tether.run_all(child("a", 3), child("b", 3), limit=1, timeout=5)
        assert record == ["a started", "a finished", "b started", "b cancelled"]
        assert anyio.current_time() - t0 == pytest.approx(5.0)
    else:
        # Order only: the first never ends in time, so the second waits for its
        # slot until the deadline and never starts.
        second = child("b", 0)
        with pytest.raises(TimeoutError):
            await tether.run_all(child("a", 3600), second, limit=1, timeout=0.5)
        assert record == ["a started", "a cancelled"]
        assert closed(second)


async def test_a_zero_timeout_starts_nothing() -> None:
    record: list[str] = []
    work = [parked("a", record), parked("b", record)]
    with pytest.raises(TimeoutError):
        await tether.run_all(*work, timeout=0)
    assert record == []
    assert all(closed(coro) for coro in work)


# -- coroutines that never start are closed ----------------------------------------


async def test_coroutines_waiting_for_a_slot_are_closed_on_timeout(
    backend_name: str,
) -> None:
    record: list[str] = []
    waiting = [never_started("b", record), never_started("c", record)]
    timeout = 1.0 if backend_name == "trio" else 0.5
    with pytest.raises(TimeoutError, match="3 of 3 inputs unfinished"):
        await tether.run_all(parked("a", record), *waiting, limit=1, timeout=timeout)
    assert record == ["a cleaned up"]
    assert all(closed(coro) for coro in waiting)


async def test_coroutines_waiting_for_a_slot_are_closed_on_cancellation() -> None:
    record: list[str] = []
    waiting = [never_started("b", record), never_started("c", record)]

    async def caller() -> None:
        await tether.run_all(parked("a", record), *waiting, limit=1)

    async with anyio.create_task_group() as tg:
        tg.start_soon(caller)
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    assert record == ["a cleaned up"]
    assert all(closed(coro) for coro in waiting)


async def test_a_caller_cancelled_beforehand_starts_nothing() -> None:
    record: list[str] = []
    work = [parked("a", record), parked("b", record)]
    with anyio.CancelScope() as scope:
        scope.cancel()
        await tether.run_all(*work)
    assert scope.cancelled_caught
    assert record == []
    assert all(closed(coro) for coro in work)
