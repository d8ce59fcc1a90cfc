"""tether for trio users: what a trio programmer expects of a nursery holds for a
registry and a gather on trio (issue #26). Most tests here are trio-only by nature
(KeyboardInterrupt delivery, trio's deadlines, trio's task tree): each says so.
"""

from __future__ import annotations

import functools
import math
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tether
from helpers import parked

PROGRAM = Path(__file__).with_name("interrupt_trio.py")


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.parametrize(
    "how", ["registry", "run_all", "as_completed", "service", "nursery"]
)
def test_ctrl_c_interrupts_a_busy_tether_task_on_trio(how: str) -> None:
    """Ctrl+C reaches a tether task that never checkpoints, as it reaches a nursery
    task, and the block re-raises it bare (#26 item 1: registry tasks and gather
    children were KeyboardInterrupt-protected system tasks, so a busy loop kept
    running through three SIGINTs). trio only: asyncio delivers Ctrl+C by
    cancelling the main task, which a busy task never lets run."""
    out, returncode, err = interrupt_when_busy(how)
    assert (out, returncode) == ("interrupted: KeyboardInterrupt\n", 0), err


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
@pytest.mark.parametrize("how", ["opened", "default"])
def test_ctrl_c_in_a_task_with_no_block_stops_the_program_on_trio(how: str) -> None:
    """Ctrl+C in a busy task of a registry opened with ``open()``, or of the default
    registry, while the main task sleeps: trio raises it in the main task, as for a
    Ctrl+C in its own protected code, once and bare; the registry's other tasks
    are cancelled, and ``aclose()`` does not raise it again (defect: it was kept
    for an ``aclose()`` that nothing woke the main task to call, so the program
    ran on). trio only, as above."""
    out, returncode, err = interrupt_when_busy(how)
    # One KeyboardInterrupt, with no other in its context, reached trio.run's
    # caller; every other task ended cancelled.
    assert (out, returncode) == (
        "idle: cancelled\ninterrupted: KeyboardInterrupt (alone)\n",
        0,
    ), err


