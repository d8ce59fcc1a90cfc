"""tether.adopt_tasks(): the running asyncio loop hands every task it creates to tether.

asyncio and uvloop only (tasks there are raw asyncio tasks), but for the trio test,
which checks that the call explains itself and does nothing.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import sys
import weakref
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

import tether
from helpers import tether_records

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """asyncio and uvloop only, unless a test asks for trio."""
    name: str = request.param
    if name == "trio":
        return "trio", {}
    return "asyncio", {"use_uvloop": name == "uvloop"}


NEVER_RETRIEVED = "Task exception was never retrieved"
DESTROYED = "Task was destroyed but it is pending!"


async def alone() -> None:
    """Wait on a future only this task refers to: the garbage collector may free
    the task mid-flight unless something holds it."""
    await asyncio.get_running_loop().create_future()


async def fail() -> None:
    await asyncio.sleep(0)
    raise ValueError("nobody retrieves this")


def asyncio_records(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "asyncio" and r.getMessage().startswith(text)
    ]


async def settle() -> None:
    """Let done-callbacks run, then collect what is garbage."""
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)


def dangle(coro: Coroutine[Any, Any, Any], name: str) -> weakref.ref[asyncio.Task[Any]]:
    """Create a task as careless library code does, keeping only a weak reference."""
    return weakref.ref(asyncio.get_running_loop().create_task(coro, name=name))


async def test_without_adoption_a_dangling_task_is_collected_mid_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hazard itself, shown once: what adoption prevents."""
    ref = dangle(alone(), "dangling")
    await settle()
    assert ref() is None
    assert asyncio_records(caplog, DESTROYED) != []


async def test_an_adopted_dangling_task_is_held_until_it_ends() -> None:
    with tether.adopt_tasks() as adoption:
        assert repr(adoption) == "<tether.adopt_tasks() active, holding 0>"
        ref = dangle(alone(), "dangling")
        await settle()
        task = ref()
        assert task is not None
        assert not task.done()
        assert "holding 1" in repr(adoption)
        task.cancel()
        del task
        await settle()
        assert ref() is None  # let go of once ended
        assert "holding 0" in repr(adoption)
    assert not adoption.active
    assert repr(adoption) == "<tether.adopt_tasks() undone, holding 0>"


async def test_adopted_tasks_show_in_dump_apart_from_registries() -> None:
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(True)  # creation sites are recorded in debug mode
    drawn = ""
    try:
        with tether.adopt_tasks():
            ref = weakref.ref(loop.create_task(alone(), name="raw poller"))
            line = inspect.stack(0)[0].lineno - 1
            async with tether.TaskRegistry(name="app") as tasks:
                handle = tasks.spawn(anyio.sleep_forever, name="owned")
                await anyio.wait_all_tasks_blocked()
                drawn = tether.dump()
                handle.cancel()
            task = ref()
            assert task is not None
            task.cancel()
            del task
            await settle()
    finally:
        loop.set_debug(debug)
    lines = drawn.splitlines()
    registry = lines.index(next(x for x in lines if x.startswith("TaskRegistry 'app'")))
    adopted = lines.index(next(x for x in lines if x.startswith("adopted tasks")))
    assert "1 running" in lines[adopted]
    assert f"raw poller RUNNING, created at {__file__}:{line}: suspended at alone" in (
        drawn
    )
    # tether's own task is its registry's, not adopted as well.
    assert "owned" in lines[registry + 1]
    assert "owned" not in "\n".join(lines[adopted:])


@contextmanager
def loop_reports() -> Generator[list[str], None, None]:
    """What the loop reports through its exception handler (anyio's test runner
    would raise the failures at the end of the test instead)."""
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    reported: list[str] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(f"{context['message']}: {context.get('future')!r}")

    loop.set_exception_handler(handler)
    try:
        yield reported
    finally:
        loop.set_exception_handler(before)


