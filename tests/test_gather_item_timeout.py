"""The per-item timeout of run_all, settle_all and amap, and amap's
``return_exceptions``: a fan-out that degrades gracefully (#21 item 4).

Timing is asserted on trio only, on a mock clock that jumps ahead whenever every
task is blocked. asyncio and uvloop have no virtual clock: there these tests assert
outcomes and order only, with an item that never ends (it waits forever) timing
out and items that end at once finishing, whatever the machine's speed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed, parked

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = [pytest.mark.anyio, pytest.mark.mock_clock]

trio_only = pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)


async def quick(result: Any) -> Any:
    await anyio.lowlevel.checkpoint()
    return result


async def never_ends(record: list[str], name: str) -> None:
    record.append(f"{name} started")
    try:
        await anyio.sleep_forever()
    finally:
        record.append(f"{name} cancelled")


def item_timeout_for(backend_name: str) -> float:
    # On the mock clock any figure costs no time; on the real clock a short one
    # keeps the test short, and only an item that never ends reaches it.
    return 3.0 if backend_name == "trio" else 0.05


# -- settle_all: a TimeoutError in place ------------------------------------------


async def test_settle_all_puts_a_timeout_error_in_place_of_a_slow_item(
    backend_name: str,
) -> None:
    record: list[str] = []
    t0 = anyio.current_time()
    results = await tether.settle_all(
        quick(1),
        never_ends(record, "slow"),
        quick("x"),
        item_timeout=item_timeout_for(backend_name),
    )
    assert results[0] == 1
    assert results[2] == "x"
    timed_out = results[1]
    assert type(timed_out) is TimeoutError  # the builtin, on 3.10 as well
    assert str(timed_out).startswith("settle_all() input 2 did not finish within")
    assert record == ["slow started", "slow cancelled"]
    if backend_name == "trio":
        assert anyio.current_time() - t0 == 3.0


async def test_a_failure_and_a_timeout_each_stay_in_their_place() -> None:
    error = ValueError("bad")

    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise error

    results = await tether.settle_all(
        fail(), never_ends([], "slow"), quick(3), item_timeout=0.05
    )
    assert results[0] is error
    assert isinstance(results[1], TimeoutError)
    assert results[2] == 3


# -- run_all: a timed-out item fails the gather -----------------------------------


async def test_run_all_raises_the_timeout_of_an_item_as_it_would_a_failure(
    backend_name: str,
) -> None:
    record: list[str] = []
    with pytest.raises(TimeoutError, match=r"run_all\(\) input 2 did not finish"):
        await tether.run_all(
            quick(1),
            never_ends(record, "slow"),
            parked("sibling", record),
            item_timeout=item_timeout_for(backend_name),
        )
    # The sibling that still ran was cancelled and its cleanup awaited, as after
    # any failure.
    assert sorted(record) == ["sibling cleaned up", "slow cancelled", "slow started"]


async def test_items_that_finish_in_time_are_not_affected() -> None:
    results = await tether.run_all(quick(1), quick(2), limit=1, item_timeout=60)
    assert results == (1, 2)


async def test_a_handle_that_runs_too_long_is_no_longer_waited_for(
    backend_name: str,
) -> None:
    # A handle is only waited for, never cancelled by a gather: at its item
    # timeout the gather stops waiting and the task runs on in its registry.
    release = anyio.Event()

    async def slow() -> str:
        await release.wait()
        return "done"

    async with tether.TaskRegistry(name="app") as tasks:
        handle = tasks.spawn(slow, name="slow")
        results = await tether.settle_all(
            handle, quick(2), item_timeout=item_timeout_for(backend_name)
        )
        timed_out = results[0]
        assert isinstance(timed_out, TimeoutError)
        assert "is no longer waited for (task 'slow' runs on)" in str(timed_out)
        assert results[1] == 2
        assert not handle.done()
        release.set()
        assert await handle == "done"


# -- counted from the item's start ------------------------------------------------


@trio_only
async def test_item_timeout_counts_from_the_start_not_from_the_wait_for_a_slot() -> (
    None
):
    # 2 s each, one at a time, 3 s each allowed: the third starts at 4 s and
    # finishes at 6 s, which a deadline counted from the call would have cut.
    ends: list[float] = []
    t0 = anyio.current_time()

    async def two_seconds(i: int) -> int:
        await anyio.sleep(2)
        ends.append(anyio.current_time() - t0)
        return i

    results = await tether.settle_all(
        *(two_seconds(i) for i in range(3)), limit=1, item_timeout=3
    )
    assert results == (0, 1, 2)
    assert ends == [2.0, 4.0, 6.0]


@trio_only
async def test_time_waiting_for_a_rate_slot_is_not_counted() -> None:
    async def one_second(i: int) -> int:
        await anyio.sleep(1)
        return i

    # Starts at 0, 10 and 20 s, each running 1 s of its 2 s allowed.
    results = await tether.run_all(
        *(one_second(i) for i in range(3)), per_second=0.1, item_timeout=2
    )
    assert results == (0, 1, 2)


@trio_only
async def test_the_whole_call_timeout_still_bounds_every_item() -> None:
    # item_timeout=3, timeout=5, one at a time, each waits forever: the first
    # times out at 3 s (its own), the second is cut at 5 s by the call's
    # deadline after 2 s of its own, the third never starts.
    record: list[str] = []
    third = never_ends(record, "c")
    t0 = anyio.current_time()
    results = await tether.settle_all(
        never_ends(record, "a"),
        never_ends(record, "b"),
        third,
        limit=1,
        timeout=5,
        item_timeout=3,
    )
    assert anyio.current_time() - t0 == 5.0
    assert all(type(r) is TimeoutError for r in results)
    assert "item_timeout=3 s" in str(results[0])
    assert "within 5 s" in str(results[1])
    assert "within 5 s" in str(results[2])
    assert record == ["a started", "a cancelled", "b started", "b cancelled"]
    assert closed(third)


@trio_only
async def test_a_whole_call_timeout_shorter_than_the_item_timeout_wins() -> None:
    t0 = anyio.current_time()
    with pytest.raises(TimeoutError, match="1 of 1 inputs unfinished"):
        await tether.run_all(never_ends([], "a"), timeout=2, item_timeout=10)
    assert anyio.current_time() - t0 == 2.0


# -- amap -------------------------------------------------------------------------


async def checked(site: str) -> int:
    """A check as the CLI of the recipe makes one: some sites fail, one hangs."""
    await anyio.lowlevel.checkpoint()
    if site.startswith("down"):
        raise ConnectionError(site)
    if site == "hangs":
        await anyio.sleep_forever()
    return len(site)


SITES = ["a", "down-1", "bb", "hangs", "ccc", "down-2"]


async def test_amap_keeps_going_past_failures_with_return_exceptions() -> None:
    sites = ["a", "down-1", "bb", "down-2", "ccc"]
    async with tether.amap(checked, sites, limit=2, return_exceptions=True) as results:
        outcomes = {site: outcome async for site, outcome in results}
    assert outcomes["a"] == 1
    assert outcomes["bb"] == 2
    assert outcomes["ccc"] == 3
    for down in ("down-1", "down-2"):
        failure = outcomes[down]
        assert isinstance(failure, ConnectionError)
        assert failure.args == (down,)


async def test_amap_puts_a_timeout_error_in_place_and_goes_on(
    backend_name: str,
) -> None:
    async with tether.amap(
        checked,
        SITES,
        limit=3,
        item_timeout=item_timeout_for(backend_name),
        return_exceptions=True,
    ) as results:
        outcomes = {site: outcome async for site, outcome in results}
    assert set(outcomes) == set(SITES)
    hung = outcomes["hangs"]
    assert type(hung) is TimeoutError
    assert str(hung).startswith("amap() hangs did not finish within item_timeout=")
    assert [outcomes[s] for s in ("a", "bb", "ccc")] == [1, 2, 3]


async def test_amap_without_return_exceptions_raises_an_item_timeout(
    backend_name: str,
) -> None:
    seen: list[str] = []

    async def consume() -> None:
        async with tether.amap(
            checked,
            ["a", "hangs"],
            limit=2,
            item_timeout=item_timeout_for(backend_name),
        ) as results:
            async for site, _ in results:
                seen.append(site)

    with pytest.raises(TimeoutError, match="hangs did not finish"):
        await consume()
    assert seen == ["a"]


async def test_amap_with_return_exceptions_still_raises_a_failure_to_iterate() -> None:
    async def sites() -> AsyncIterator[str]:
        yield "a"
        raise OSError("the list of sites could not be read")

    async def consume() -> None:
        async with tether.amap(
            checked, sites(), limit=2, return_exceptions=True
        ) as results:
            async for _ in results:
                pass

    with pytest.raises(OSError, match="could not be read"):
        await consume()


@trio_only
async def test_amap_item_timeout_counts_from_each_items_start() -> None:
    ends: dict[int, float] = {}
    t0 = anyio.current_time()

    async def two_seconds(i: int) -> int:
        await anyio.sleep(2)
        ends[i] = anyio.current_time() - t0
        return i

    async with tether.amap(two_seconds, range(4), limit=1, item_timeout=3) as results:
        got = [result async for _, result in results]
    assert got == [0, 1, 2, 3]
    assert ends == {0: 2.0, 1: 4.0, 2: 6.0, 3: 8.0}


# -- values -----------------------------------------------------------------------
# (Bad values are refused by the one table of the gathers' options, in
# tests/test_gather_bad_input.py.)


def test_an_infinite_item_timeout_means_none() -> None:
    # Accepted, as anyio accepts an infinite deadline: it never expires.
    tether.amap(checked, SITES, limit=2, item_timeout=math.inf)