def interrupt_when_busy(how: str) -> tuple[str, int, str]:
    """Run the program ``how``, send it SIGINT once it says it is busy; its stdout,
    exit code and stderr."""
    process = subprocess.Popen(
        [sys.executable, str(PROGRAM), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "busy\n"
        process.send_signal(signal.SIGINT)
        # A safety net, not a timing assertion: the program ends at once, or never.
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{how}: Ctrl+C did not stop the program")
    return out, process.returncode, err


# -- deadlines (item 2) and the task tree (item 3) -------------------------------------

trio_only = pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)


async def deadline_seen() -> float:
    import trio

    await trio.lowlevel.checkpoint()
    return trio.current_effective_deadline()


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_a_gather_child_sees_its_callers_deadline() -> None:
    """Code that sizes its own timeouts from the deadline sees the caller's in a
    gather child, as in a nursery child (#26 item 2: it saw inf). trio only: on
    asyncio a gather child is cancelled with its caller but sees no deadline."""
    import trio

    with trio.move_on_after(5):
        expected = trio.current_effective_deadline()
        assert await tether.run_all(deadline_seen(), deadline_seen) == (expected,) * 2
        assert await tether.settle_all(deadline_seen()) == (expected,)
        assert await tether.race(deadline_seen()) == expected
        with trio.move_on_after(1):  # the innermost deadline, as in a nursery
            assert await tether.run_all(deadline_seen()) == (expected - 4,)


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_when_the_callers_deadline_passes_its_scope_catches_it() -> None:
    import trio

    record: list[str] = []
    with trio.move_on_after(5) as scope:
        await tether.run_all(parked("a", record), parked("b", record))
    assert scope.cancelled_caught
    assert trio.current_time() == 5
    assert sorted(record) == ["a cleaned up", "b cleaned up"]


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_a_gather_cancelled_with_its_caller_reports_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The caller's cancellation reaches a nursery child past the child's own
    scope: that is no failure of the input, and nothing is logged."""
    import trio

    with trio.move_on_after(1):
        await tether.settle_all(trio.sleep_forever, trio.sleep_forever)
    with trio.move_on_after(1):
        await tether.run_all(trio.sleep_forever, trio.sleep_forever)
    assert not [r for r in caplog.records if r.name == "tether"]


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_a_registry_task_does_not_inherit_the_spawners_deadline() -> None:
    """Decided: a registry task outlives the code that spawned it (a request's
    background work outlives the request), so a deadline around the spawn is not
    its deadline; spawn(..., timeout=) gives it one of its own."""
    import trio

    async with tether.TaskRegistry() as tasks:
        handles: list[tether.Handle[float]] = []
        with trio.move_on_after(5):  # noqa: ASYNC100 - a deadline around the spawns
            handles.append(tasks.spawn(deadline_seen))
            handles.append(tasks.spawn(deadline_seen, timeout=2))
        assert await tether.run_all(*handles) == (math.inf, trio.current_time() + 2)


class TaskTree:
    """A trio Instrument recording each spawned task's parent task."""

    def __init__(self) -> None:
        self.parents: dict[str, str | None] = {}

    def task_spawned(self, task: Any) -> None:
        nursery = task.parent_nursery
        parent = nursery.parent_task.name if nursery is not None else None
        self.parents[task.name.rpartition(".")[2]] = parent


@pytest.mark.anyio
@trio_only
async def test_gather_children_sit_under_their_caller_in_trios_task_tree() -> None:
    """Instrument.task_spawned sees the caller as a gather child's parent, and the
    child in the caller's child_nurseries (#26 item 3: every tether task's parent
    was trio's <init>)."""
    import trio

    tree = TaskTree()
    caller = trio.lowlevel.current_task()
    seen: list[bool] = []

    async def gathered() -> None:
        await trio.lowlevel.checkpoint()
        seen.append(in_child_nurseries_of(caller))

    trio.lowlevel.add_instrument(tree)  # type: ignore[arg-type]
    try:
        await tether.run_all(gathered(), gathered)
    finally:
        trio.lowlevel.remove_instrument(tree)  # type: ignore[arg-type]
    assert seen == [True, True]
    assert tree.parents["gathered"] == caller.name


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_concurrent_gathers_each_keep_their_own_children() -> None:
    """Two gathers running at once in two tasks, each starting children as slots
    free: every child is its own caller's nursery child and sees its own caller's
    deadline. (Defect: the trio backend, shared by the whole run, held the nursery
    of the gather entered last, so a child started later went into another
    gather's nursery, or became a system task once that gather had ended.)"""
    import trio

    seen: dict[str, list[tuple[bool, float]]] = {"a": [], "b": []}

    async def child(tag: str, caller: Any, delay: float) -> None:
        await trio.sleep(delay)
        seen[tag].append(
            (in_child_nurseries_of(caller), trio.current_effective_deadline())
        )

    async def gather(tag: str, delay: float, deadline: float) -> None:
        caller = trio.lowlevel.current_task()
        with trio.move_on_at(deadline):
            await tether.run_all(
                *[functools.partial(child, tag, caller, delay) for _ in range(3)],
                limit=1,
            )

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gather, "a", 2, start + 50)
        nursery.start_soon(gather, "b", 1, start + 60)
    assert seen == {
        "a": [(True, start + 50)] * 3,
        "b": [(True, start + 60)] * 3,
    }


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_a_registry_task_spawned_by_a_gather_child_is_not_the_gathers() -> None:
    """A gather child that spawns into a registry and returns ends the gather at
    once: the registry's task is the registry's, not a child of the gather's
    caller that the gather waits for and whose deadline it sees. (Defect: while a
    gather ran, the trio backend started every system task, a registry's
    included, in that gather's nursery.)"""
    import trio

    tasks = tether.TaskRegistry()
    await tasks.open()
    caller = trio.lowlevel.current_task()
    handles: list[tether.Handle[tuple[bool, float]]] = []

    async def background() -> tuple[bool, float]:
        await trio.sleep(10)
        return in_child_nurseries_of(caller), trio.current_effective_deadline()

    async def handler() -> None:
        handles.append(tasks.spawn(background))

    start = trio.current_time()
    with trio.fail_after(5):
        await tether.run_all(handler)
    assert trio.current_time() == start  # the gather did not wait for it
    assert await handles[0] == (False, math.inf)
    await tasks.aclose()


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_stream_children_sit_under_their_caller_outside_its_scopes() -> None:
    """The children of as_completed and amap, and amap's driver, are nursery
    children of the task that entered the block while it runs (#26 item 3: they
    were system tasks under <init>); each runs in a shielded scope of its own, so
    the caller's deadline is not theirs, as before."""
    import trio

    tree = TaskTree()
    caller = trio.lowlevel.current_task()
    seen: list[tuple[bool, float]] = []

    async def streamed(item: int) -> int:
        await trio.lowlevel.checkpoint()
        seen.append((in_child_nurseries_of(caller), trio.current_effective_deadline()))
        return item

    trio.lowlevel.add_instrument(tree)  # type: ignore[arg-type]
    try:
        with trio.move_on_after(50):
            async with tether.as_completed(streamed(1), streamed(2)) as done:
                assert sorted([result async for _, result in done]) == [1, 2]
            async with tether.amap(streamed, iter([3, 4]), limit=1) as mapped:
                assert sorted([result async for _, result in mapped]) == [3, 4]
            assert not caller.child_nurseries  # each block's nursery left with it
    finally:
        trio.lowlevel.remove_instrument(tree)  # type: ignore[arg-type]
    assert seen == [(True, math.inf)] * 4
    assert tree.parents["streamed"] == caller.name
    assert tree.parents["tether stream driver"] == caller.name