async def test_an_unretrieved_failure_is_reported_once_as_without_adoption() -> None:
    with loop_reports() as reported:
        dangle(fail(), "unadopted")
        await settle()
        with tether.adopt_tasks():
            ref = dangle(fail(), "adopted")
            await settle()
            assert ref() is None  # let go of once ended, then reported by asyncio
    assert [r.partition(":")[0] for r in reported] == [NEVER_RETRIEVED] * 2
    assert "name='unadopted'" in reported[0]
    assert "name='adopted'" in reported[1]


async def test_a_failure_retrieved_later_is_never_reported() -> None:
    with loop_reports() as reported, tether.adopt_tasks():
        task = asyncio.get_running_loop().create_task(fail(), name="kept")
        await settle()
        assert task.done()
        await settle()  # tether has let go; the caller still holds it
        assert isinstance(task.exception(), ValueError)
        del task
        await settle()
    assert reported == []


async def in_a_task_group(sibling: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # Typed as Any: Python 3.10, which the type checkers also check, has no TaskGroup.
    group_class: Any = getattr(asyncio, "TaskGroup")  # noqa: B009
    async with group_class() as group:
        group.create_task(sibling(), name="sibling")
        group.create_task(fail(), name="failing")


async def in_an_anyio_task_group(
    sibling: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(sibling)
        group.start_soon(fail)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")
@pytest.mark.parametrize("adopt", [False, True], ids=["raw", "adopted"])
async def test_a_task_group_behaves_the_same(
    adopt: bool, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []

    async def sibling() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("sibling cancelled")

    adoption = tether.adopt_tasks() if adopt else None
    try:
        with pytest.raises(ExceptionGroup) as caught:
            await in_a_task_group(sibling)
    finally:
        if adoption is not None:
            adoption.undo()
    await settle()
    assert [type(e) for e in caught.value.exceptions] == [ValueError]
    assert log == ["sibling cancelled"]
    assert asyncio_records(caplog, NEVER_RETRIEVED) == []


@pytest.mark.parametrize("adopt", [False, True], ids=["raw", "adopted"])
async def test_an_anyio_task_group_behaves_the_same(
    adopt: bool, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []

    async def sibling() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            log.append("sibling cancelled")

    adoption = tether.adopt_tasks() if adopt else None
    try:
        with pytest.raises(ExceptionGroup) as caught:
            await in_an_anyio_task_group(sibling)
    finally:
        if adoption is not None:
            adoption.undo()
    await settle()
    assert [type(e) for e in caught.value.exceptions] == [ValueError]
    assert log == ["sibling cancelled"]
    assert asyncio_records(caplog, NEVER_RETRIEVED) == []


def tracing_factory(
    names: list[str],
) -> Callable[..., asyncio.Task[Any]]:
    """A tracing library's task factory: records each task it makes."""

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        names.append("traced")
        return task

    return factory


async def test_an_existing_factory_keeps_working_and_is_restored_exactly() -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    traced: list[str] = []
    tracing = tracing_factory(traced)
    loop.set_task_factory(tracing)
    try:
        adoption = tether.adopt_tasks()
        assert loop.get_task_factory() is not tracing
        ref = dangle(alone(), "traced and held")
        assert traced == ["traced"]
        await settle()
        task = ref()
        assert task is not None
        adoption.undo()
        assert loop.get_task_factory() is tracing
        adoption.undo()  # idempotent
        task.cancel()
        del task
        await settle()
    finally:
        loop.set_task_factory(before)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
async def test_an_eager_factory_is_wrapped_and_spawn_still_runs_at_a_checkpoint(
    backend_name: str,
) -> None:
    if backend_name == "uvloop":
        pytest.skip("uvloop passes eager_start= to a task factory, which eager reject")
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
    try:
        with tether.adopt_tasks() as adoption:
            ran: list[str] = []

            async def quick() -> None:
                ran.append("eagerly")

            asyncio.create_task(quick(), name="quick")  # noqa: RUF006, TET001 - ended
            assert ran == ["eagerly"]  # run inside create_task: eager still
            assert "holding 0" in repr(adoption)  # it had ended: nothing to hold
            ref = dangle(alone(), "suspended")
            assert "holding 1" in repr(adoption)
            log: list[str] = []
            async with tether.TaskRegistry() as tasks:

                async def later() -> None:
                    log.append("ran")

                tasks.spawn(later)
                assert log == []  # never inside spawn, even under an eager factory
            assert log == ["ran"]
            task = ref()
            assert task is not None
            task.cancel()
            del task
            await settle()
        assert loop.get_task_factory() is asyncio.eager_task_factory  # type: ignore[attr-defined,unused-ignore]
    finally:
        loop.set_task_factory(before)


async def test_a_factory_set_over_ours_is_left_in_place_and_ours_stops() -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    try:
        adoption = tether.adopt_tasks()
        ours = loop.get_task_factory()
        assert ours is not None

        def wrapper(
            loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
        ) -> asyncio.Task[Any]:
            assert ours is not None
            return cast("asyncio.Task[Any]", ours(loop, coro, **kwargs))

        loop.set_task_factory(wrapper)
        adoption.undo()
        assert loop.get_task_factory() is wrapper  # not clobbered
        ref = dangle(alone(), "after undo")
        await settle()
        assert ref() is None  # no longer held: adoption ended
    finally:
        loop.set_task_factory(before)


async def test_a_second_call_shares_the_adoption_until_the_last_undo() -> None:
    loop = asyncio.get_running_loop()
    before = loop.get_task_factory()
    first = tether.adopt_tasks()
    ours = loop.get_task_factory()
    second = tether.adopt_tasks()
    assert loop.get_task_factory() is ours
    first.undo()
    assert loop.get_task_factory() is ours
    second.undo()
    assert loop.get_task_factory() is before


async def test_undo_keeps_holding_what_was_adopted_until_it_ends() -> None:
    with tether.adopt_tasks():
        ref = dangle(alone(), "outlives the adoption")
    await settle()
    task = ref()
    assert task is not None
    task.cancel()
    del task
    await settle()
    assert ref() is None


async def test_tethers_own_gather_children_are_not_adopted() -> None:
    with tether.adopt_tasks() as adoption:
        seen: list[str] = []

        async def child(n: int) -> int:
            await asyncio.sleep(0)
            seen.append(repr(adoption))
            return n

        assert await tether.run_all(child(1), child(2)) == (1, 2)
    assert seen == ["<tether.adopt_tasks() active, holding 0>"] * 2


@pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)
async def test_on_trio_it_explains_and_does_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with tether.adopt_tasks() as adoption:
        assert not adoption.active
    (record,) = tether_records(caplog, logging.INFO)
    assert record.getMessage().startswith(
        "tether.adopt_tasks() does nothing on trio: trio already holds every task"
    )
    assert repr(adoption) == "<tether.adopt_tasks(): nothing to do on trio>"


def test_with_no_event_loop_it_says_where_to_call_it() -> None:
    with pytest.raises(RuntimeError, match=r"needs a running asyncio event loop"):
        tether.adopt_tasks()


def run_on(backend: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if backend == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_the_end_of_the_run_names_adopted_tasks_it_cancelled(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        tether.adopt_tasks()
        loop = asyncio.get_running_loop()
        loop.create_task(alone(), name="update check")  # noqa: RUF006, TET001
        loop.create_task(asyncio.sleep(0), name="quick")  # noqa: RUF006, TET001
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    run_on(backend, main)
    (record,) = [
        r
        for r in tether_records(caplog, logging.WARNING)
        if r.levelno == logging.WARNING
    ]
    assert record.getMessage().startswith(
        "The event loop's run ended with 1 adopted task(s) still running (raw tasks "
        "that tether.adopt_tasks() held): update check. They were cancelled."
    )
    assert asyncio_records(caplog, DESTROYED) == []


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_a_run_whose_tasks_all_ended_says_nothing(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with tether.adopt_tasks():
            task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
            await task

    run_on(backend, main)
    assert tether_records(caplog, logging.WARNING) == []
