"""The bad-input catalogue: every public entry point and option given a wrong type
or an out-of-range value, table-driven.

Each case must fail at once with an error that names the parameter, close the
coroutine it was given (no "never awaited" warning, which this suite turns into an
error), and leave the registry usable: nothing counted, and a good spawn after it
works.
"""

from __future__ import annotations

import contextvars
import functools
import math
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

import tether
from helpers import closed, double
from tether import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable

pytestmark = pytest.mark.anyio


def blocking() -> int:  # a sync function
    return 1  # pragma: no cover


async def agen() -> AsyncGenerator[int, None]:  # an async generator function
    yield 1  # pragma: no cover


# -- the registry's own options (sync: nothing to close) -----------------------------
# The one table of TaskRegistry's options: a wrong type is a TypeError, a value out
# of range a ValueError.

REGISTRY_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"name": 3}, TypeError, r"name=3\): name must be a str"),
    ({"debug": "yes"}, TypeError, r"debug='yes'\): debug must be True or False"),
    ({"ambient": 1}, TypeError, r"ambient=1\): ambient must be True or False"),
    ({"on_error": 3}, TypeError, r"on_error=3\): use 'log'"),
    (
        {"on_error": "ignore"},
        ValueError,
        r"on_error='ignore'\): use 'log' .*'raise' .*a callable",
    ),
    ({"context": 3}, TypeError, r"context=3\): use 'spawner'"),
    ({"context": "caller"}, ValueError, r"context='caller'\): use 'spawner'"),
    ({"on_error": double}, TypeError, r"on_error=double\): .*plain `def`"),
    (
        {"limit": 0},
        ValueError,
        r"limit=0\): limit must be a whole number >= 1, or None",
    ),
    ({"limit": -1}, ValueError, r"limit=-1\): limit must be a whole number >= 1"),
    ({"limit": "3"}, TypeError, r"limit='3'\): limit must be a whole number"),
    ({"limit": True}, TypeError, r"limit=True\): limit must be a whole number"),
    (
        {"max_pending": 5},
        ValueError,
        r"max_pending=5\) needs a limit: TaskRegistry\(limit=10, ",
    ),
    (
        {"limit": 1, "max_pending": -1},
        ValueError,
        r"max_pending=-1\): max_pending must be a whole number >= 0",
    ),
    (
        {"shutdown_timeout": -1},
        ValueError,
        r"shutdown_timeout=-1\): shutdown_timeout must be a number of seconds >= 0",
    ),
    ({"shutdown_timeout": math.nan}, ValueError, r"shutdown_timeout=nan\)"),
    ({"shutdown_timeout": True}, TypeError, r"shutdown_timeout=True\)"),
    ({"shutdown_timeout": "5"}, TypeError, r"shutdown_timeout='5'\)"),
]