def in_child_nurseries_of(parent: Any) -> bool:
    """Whether the running task is in one of ``parent``'s child_nurseries."""
    import trio

    me = trio.lowlevel.current_task()
    return any(me in nursery.child_tasks for nursery in parent.child_nurseries)


@pytest.mark.anyio
@trio_only
async def test_a_registrys_tasks_sit_under_the_task_that_entered_its_block() -> None:
    """Every task of an ``async with`` registry is a child of the task that entered
    the block, in one nursery of that task's child_nurseries, whoever spawned it:
    the body, a handler, or a task spawned by a handler after the handler returned
    (#26 item 3: every registry task's parent was trio's <init>)."""
    import trio

    tree = TaskTree()
    seen: dict[str, bool] = {}
    handler_done = trio.Event()

    async def check(name: str, host: Any) -> None:
        await trio.lowlevel.checkpoint()
        seen[name] = in_child_nurseries_of(host)

    async def handler(tasks: tether.TaskRegistry, host: Any) -> None:
        tasks.spawn(check, "spawned_by_handler", host, name="spawned_by_handler")
        tasks.spawn(after_the_handler, tasks, host)

    async def after_the_handler(tasks: tether.TaskRegistry, host: Any) -> None:
        await handler_done.wait()
        tasks.spawn(check, "spawned_later", host, name="spawned_later")

    async def server() -> None:
        host = trio.lowlevel.current_task()
        async with tether.TaskRegistry() as tasks:
            tasks.spawn(check, "spawned", host, name="spawned")
            await tether.run_all(tasks.spawn(handler, tasks, host))
            handler_done.set()
        assert not host.child_nurseries  # the block's nursery left with it

    trio.lowlevel.add_instrument(tree)  # type: ignore[arg-type]
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server, name="server")
    finally:
        trio.lowlevel.remove_instrument(tree)  # type: ignore[arg-type]
    assert seen == dict.fromkeys(
        ("spawned", "spawned_by_handler", "spawned_later"), True
    )
    for name in ("spawned", "handler", "after_the_handler", "spawned_later"):
        assert tree.parents[name] == "server", name


