"""Guarantee 6: bad input fails at once, with a message that names the misuse and
shows the fix, and leaves the registry intact."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
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


# -- an option that is also the function's own keyword (#21 item 6) -------------------


async def get(url: str, *, timeout: float = 5.0) -> float:
    """An HTTP-style function with a ``timeout`` of its own: returns the one it got."""
    await anyio.lowlevel.checkpoint()
    return timeout


async def labelled(item: int, name: str = "?", daemon: bool = False) -> str:
    await anyio.lowlevel.checkpoint()
    return f"{item}:{name}:{daemon}"


async def test_an_option_naming_the_functions_keyword_is_refused() -> None:
    """``spawn(get, url, timeout=30)`` where ``get`` takes ``timeout`` made 30 s the
    task's deadline and ``get`` kept 5.0, silently (#21 item 6): refused, with the
    two ways to say what was meant, and nothing is spawned."""
    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError) as caught:
            tasks.spawn(get, "http://x", timeout=30)
        message = str(caught.value)
        assert "timeout=30" in message
        assert (
            "'timeout' is both an option of spawn() and a parameter of get" in message
        )
        assert "functools.partial(get, timeout=30)" in message
        assert "get(...)" in message  # a coroutine object: the option is tether's
        assert len(tasks) == 0
        await assert_still_works(tasks)


async def test_each_way_of_saying_what_was_meant_is_taken() -> None:
    """The ways the refusal shows: the function's own keyword through partial;
    tether's option with the function's keyword bound first, or with a coroutine."""
    async with TaskRegistry() as tasks:
        assert await tasks.spawn(functools.partial(get, "u", timeout=30)) == 30
        assert (
            await tasks.spawn(functools.partial(get, timeout=1), "u", timeout=30) == 1
        )
        assert await tasks.spawn(get("u"), timeout=30) == 5.0
        # A parameter filled by a positional argument cannot be meant.
        assert await tasks.spawn(labelled, 1, "n", name="task") == "1:n:False"
        assert await tasks.spawn(labelled, 1, "n", True, daemon=True) == "1:n:True"
        # Options left at their defaults are never read as the function's.
        assert await tasks.spawn(labelled, 2, name=None, daemon=False) == "2:?:False"


async def test_every_colliding_option_is_refused() -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError, match="'name' is both an option"):
            tasks.spawn(labelled, 1, name="label")
        with pytest.raises(TypeError, match="'daemon' is both an option"):
            tasks.spawn(labelled, 1, daemon=True)
        # A partial is seen through (a bound method too: see below).
        with pytest.raises(TypeError, match="'name' is both an option"):
            tasks.spawn(functools.partial(labelled, 1), name="label")


async def with_context(*, context: str = "") -> None:
    await anyio.lowlevel.checkpoint()  # pragma: no cover - never started


class Client:
    async def get(self, url: str, *, timeout: float = 5.0) -> float:
        await anyio.lowlevel.checkpoint()  # pragma: no cover - never started
        return timeout  # pragma: no cover


async def test_every_spawn_form_refuses_a_collision() -> None:
    import contextvars

    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError, match="'context' is both an option of spawn"):
            tasks.spawn(with_context, context=contextvars.copy_context())
        with pytest.raises(TypeError, match="'timeout' is both an option of spawn"):
            tasks.spawn(Client().get, "u", timeout=3)
        with tasks.bind(), pytest.raises(TypeError, match="of spawn"):
            tether.spawn(get, "u", timeout=3)
        with pytest.raises(TypeError, match="of spawn_when_free"):
            await tasks.spawn_when_free(get, "u", timeout=3)
        with pytest.raises(TypeError, match="of spawn_service"):
            tasks.spawn_service(get, "u", timeout=3)
        with pytest.raises(TypeError, match="of start"):
            await tasks.start(labelled_start, name="x")

        def from_a_thread() -> None:
            with pytest.raises(TypeError, match="of spawn_threadsafe"):
                tasks.spawn_threadsafe(get, "u", timeout=3)

        await anyio.to_thread.run_sync(from_a_thread)
        assert len(tasks) == 0


async def backing_off(backoff: float = 1.0) -> None:
    await anyio.lowlevel.checkpoint()


async def test_a_service_option_naming_the_functions_keyword_is_refused() -> None:
    async with TaskRegistry() as tasks:
        with pytest.raises(TypeError, match="'backoff' is both an option"):
            tasks.spawn_service(backing_off, backoff=2.0)
        bound_first = functools.partial(backing_off, backoff=1.0)
        await tasks.spawn_service(bound_first, backoff=2.0)


async def labelled_start(
    *, name: str = "", task_status: anyio.abc.TaskStatus[None]
) -> None:  # pragma: no cover - never started
    task_status.started()