@pytest.mark.parametrize(("options", "error", "message"), REGISTRY_OPTIONS)
def test_bad_registry_options_name_the_option(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        TaskRegistry(**options)


# -- spawning: every form, every option ------------------------------------------------

#: (label, how to call it with the registry and a fresh coroutine, error, message).
#: Typed Any: these calls are wrong on purpose, and the type checkers say so.
SpawnCase = tuple[str, "Callable[[Any, Any], Any]", type[Exception], str]
ambient_spawn: Any = tether.spawn

SPAWNS: list[SpawnCase] = [
    ("spawn name", lambda r, c: r.spawn(c, name=3), TypeError, r"name=3\): name"),
    (
        "spawn context",
        lambda r, c: r.spawn(c, context="ctx"),
        TypeError,
        r"context='ctx'\): context must be a contextvars\.Context",
    ),
    (
        "spawn daemon",
        lambda r, c: r.spawn(c, daemon="yes"),
        TypeError,
        r"daemon='yes'\): daemon must be True or False",
    ),
    (
        "spawn keywords",
        lambda r, c: r.spawn(c, retries=3),
        TypeError,
        r"keyword arguments \(retries=\.\.\.\).*functools\.partial",
    ),
    (
        "spawn arguments to a coroutine",
        lambda r, c: r.spawn(c, 1),
        TypeError,
        r"a coroutine object already has its arguments",
    ),
    ("ambient name", lambda r, c: ambient_spawn(c, name=3), TypeError, r"name=3\)"),
    (
        "ambient daemon",
        lambda r, c: ambient_spawn(c, daemon=0),
        TypeError,
        r"daemon=0\): daemon must be True or False",
    ),
    (
        "ambient keywords",
        lambda r, c: ambient_spawn(c, retries=3),
        TypeError,
        r"functools\.partial",
    ),
]


@pytest.mark.parametrize(
    ("label", "call", "error", "message"), SPAWNS, ids=[case[0] for case in SPAWNS]
)
async def test_bad_spawn_options_name_the_option_and_lose_nothing(
    label: str,
    call: Callable[[Any, Any], Any],
    error: type[Exception],
    message: str,
) -> None:
    del label
    async with TaskRegistry(limit=2) as tasks:
        coro = double(1)
        with pytest.raises(error, match=message):
            call(tasks, coro)
        assert closed(coro)
        assert tasks.statistics().spawned == 0
        assert await tasks.spawn(double, 21) == 42  # still usable


BAD_FUNCTIONS: list[tuple[str, object, str]] = [
    ("a number", 3, r"takes an async function or a coroutine object, got int"),
    ("a sync function", blocking, r"blocking is a sync function and was not called"),
    ("an async generator function", agen, r"agen is an async generator function"),
]


@pytest.mark.parametrize(
    ("label", "fn", "message"), BAD_FUNCTIONS, ids=[c[0] for c in BAD_FUNCTIONS]
)
@pytest.mark.parametrize("form", ["spawn", "ambient", "spawn_when_free"])
async def test_what_is_not_an_async_function_is_refused_by_every_spawn_form(
    label: str, fn: object, message: str, form: str
) -> None:
    del label

    async def attempt(tasks: TaskRegistry) -> None:
        if form == "spawn":
            tasks.spawn(fn)  # type: ignore[call-overload]
        elif form == "ambient":
            tether.spawn(fn)  # type: ignore[call-overload]
        else:
            await tasks.spawn_when_free(fn)  # type: ignore[call-overload]

    async with TaskRegistry(limit=2) as tasks:
        with pytest.raises(TypeError, match=message):
            await attempt(tasks)
        assert tasks.statistics().spawned == 0
        assert await tasks.spawn(double, 1) == 2


async def test_bad_spawn_when_free_options_close_the_coroutine() -> None:
    async with TaskRegistry(limit=1) as tasks:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"name": 3}, r"spawn_when_free\(\.\.\., name=3\)"),
            ({"context": 1}, r"spawn_when_free\(\.\.\., context=1\)"),
            ({"daemon": "no"}, r"spawn_when_free\(\.\.\., daemon='no'\)"),
            ({"retries": 3}, r"spawn_when_free\(\) got keyword arguments"),
        ]
        for options, message in cases:
            coro = double(1)
            with pytest.raises(TypeError, match=message):
                await tasks.spawn_when_free(coro, **options)
            assert closed(coro)
        assert tasks.statistics().spawned == 0
        assert await tasks.spawn(double, 2) == 4


async def test_bad_spawn_threadsafe_options_fail_in_the_calling_thread() -> None:
    async with TaskRegistry() as tasks:
        refused: list[str] = []

        def in_thread() -> None:
            cases: list[dict[str, Any]] = [{"name": 3}, {"daemon": "x"}, {"retries": 1}]
            for options in cases:
                coro = double(1)
                with pytest.raises(TypeError) as info:
                    tasks.spawn_threadsafe(coro, **options)
                assert closed(coro)
                refused.append(str(info.value))

        await anyio.to_thread.run_sync(in_thread)
        assert refused[0].startswith("spawn_threadsafe(..., name=3): name must be")
        assert refused[1].startswith("spawn_threadsafe(..., daemon='x'): daemon must")
        assert refused[2].startswith("spawn_threadsafe() got keyword arguments")
        assert tasks.statistics().spawned == 0


# -- the gather family -----------------------------------------------------------------


async def test_bad_stream_arguments_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"amap\(limit=0\): limit must be"):
        tether.amap(double, [1], limit=0)
    with pytest.raises(TypeError, match=r"amap\(\) items must be an iterable"):
        tether.amap(double, 3, limit=1)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"amap\(\) takes an async function"):
        tether.amap(blocking, [1], limit=1)  # type: ignore[arg-type]
    coro = double(1)
    with pytest.raises(ValueError, match=r"as_completed\(limit=-1\)"):
        tether.as_completed(coro, limit=-1)
    assert closed(coro)
    with pytest.raises(ValueError, match=r"race\(\) needs at least one input"):
        await tether.race()


async def test_a_bad_context_is_refused_before_the_task_is_counted() -> None:
    async with TaskRegistry() as tasks:
        good = contextvars.copy_context()
        assert await tasks.spawn(double, 3, context=good) == 6
        bad = functools.partial(contextvars.copy_context)  # the factory, uncalled
        coro = double(1)
        with pytest.raises(TypeError, match=r"context=.*copy_context\(\)"):
            tasks.spawn(coro, context=bad)  # type: ignore[call-overload]
        assert closed(coro)
        assert tasks.statistics().spawned == 1