@pytest.mark.anyio
@trio_only
async def test_an_opened_registrys_tasks_sit_under_a_host_task_of_its_own() -> None:
    """A registry opened with open() has no block whose task could hold its tasks
    (aclose() may run in any task): a system task named after the registry holds
    them in its nursery, from the first spawn after open() on, and ends once the
    registry has closed, even when one of its own tasks closed it (#26 item 3:
    every registry task's parent was trio's <init>)."""
    import trio
    import trio.testing

    tree = TaskTree()
    tasks = tether.TaskRegistry(name="app")
    hosts: list[Any] = []

    async def check() -> None:
        await trio.lowlevel.checkpoint()
        host = trio.lowlevel.current_task().parent_nursery
        assert host is not None
        hosts.append(host.parent_task)

    async def terminate() -> None:
        await check()
        await tasks.aclose()  # from one of its own tasks

    trio.lowlevel.add_instrument(tree)  # type: ignore[arg-type]
    try:
        await tasks.open()
        tasks.spawn(check, name="right_after_open")
        await trio.testing.wait_all_tasks_blocked()
        tasks.spawn(check, name="after")
        tasks.spawn(terminate)
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(tree)  # type: ignore[arg-type]
    assert tasks.state is tether.RegistryState.CLOSED
    for name in ("right_after_open", "after", "terminate"):
        assert tree.parents[name] == "TaskRegistry 'app'", name
    assert tree.parents["TaskRegistry 'app'"] == "<init>"
    assert len(set(hosts)) == 1
    assert hosts[0].coro.cr_frame is None  # the host has ended


@pytest.mark.anyio
@trio_only
async def test_open_in_a_cancelled_scope_still_opens_with_its_host() -> None:
    """open() on trio waits for its host task, in a wait that the opener's
    cancellation does not interrupt: the registry opens either way."""
    import trio

    tasks = tether.TaskRegistry(name="app")
    with trio.CancelScope() as scope:
        scope.cancel()
        await tasks.open()
    assert tasks.state is tether.RegistryState.OPEN
    handle = tasks.spawn(trio.lowlevel.checkpoint)
    await tasks.aclose()
    assert handle.status is tether.Status.FINISHED


@pytest.mark.anyio
@pytest.mark.mock_clock
@trio_only
async def test_a_deadline_around_the_block_reaches_its_tasks_through_the_registry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hosted in the block's nursery, a registry task still does not see the
    block's deadline (its scope is shielded), and the block's cancellation ends it
    through the registry's close: CANCELLED, with nothing logged about an event
    loop ending (the path of a task cancelled from outside its own scope), only
    the shutdown's own record of the task it cancelled."""
    import trio

    deadlines: list[float] = []
    handles: list[tether.Handle[None]] = []

    async def forever() -> None:
        deadlines.append(trio.current_effective_deadline())
        await trio.sleep_forever()

    with trio.move_on_after(5) as outer:
        async with tether.TaskRegistry() as tasks:
            handles.append(tasks.spawn(forever))
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert deadlines == [math.inf]
    assert [h.status for h in handles] == [tether.Status.CANCELLED]
    assert not [r for r in caplog.records if "event loop ended" in r.getMessage()]


# -- cost (item 8) ---------------------------------------------------------------------


@pytest.mark.anyio
@trio_only
async def test_run_all_of_handles_starts_no_task_of_its_own() -> None:
    """Awaiting N handles cost N more tasks, one waiting on each handle (#26 item
    8: 7.4 KB per task at the peak against a nursery task's 2.1 KB). trio only:
    trio's Instrument counts the tasks."""
    import trio

    tree = TaskTree()
    async with tether.TaskRegistry() as tasks:
        handles = [tasks.spawn(deadline_seen) for _ in range(3)]
        trio.lowlevel.add_instrument(tree)  # type: ignore[arg-type]
        try:
            assert await tether.run_all(*handles) == (math.inf,) * 3
            assert await tether.run_all(*handles) == (math.inf,) * 3  # done already
        finally:
            trio.lowlevel.remove_instrument(tree)  # type: ignore[arg-type]
    assert tree.parents == {}
