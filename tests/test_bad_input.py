"""Guarantee 6: bad input fails at once, with a message that names the misuse and
shows the fix, and leaves the registry intact."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import pytest

import tether
from helpers import closed
from tether import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

pytestmark = pytest.mark.anyio


async def add(a: int, b: int) -> int:
    await anyio.lowlevel.checkpoint()
    return a + b


async def assert_still_works(tasks: TaskRegistry) -> None:
    spawned = tasks.statistics().spawned
    assert await tasks.spawn(add, 1, 2) == 3
    assert tasks.statistics().spawned == spawned + 1


class Ready:
    """An awaitable that is not a coroutine."""

    def __await__(self) -> Generator[Any, None, None]:  # pragma: no cover
        yield from ()  # never awaited

    def __repr__(self) -> str:
        return "Ready()"


@pytest.fixture(params=["spawn", "tether.spawn", "spawn_when_free"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def call(api: str, tasks: TaskRegistry, fn: Any, *args: Any) -> object:
    if api == "spawn":
        return tasks.spawn(fn, *args)
    if api == "tether.spawn":
        return tether.spawn(fn, *args)
    return await tasks.spawn_when_free(fn, *args)


def api_name(api: str) -> str:
    return "spawn_when_free" if api == "spawn_when_free" else "spawn"


async def test_a_non_callable_is_refused(api: str) -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(
            TypeError,
            match=r"takes an async function or a coroutine object, got int 42",
        ):
            await call(api, tasks, 42)
        with pytest.raises(
            TypeError, match=r"got Ready .*await it inside an async func"
        ):
            await call(api, tasks, Ready())
        await assert_still_works(tasks)


async def test_a_sync_function_is_refused_without_being_called(api: str) -> None:
    calls: list[int] = []

    def blocking(x: int) -> int:
        calls.append(x)  # pragma: no cover - must never run
        return x  # pragma: no cover

    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError) as info:
            await call(api, tasks, blocking, 1)
        message = str(info.value)
        assert f"{api_name(api)}() takes an async function" in message
        assert "blocking is a sync function and was not called" in message
        assert "Make it `async def`" in message
        assert "anyio.to_thread.run_sync" in message
        with pytest.raises(
            TypeError, match=r"call it yourself: .*<lambda>\(\.\.\.\)\)"
        ):
            await call(api, tasks, lambda: add(1, 2))
        await assert_still_works(tasks)
    assert calls == []


async def test_wrong_arguments_show_positional_args_and_functools_partial(
    api: str,
) -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError) as info:
            await call(api, tasks, add, 1)
        message = str(info.value)
        assert "missing 1 required positional argument: 'b'" in message
        assert f"{api_name(api)}(fn, arg1, arg2)" in message
        assert f"{api_name(api)}(functools.partial(fn, key=value))" in message
        with pytest.raises(TypeError, match="takes 2 positional arguments but 3"):
            await call(api, tasks, add, 1, 2, 3)
        # The fix the message shows works.
        assert await tasks.spawn(functools.partial(add, b=2), 1) == 3
        await assert_still_works(tasks)


async def test_an_async_generator_function_is_refused(api: str) -> None:
    async def numbers() -> AsyncGenerator[int, None]:
        yield 1  # pragma: no cover - never iterated

    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError, match="is an async generator function: a task"):
            await call(api, tasks, numbers)
        await assert_still_works(tasks)


async def test_a_coroutine_with_arguments_is_refused_and_closed(api: str) -> None:
    async with TaskRegistry() as tasks:
        coro = add(1, 2)
        with pytest.raises(
            TypeError, match="a coroutine object already has its arguments"
        ):
            await call(api, tasks, coro, 3)
        assert closed(coro)  # closed: no "never awaited" warning
        await assert_still_works(tasks)


async def test_an_async_callable_object_is_accepted() -> None:
    class Job:
        async def __call__(self, x: int) -> int:
            await anyio.lowlevel.checkpoint()
            return x

    async with TaskRegistry() as tasks:
        handle = tasks.spawn(Job(), 7)
        assert await handle == 7
        assert handle.name.endswith("Job")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, r"limit=0\): limit must be a whole number >= 1, or None"),
        ({"limit": -1}, r"limit=-1\): limit must be a whole number >= 1"),
        ({"limit": True}, r"limit=True\): limit must be a whole number >= 1"),
        ({"limit": 2.5}, r"limit=2.5\): limit must be a whole number >= 1"),
        (
            {"limit": 1, "max_pending": -1},
            r"max_pending=-1\): max_pending must be a whole",
        ),
        (
            {"max_pending": 5},
            r"max_pending=5\) needs a limit: TaskRegistry\(limit=10, ",
        ),
        (
            {"on_error": "ignore"},
            r"on_error='ignore'\): use 'log' .*'raise' .*a callable",
        ),
        (
            {"shutdown_timeout": -1},
            r"shutdown_timeout=-1\): shutdown_timeout must be a number of seconds >= 0",
        ),
        (
            {"shutdown_timeout": "5"},
            r"shutdown_timeout='5'\): shutdown_timeout must be a number of seconds",
        ),
    ],
)
def test_bad_registry_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TaskRegistry(**kwargs)


def test_an_async_on_error_is_refused() -> None:
    async def on_error(handle: tether.Handle[Any], exc: Exception) -> None:
        pass  # pragma: no cover - never called

    with pytest.raises(TypeError, match=r"must be a plain `def`, not an `async def`"):
        TaskRegistry(on_error=on_error)  # type: ignore[arg-type]  # the misuse tested
