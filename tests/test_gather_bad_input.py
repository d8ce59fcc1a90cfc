"""Bad input to run_all, settle_all, race, as_completed and amap fails at once,
with an error naming the argument, and leaves nothing running or unclosed."""

from __future__ import annotations

import functools
import math
from typing import Any

import anyio
import pytest

import tether
from helpers import closed, double, park

pytestmark = pytest.mark.anyio


async def job(record: list[str]) -> str:
    record.append("job ran")  # pragma: no cover - the tests assert it never runs
    return "job"


async def fetch(url: str) -> str:  # an async function that needs an argument
    return url  # pragma: no cover


def compute() -> int:  # a sync function
    return 1  # pragma: no cover


async def call(api: str, *work: Any, **options: Any) -> None:
    """Await ``api`` over ``work`` the way a user would."""
    if api == "run_all":
        await tether.run_all(*work, **options)
    elif api == "settle_all":
        await tether.settle_all(*work, **options)
    elif api == "race":
        await tether.race(*work, **options)
    else:
        async with tether.as_completed(*work, **options) as done:
            async for _ in done:  # pragma: no cover - refused before this
                pass


WORK_APIS = ["run_all", "settle_all", "race", "as_completed"]


@pytest.mark.parametrize("api", WORK_APIS)
async def test_a_non_awaitable_is_refused_naming_its_position(api: str) -> None:
    record: list[str] = []
    first, second = job(record), job(record)
    with pytest.raises(TypeError, match=r"argument 3 \(42\) is not awaitable"):
        await call(api, first, second, 42)
    assert closed(first)
    assert closed(second)
    await anyio.wait_all_tasks_blocked()
    assert record == []


@pytest.mark.parametrize("api", WORK_APIS)
async def test_an_async_function_passed_uncalled_is_refused(api: str) -> None:
    record: list[str] = []
    first = job(record)
    with pytest.raises(
        TypeError,
        match=r"argument 2 \(fetch\) is an async function that needs arguments, "
        r"passed uncalled; call it, fetch\(\.\.\.\), or bind them with "
        r"functools\.partial",
    ):
        await call(api, first, fetch)
    assert closed(first)
    assert record == []


@pytest.mark.parametrize("api", WORK_APIS)
async def test_a_coroutine_that_already_ran_is_refused_before_anything_starts(
    api: str,
) -> None:
    """#21 item 8: an already-awaited coroutine raised CPython's raw "cannot reuse
    already awaited coroutine" from inside the engine, after the other inputs had
    started; it is refused up front, as spawn refuses one, and nothing runs."""
    record: list[str] = []
    spent = fetch("https://example.org")
    assert await spent == "https://example.org"
    first = job(record)
    with pytest.raises(TypeError) as info:
        await call(api, first, spent, functools.partial(job, record))
    assert str(info.value).startswith(
        f"{api}() argument 2 is a coroutine (fetch) that has already run: a "
        "coroutine runs only once. Call the async function again for a fresh one: "
        f"{api}(fetch(...))"
    )
    assert "cannot reuse" not in str(info.value)
    assert closed(first)
    await anyio.wait_all_tasks_blocked()
    assert record == []


async def test_a_coroutine_another_task_awaits_is_refused_and_left_running() -> None:
    record: list[str] = []
    release = anyio.Event()
    busy = park(release)
    results: list[str] = []

    async def owner() -> None:
        results.append(await busy)

    async with anyio.create_task_group() as tg:
        tg.start_soon(owner)
        await anyio.wait_all_tasks_blocked()
        first = job(record)
        with pytest.raises(TypeError, match=r"argument 2 is a coroutine \(park\)"):
            await tether.run_all(first, busy)
        assert closed(first)
        release.set()
    assert results == ["released"]
    assert record == []


async def test_a_callable_returning_no_awaitable_fails_as_that_input() -> None:
    # A zero-argument sync callable is an input (`lambda: fetch(url)`); what it
    # returns must be awaitable, which is known only once it is called.
    with pytest.raises(TypeError, match=r"compute\(\) returned int, not an awaitable"):
        await tether.run_all(compute)  # type: ignore[arg-type]
    outcomes: tuple[object, ...] = await tether.settle_all(compute)  # type: ignore[arg-type]
    assert isinstance(outcomes[0], TypeError)


