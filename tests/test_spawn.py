"""Spawning: when a task first runs, its context, ambient spawn, bind, threads."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed
from tether import NoRegistry, RegistryClosed, TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Generator

pytestmark = pytest.mark.anyio


var: ContextVar[str] = ContextVar("var", default="unset")


async def record(log: list[str], item: str) -> str:
    log.append(item)
    await anyio.lowlevel.checkpoint()
    return item


async def read_var() -> str:
    await anyio.lowlevel.checkpoint()
    return var.get()


async def test_task_runs_at_the_next_checkpoint_not_inside_spawn(
    backend_name: str,
) -> None:
    log: list[str] = []
    async with TaskRegistry() as tasks:
        handle = tasks.spawn(record, log, "ran")
        log.append("spawned")
        assert log == ["spawned"]
        if backend_name == "trio":
            # trio runs the tasks that are ready in one batch, in random order: the
            # task has run once everything is blocked.
            await anyio.wait_all_tasks_blocked()
        else:
            await anyio.lowlevel.checkpoint()  # exactly one checkpoint is enough
        assert log == ["spawned", "ran"]
        assert await handle == "ran"


@contextmanager
def task_factory(factory: Any) -> Generator[None, None, None]:
    import asyncio

    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    loop.set_task_factory(factory)
    try:
        yield
    finally:
        loop.set_task_factory(previous)


@pytest.mark.parametrize("kind", ["stock", "created", "wrapped"])
async def test_task_is_lazy_under_an_eager_task_factory(
    backend_name: str, kind: str
) -> None:
    if backend_name == "trio":
        pytest.skip("task factories are an asyncio feature")
    if backend_name == "uvloop":
        pytest.skip(
            "uvloop passes eager_start= to a task factory, which this Python's "
            "eager factories reject: they do not work on uvloop at all"
        )
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    else:
        import asyncio

        def wrapped(loop: Any, coro: Any, **kwargs: Any) -> Any:
            return asyncio.eager_task_factory(loop, coro, **kwargs)

        factory = {
            "stock": asyncio.eager_task_factory,
            "created": asyncio.create_eager_task_factory(asyncio.Task),
            "wrapped": wrapped,  # not recognisable: found eager by a probe
        }[kind]
        log: list[str] = []
        with task_factory(factory):
            # The factory is active: a raw task runs inside create_task.
            raw = asyncio.create_task(record(log, "raw"))
            assert log == ["raw"]
            async with TaskRegistry() as tasks:
                handle = tasks.spawn(record, log, "ran")
                named = tasks.spawn(record(log, "coro"), context=copy_context())
                log.append("spawned")
                assert log == ["raw", "spawned"]
                await anyio.lowlevel.checkpoint()
                assert log == ["raw", "spawned", "ran", "coro"]
                assert await handle == "ran"
                assert await named == "coro"
            await raw


async def test_a_lazy_custom_task_factory_is_kept(backend_name: str) -> None:
    if backend_name == "trio":
        pytest.skip("task factories are an asyncio feature")
    import asyncio

    made: list[str] = []

    def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
        made.append(coro.__qualname__)
        known = {k: v for k, v in kwargs.items() if k in {"name", "context"}}
        return asyncio.Task(coro, loop=loop, **known)

    log: list[str] = []
    with task_factory(factory):
        async with TaskRegistry() as tasks:
            made.clear()  # the registry may probe the factory once on entry
            handle = tasks.spawn(record, log, "ran")
            assert log == []
            assert await handle == "ran"
    assert made == ["TaskRegistry._run"]


async def test_task_runs_in_a_copy_of_the_spawners_context() -> None:
    async def set_var() -> str:
        var.set("child")
        await anyio.lowlevel.checkpoint()
        return var.get()

    async with TaskRegistry() as tasks:
        var.set("parent")
        reader = tasks.spawn(read_var)
        writer = tasks.spawn(set_var)
        var.set("changed after the spawn")
        assert await reader == "parent"
        assert await writer == "child"
        assert var.get() == "changed after the spawn"


async def test_context_argument_runs_the_task_in_a_copy_of_it() -> None:
    var.set("given")
    context = copy_context()
    var.set("spawner")

    async def set_and_read() -> str:
        var.set("inside")
        return await read_var()

    async with TaskRegistry() as tasks:
        assert await tasks.spawn(read_var, context=context) == "given"
        assert await tasks.spawn(set_and_read, context=context) == "inside"
        assert await tasks.spawn(read_var()) == "spawner"
    assert context[var] == "given"  # a copy: the task did not change it


async def test_ambient_spawn_inside_the_block_and_in_spawned_tasks() -> None:
    log: list[str] = []

    async def parent() -> tether.Handle[str]:
        await anyio.lowlevel.checkpoint()
        return tether.spawn(record, log, "grandchild")  # inherited binding

    async with TaskRegistry(name="app") as tasks:
        assert tether.current_registry() is tasks
        child = tether.spawn(record, log, "child")
        assert child in set(tasks)
        grandchild = await tasks.spawn(parent)
        assert grandchild in set(tasks)
        assert await child == "child"
        assert await grandchild == "grandchild"
        assert await tether.spawn(record(log, "coro")) == "coro"
    assert sorted(log) == ["child", "coro", "grandchild"]


async def test_innermost_registry_wins_and_the_binding_ends_with_the_block() -> None:
    async with TaskRegistry(name="outer") as outer:
        async with TaskRegistry(name="inner") as inner:
            assert tether.current_registry() is inner
        assert tether.current_registry() is outer
    with pytest.raises(NoRegistry):
        tether.current_registry()


async def test_no_registry_in_strict_mode_shows_how_to_open_or_bind_one() -> None:
    with tether.require_registry(), pytest.raises(NoRegistry) as info:
        tether.spawn(record, list[str](), "x")
    message = str(info.value)
    assert "tether.spawn() found no TaskRegistry" in message
    assert "tether.require_registry() was called" in message
    assert "async with tether.TaskRegistry(" in message
    assert "with registry.bind():" in message
    with pytest.raises(NoRegistry, match=r"tether\.current_registry\(\)") as info:
        tether.current_registry()
    assert "tether.spawn() works without one" in str(info.value)
    # A coroutine object given is closed: no "never awaited" warning (an error here).
    coro = record(list[str](), "x")
    with tether.require_registry(), pytest.raises(NoRegistry):
        tether.spawn(coro)
    assert closed(coro)


async def test_bind_makes_a_registry_ambient_from_another_task() -> None:
    ready = anyio.Event()
    holder: list[TaskRegistry] = []
    results: list[str] = []

    async def handler() -> None:
        # Runs in a task group outside the registry's block, like a request task.
        await ready.wait()
        registry = holder[0]
        with pytest.raises(NoRegistry):
            tether.current_registry()
        with registry.bind() as bound:
            assert bound is registry
            assert tether.current_registry() is registry
            handle = tether.spawn(record, results, "bound")
        with pytest.raises(NoRegistry):
            tether.current_registry()
        assert await handle == "bound"

    async with anyio.create_task_group() as tg:
        tg.start_soon(handler)
        async with TaskRegistry(name="lifespan") as tasks:
            holder.append(tasks)
            ready.set()
            await tasks.wait_idle()
            await anyio.wait_all_tasks_blocked()
    assert results == ["bound"]


async def test_spawn_off_the_event_loop_thread_names_spawn_threadsafe() -> None:
    async with TaskRegistry(name="app") as tasks:
        coro = record(list[str](), "x")
        with pytest.raises(
            RuntimeError, match=r"registry\.spawn_threadsafe\(fn, \*args\)"
        ):
            await anyio.to_thread.run_sync(tasks.spawn, coro)
        assert closed(coro)  # closed, never awaited
        with pytest.raises(RuntimeError, match="outside its event loop's thread"):
            await anyio.to_thread.run_sync(tasks.spawn, record, list[str](), "x")
        assert await tasks.spawn(record, list[str](), "still works") == "still works"
        assert tasks.statistics().spawned == 1


async def test_ambient_spawn_off_the_event_loop_thread_names_spawn_threadsafe() -> None:
    async with TaskRegistry(name="app") as tasks:
        coro = record(list[str](), "x")
        # A worker thread runs in a copy of the caller's context: the registry is
        # bound there, but it is not the loop's thread.
        with pytest.raises(RuntimeError, match=r"spawn_threadsafe\(fn, \*args\)"):
            await anyio.to_thread.run_sync(tether.spawn, coro)
        assert closed(coro)
        assert tasks.statistics().spawned == 0


async def test_spawn_into_a_closed_registry_closes_the_coroutine() -> None:
    async with TaskRegistry(name="done") as tasks:
        pass
    coro = record(list[str](), "x")
    with pytest.raises(RegistryClosed, match="'done' is CLOSED"):
        tasks.spawn(coro)
    assert closed(coro)


async def test_bind_sets_the_ambient_registry_and_keeps_the_lineage() -> None:
    """Issue 27 item 4: the ambient registry and the lineage share one context
    variable, and ``bind()`` sets only the first: a task of a draining registry
    still spawns its follow-up work there under another registry's binding, and a
    binding alone lets no other code spawn into a draining registry."""
    go = anyio.Event()
    followed: list[str] = []
    refused: list[RegistryClosed] = []

    async def follow_up() -> None:
        followed.append("follow-up")

    app = TaskRegistry(name="app")
    async with TaskRegistry(name="other") as other:

        async def outsider(app: TaskRegistry) -> None:
            await go.wait()  # app is draining
            with app.bind():
                assert tether.current_registry() is app
                try:
                    tether.spawn(follow_up)
                except RegistryClosed as closed_now:
                    refused.append(closed_now)

        other.spawn(outsider, app)  # before app opens: not of app's lineage
        async with app:

            async def worker() -> None:
                await go.wait()  # app is draining
                with other.bind():
                    assert tether.current_registry() is other
                    app.spawn(follow_up)  # the lineage still says app

            app.spawn(worker)
            go.set()  # the tasks wake once the drain has begun
    assert followed == ["follow-up"]
    assert app.statistics().spawned == 2
    assert len(refused) == 1
    assert "'app' is DRAINING" in str(refused[0])


async def test_spawn_with_the_context_it_runs_in_counts_nothing_phantom() -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    spawning with the context the caller runs in counted phantom work in the
    lineage."""

    async def work() -> str:
        await anyio.lowlevel.checkpoint()
        return "ran"

    async with TaskRegistry(shutdown_timeout=0.1) as tasks:
        context = copy_context()
        handle = context.run(lambda: tasks.spawn(work, context=context))
        assert await handle == "ran"
    assert tasks.statistics().succeeded == 1


async def test_an_eager_task_factory_set_after_entry_is_held_too(
    backend_name: str,
) -> None:
    """A defect of 0.1, found by an adversarial suite run from outside the project:
    an eager task factory set after the registry was entered ran the task inside
    spawn, before the registry held it."""
    if backend_name != "asyncio":
        pytest.skip("task factories are asyncio's; uvloop rejects the eager ones")
    if sys.version_info < (3, 12):
        pytest.skip("asyncio.eager_task_factory is new in Python 3.12")
    else:
        import asyncio

        log: list[str] = []

        async def work() -> str:
            log.append("ran")
            await anyio.lowlevel.checkpoint()
            return "done"

        loop = asyncio.get_running_loop()
        with anyio.fail_after(5):
            async with TaskRegistry() as tasks:
                loop.set_task_factory(asyncio.eager_task_factory)
                try:
                    handle = tasks.spawn(work)
                    assert log == []  # never inside spawn
                finally:
                    loop.set_task_factory(None)
                assert await handle == "done"