@pytest.mark.parametrize("api", WORK_APIS)
async def test_a_list_of_inputs_is_refused_showing_the_star(api: str) -> None:
    record: list[str] = []
    inner = [job(record), job(record)]
    with pytest.raises(TypeError, match=rf"argument 1 is a list.*{api}\(\*items\)"):
        await call(api, inner)
    assert all(closed(coro) for coro in inner)  # nothing warns "never awaited"
    assert record == []


@pytest.mark.parametrize("api", ["run_all", "settle_all", "as_completed"])
@pytest.mark.parametrize("limit", [0, -1, 2.5, "3", True])
async def test_a_bad_limit_is_refused(api: str, limit: object) -> None:
    """A number out of range is a ValueError, a value of another type a TypeError."""
    record: list[str] = []
    first = job(record)
    error = TypeError if isinstance(limit, str | bool | float) else ValueError
    with pytest.raises(
        error, match=rf"{api}\(limit={limit!r}\): limit must be a whole number"
    ):
        await call(api, first, limit=limit)
    assert closed(first)
    assert record == []


@pytest.mark.parametrize("api", ["run_all", "settle_all", "as_completed"])
async def test_a_list_of_inputs_with_a_bad_limit_closes_the_inner_coroutines(
    api: str,
) -> None:
    """Review defect: a bad ``limit`` is refused before the inputs are looked at,
    and the coroutines of a list passed by mistake were left unclosed ("never
    awaited"); the option's error now closes them as the list's error does."""
    record: list[str] = []
    inner = [job(record), job(record)]
    with pytest.raises(ValueError, match=rf"{api}\(limit=0\)"):
        await call(api, inner, limit=0)
    assert all(closed(coro) for coro in inner)
    assert record == []


#: The one table of the gathers' options but ``limit`` (above): a wrong type is a
#: TypeError, a value out of range a ValueError.
OPTIONS = [
    pytest.param({"per_second": 0}, ValueError, r"per_second=0\): per_second must be"),
    pytest.param({"per_second": -1}, ValueError, r"per_second=-1\): per_second must"),
    pytest.param({"per_second": math.inf}, ValueError, r"per_second=inf\): per_second"),
    pytest.param({"per_second": "2"}, TypeError, r"per_second='2'\): per_second"),
    pytest.param({"burst": 0}, ValueError, r"burst=0\): burst must be a whole number"),
    pytest.param({"burst": 1.0}, TypeError, r"burst=1.0\): burst must be a whole"),
    # The defaults skip the checks (issue 27 item 4): a bool equal to 1 must not.
    pytest.param({"burst": True}, TypeError, r"burst=True\): burst must be a whole"),
    pytest.param({"timeout": -1}, ValueError, r"timeout=-1\): timeout must be"),
    pytest.param({"timeout": math.nan}, ValueError, r"timeout=nan\): timeout must be"),
    pytest.param({"timeout": "1"}, TypeError, r"timeout='1'\): timeout must be"),
    pytest.param({"item_timeout": 0}, ValueError, r"item_timeout=0\): item_timeout"),
    pytest.param({"item_timeout": -1}, ValueError, r"item_timeout=-1\): item_"),
    pytest.param({"item_timeout": math.nan}, ValueError, r"item_timeout=nan\): "),
    pytest.param({"item_timeout": "3"}, TypeError, r"item_timeout='3'\): item_"),
    pytest.param({"item_timeout": True}, TypeError, r"item_timeout=True\): item_"),
]


@pytest.mark.parametrize("api", ["run_all", "settle_all"])
@pytest.mark.parametrize(("options", "error", "message"), OPTIONS)
async def test_a_bad_option_is_refused_naming_it(
    api: str, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    record: list[str] = []
    first = job(record)
    with pytest.raises(error, match=rf"{api}\({message}"):
        await call(api, first, **options)
    assert closed(first)
    assert record == []


# -- amap -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_timeout", "error"),
    [(0, ValueError), (-1, ValueError), (math.nan, ValueError), ("3", TypeError)],
)
def test_amap_refuses_a_bad_item_timeout_when_called(
    item_timeout: object, error: type[Exception]
) -> None:
    with pytest.raises(
        error,
        match=rf"amap\(item_timeout={item_timeout!r}\): item_timeout must be a "
        r"number of seconds > 0 \(how long each input may run, counted from its own "
        r"start\), e.g. item_timeout=3.5, or None for no per-item timeout",
    ):
        tether.amap(double, [1], limit=2, item_timeout=item_timeout)  # type: ignore[call-overload]


def test_amap_refuses_a_return_exceptions_that_is_not_a_bool() -> None:
    with pytest.raises(
        TypeError,
        match=r"amap\(return_exceptions='yes'\): return_exceptions must be True or",
    ):
        tether.amap(double, [1], limit=2, return_exceptions="yes")  # type: ignore[call-overload]


async def test_amap_refuses_a_sync_function() -> None:
    def double(x: int) -> int:
        return 2 * x  # pragma: no cover

    with pytest.raises(TypeError, match=r"amap\(\) takes an async function"):
        tether.amap(double, [1, 2], limit=2)  # type: ignore[arg-type]


async def test_amap_names_each_wrong_fn_and_its_own_fix() -> None:
    """#21 item 8: a coroutine object, a sync function and a non-callable all got
    "Make it `async def`", wrong for the first two, and the coroutine was left
    unclosed ("never awaited")."""
    calls: list[object] = []

    async def work(x: object) -> object:
        calls.append(x)  # pragma: no cover - must never run
        return x  # pragma: no cover

    def double(x: int) -> int:
        return 2 * x  # pragma: no cover

    given = work(1)
    with pytest.raises(TypeError) as info:
        tether.amap(given, [1, 2], limit=2)  # type: ignore[call-overload]
    message = str(info.value)
    assert "got a coroutine object (test_amap_names_each" in message
    assert "Pass the async function itself: amap(work, items, limit=...)" in message
    assert "async def" not in message
    assert closed(given)

    with pytest.raises(TypeError) as info:
        tether.amap(double, [1, 2], limit=2)  # type: ignore[arg-type]
    message = str(info.value)
    assert "double is a sync function. Make it `async def`" in message
    assert "anyio.to_thread.run_sync" in message

    with pytest.raises(TypeError) as info:
        tether.amap(42, [1, 2], limit=2)  # type: ignore[call-overload]
    message = str(info.value)
    assert "got int 42, which is not callable" in message
    assert "async def" not in message
    assert calls == []


async def test_amap_closes_a_coroutine_object_even_when_limit_is_bad() -> None:
    async def work(x: object) -> object:
        return x  # pragma: no cover - must never run

    given = work(1)
    with pytest.raises(TypeError, match="got a coroutine object"):
        tether.amap(given, [1], limit=0)  # type: ignore[call-overload]
    assert closed(given)


async def test_amap_refuses_items_that_are_not_iterable() -> None:
    calls: list[object] = []

    async def work(x: object) -> object:
        calls.append(x)  # pragma: no cover
        return x  # pragma: no cover

    with pytest.raises(TypeError, match=r"amap\(\) items must be an iterable"):
        tether.amap(work, 42, limit=2)  # type: ignore[call-overload]
    assert calls == []


@pytest.mark.parametrize("limit", [0, -1, None, "3"])
async def test_amap_refuses_a_bad_limit(limit: Any) -> None:
    calls: list[object] = []

    async def work(x: object) -> object:
        calls.append(x)  # pragma: no cover
        return x  # pragma: no cover

    error = ValueError if isinstance(limit, int) else TypeError
    with pytest.raises(
        error, match=rf"amap\(limit={limit!r}\): limit must be a whole number"
    ):
        tether.amap(work, [1, 2], limit=limit)
    assert calls == []
