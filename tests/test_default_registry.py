"""A spawn with no registry bound: the default registry of the event loop's run.

Written the way real code reaches it: library objects that own no registry, an
asyncio Protocol's ``data_received``, a ``loop.call_soon`` callback (trio's
``run_sync_soon``), a plain thread, and whole runs under ``asyncio.run``,
``uvloop.run`` and ``trio.run`` whose end-of-run report is checked.
"""

from __future__ import annotations

import gc
import logging
import re
import subprocess
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed, tether_records
from tether import NoRegistry, Status, TaskRegistry
from tether._default import live_default_tasks

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.anyio
pytest_plugins = ["pytester"]


async def wait_alone() -> str:
    """Wait on an event only this task refers to: a raw asyncio task doing this is
    garbage-collected mid-flight. Returns once cancelled, which it records."""
    try:
        await anyio.Event().wait()
    finally:
        pass
    return "never"  # pragma: no cover


async def fail(message: str) -> None:
    await anyio.lowlevel.checkpoint()
    raise ValueError(message)


async def echo(item: str) -> str:
    await anyio.lowlevel.checkpoint()
    return item


class Client:
    """A library object with no registry of its own: it spawns a handler per
    event, as a client library's reader does, with ``tether.spawn``."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def on_event(self, event: str) -> tether.Handle[None]:
        return tether.spawn(self._handle, event, name=f"handle {event}")

    async def _handle(self, event: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.handled.append(event)


def default_names() -> list[str]:
    return sorted(handle.name for handle, _ in live_default_tasks())


async def test_a_library_object_spawns_with_no_registry_bound() -> None:
    client = Client()
    handles = [client.on_event(e) for e in ("a", "b")]
    assert default_names() == ["handle a", "handle b"]
    for handle in handles:
        await handle
    assert sorted(client.handled) == ["a", "b"]  # trio: in any order
    assert default_names() == []  # let go of once idle


async def test_a_task_is_held_under_gc_pressure() -> None:
    handle = tether.spawn(wait_alone)
    await anyio.wait_all_tasks_blocked()
    (task,) = (task for h, task in live_default_tasks() if h is handle)
    task_ref = weakref.ref(task)
    del task
    for _ in range(3):
        gc.collect()
    assert task_ref() is not None
    assert handle.status is Status.RUNNING
    handle.cancel()
    await handle.wait()
    assert handle.done()
    assert handle.status.name == "CANCELLED"


async def test_a_failure_nobody_awaits_is_logged_with_the_task_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = tether.spawn(fail, "boom", name="fetch")
    await handle.wait()
    (record,) = tether_records(caplog)
    assert record.getMessage() == "Task 'fetch' of TaskRegistry 'default' failed"
    assert record.__dict__["tether_task"] == "fetch"
    assert record.__dict__["tether_registry"] == "default"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "boom"
    caplog.clear()  # reported once, as it should be


async def test_an_awaited_failure_is_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handle = tether.spawn(fail, "received")
    with pytest.raises(ValueError, match="received"):
        await handle
    assert tether_records(caplog) == []


async def test_the_default_registry_shows_in_dump_while_it_holds_tasks() -> None:
    handle = tether.spawn(wait_alone, name="parked")
    await anyio.wait_all_tasks_blocked()
    drawn = tether.dump()
    assert "TaskRegistry 'default' OPEN" in drawn
    assert "parked RUNNING: suspended at wait_alone" in drawn
    handle.cancel()
    await handle.wait()
    assert "'default'" not in tether.dump()


async def test_current_registry_still_raises_in_a_default_task() -> None:
    async def ask() -> str:
        await anyio.lowlevel.checkpoint()
        with pytest.raises(NoRegistry, match="works without one"):
            tether.current_registry()
        # Its own spawns go to the default registry too.
        return await tether.spawn(echo, "nested")

    assert await tether.spawn(ask) == "nested"


async def test_a_registry_bound_inside_wins_over_the_default() -> None:
    async with TaskRegistry(name="app") as tasks:
        handle = tether.spawn(echo, "bound")
        assert handle in set(tasks)
        assert default_names() == []
        assert await handle == "bound"


async def test_options_work_as_on_a_bound_registry() -> None:
    handle = tether.spawn(wait_alone, name="beat", daemon=True)
    assert handle.name == "beat"
    await anyio.wait_all_tasks_blocked()
    handle.cancel()
    await handle.wait()
    with pytest.raises(TypeError, match="partial"):
        tether.spawn(echo, item="x")  # type: ignore[call-overload]
    assert default_names() == []


async def test_a_refused_spawn_leaves_no_default_registry_behind() -> None:
    with pytest.raises(TypeError):
        tether.spawn(echo, "a", "b")  # type: ignore[arg-type, call-arg]
    assert "'default'" not in tether.dump()


async def test_a_loop_callback_spawns_into_the_default_registry(
    backend_name: str,
) -> None:
    results: list[str] = []
    done = anyio.Event()

    async def work() -> None:
        await anyio.lowlevel.checkpoint()
        results.append("ran")
        done.set()

    def callback() -> None:
        tether.spawn(work, name="from a callback")

    if backend_name == "trio":
        import trio

        trio.lowlevel.current_trio_token().run_sync_soon(callback)
    else:
        import asyncio

        asyncio.get_running_loop().call_soon(callback)
    await done.wait()
    assert results == ["ran"]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "uvloop"], indirect=True)
async def test_a_protocols_data_received_spawns_a_handler() -> None:
    """asyncio only: Protocols are asyncio's (and uvloop's) callback API."""
    import asyncio

    class Echo(asyncio.Protocol):
        """A server protocol that answers each chunk from a spawned task, as a
        websocket library's protocol callback does."""

        transport: asyncio.WriteTransport

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # uvloop's transports are not asyncio.Transport subclasses.
            self.transport = cast("asyncio.WriteTransport", transport)
            connections.append(self.transport)

        def data_received(self, data: bytes) -> None:
            tether.spawn(self.answer(data), name="answer")

        async def answer(self, data: bytes) -> None:
            await asyncio.sleep(0)
            if data == b"fail":
                raise ValueError("a handler failed")
            self.transport.write(data.upper())

    connections: list[asyncio.WriteTransport] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"hello")
            assert await reader.readexactly(5) == b"HELLO"
        finally:
            writer.close()
            await writer.wait_closed()
    finally:
        for transport in connections:
            transport.close()
        server.close()
        await server.wait_closed()


async def test_a_plain_thread_is_told_it_is_a_thread_and_of_spawn_threadsafe() -> None:
    """Issue #21 item 8: a plain thread was told "no registry bound" while a
    registry was open in the loop's thread."""
    caught: list[BaseException] = []
    coro = echo("x")

    def in_thread() -> None:
        try:
            tether.spawn(coro)
        except BaseException as exc:
            caught.append(exc)

    async with TaskRegistry(name="app"):
        thread = threading.Thread(target=in_thread, name="worker")
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
    (error,) = caught
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert "thread 'worker', which runs no event loop" in message
    assert "TaskRegistry 'app' is open in its event loop's thread" in message
    assert "registry.spawn_threadsafe(fn, *args)" in message
    assert closed(coro)


def test_spawn_with_no_event_loop_names_spawn_threadsafe() -> None:
    coro = echo("x")
    with pytest.raises(RuntimeError, match=r"runs no event loop.*spawn_threadsafe"):
        tether.spawn(coro)
    assert closed(coro)


# -- the strict mode ------------------------------------------------------------------


async def test_require_registry_makes_an_unbound_spawn_raise_until_undone() -> None:
    setting = tether.require_registry()
    try:
        coro = echo("x")
        with pytest.raises(NoRegistry, match=r"require_registry\(\) was called"):
            tether.spawn(coro)
        assert closed(coro)
        async with TaskRegistry() as tasks:
            assert await tether.spawn(echo, "bound") == "bound"  # a bound one works
            assert tasks.statistics().succeeded == 1
    finally:
        setting.undo()
    assert await tether.spawn(echo, "default again") == "default again"
    assert repr(setting) == "<tether.require_registry(True)>"


async def test_the_environment_variable_asks_for_strictness_and_the_call_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TETHER_REQUIRE_REGISTRY", "1")
    with pytest.raises(NoRegistry, match="TETHER_REQUIRE_REGISTRY='1'"):
        tether.spawn(echo, "x")
    with tether.require_registry(False):
        assert await tether.spawn(echo, "allowed") == "allowed"
    with pytest.raises(NoRegistry):
        tether.spawn(echo, "x")
    monkeypatch.setenv("TETHER_REQUIRE_REGISTRY", "0")
    assert await tether.spawn(echo, "off") == "off"


def test_require_registry_refuses_a_non_bool() -> None:
    with pytest.raises(TypeError, match=r"require_registry\(required='yes'\)"):
        tether.require_registry("yes")  # type: ignore[arg-type]


# -- whole runs: the end-of-run report -------------------------------------------------


async def forever() -> None:
    await anyio.sleep_forever()


def run_on(backend: str, main: Callable[[], Any]) -> None:
    """Run ``main()`` as a program would: ``asyncio.run``, ``uvloop.run``,
    ``trio.run``, never through anyio's test runner."""
    if backend == "trio":
        import trio

        trio.run(main)
    elif backend == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        import asyncio

        asyncio.run(main())


ENDS_REPORTED = sys.version_info >= (3, 11)
"""Python 3.10's asyncio cannot tell the end of the run from another cancellation
(no ``Task.cancelling()``), so the WARNING needs 3.11 there (trio: always)."""


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_the_end_of_the_run_cancels_what_is_left_and_says_so(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    cleaned: list[str] = []

    async def consumer() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cleaned.append("consumer")

    async def main() -> None:
        tether.spawn(consumer, name="consumer")
        tether.spawn(forever, name="poller")
        tether.spawn(forever, name="poller")
        tether.spawn(forever, name="heartbeat", daemon=True)
        await anyio.wait_all_tasks_blocked()

    run_on(backend, main)
    assert cleaned == ["consumer"]
    warnings = [
        r.getMessage()
        for r in tether_records(caplog, logging.WARNING)
        if r.levelno == logging.WARNING
    ]
    if backend == "trio" or ENDS_REPORTED:
        (message,) = warnings
        assert message.startswith(
            "The event loop's run ended with 3 task(s) still running in tether's "
            "default registry (spawned where no TaskRegistry was bound): "
        )
        assert "poller x2" in message
        assert "consumer" in message
        assert "heartbeat" not in message  # a daemon is not news
    else:  # pragma: no cover - Python 3.10
        assert warnings == []


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_a_run_that_ends_idle_says_nothing_and_its_loop_is_freed(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An idle default registry is kept for reuse by its thread, not by its run:
    the next run's first spawn lets the previous run's loop go."""
    loops: list[weakref.ref[object]] = []

    async def main() -> None:
        assert await tether.spawn(echo, "done") == "done"
        assert await tether.spawn(echo, "again") == "again"  # reuses it
        if backend == "trio":
            import trio

            loops.append(weakref.ref(trio.lowlevel.current_trio_token()))
        else:
            import asyncio

            loops.append(weakref.ref(asyncio.get_running_loop()))

    run_on(backend, main)
    run_on(backend, main)
    gc.collect()
    assert loops[0]() is None
    assert tether_records(caplog, logging.WARNING) == []


PROGRAM = r"""
import asyncio, sys
import tether

class Reader(asyncio.Protocol):
    buffer = b""

    def data_received(self, data):
        *events, self.buffer = (self.buffer + data).split(b"\n")
        for event in events:
            tether.spawn(self.handle(event), name="handle " + event.decode())

    async def handle(self, data):
        await asyncio.sleep(0)
        if data == b"bad":
            raise ValueError("bad event")
        if data == b"slow":
            await asyncio.Event().wait()

def later():
    tether.spawn(asyncio.Event().wait(), name="from call_soon")

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Reader, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"bad\nslow\n")
    await writer.drain()
    loop.call_soon(later)
    # Until both events were read, the bad one failed and the rest are waiting:
    # main, handle slow and from call_soon.
    while len(asyncio.all_tasks()) != 3 or "handle slow" not in tether.dump():
        await asyncio.sleep(0.01)
    print(tether.dump(), flush=True)
    writer.close()
    server.close()

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
print("exit 0", flush=True)
"""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_program_with_a_protocol_and_a_callback_runs_and_reports(
    loop: str,
) -> None:
    """A whole program in its own process: no anyio runner, no test plugin."""
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", PROGRAM, loop],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("exit 0\n")
    assert "TaskRegistry 'default' OPEN" in done.stdout
    line = next(
        number
        for number, text in enumerate(PROGRAM.splitlines(), 1)
        if "tether.spawn(self.handle" in text
    )
    assert re.search(
        rf"handle slow RUNNING, age [\d.]+ s, spawned at <string>:{line}\b",
        done.stdout,
    )
    assert "from call_soon RUNNING" in done.stdout
    assert "Task 'handle bad' of TaskRegistry 'default' failed" in done.stderr
    assert "ValueError: bad event" in done.stderr
    if ENDS_REPORTED:
        assert (
            "The event loop's run ended with 2 task(s) still running in tether's "
            "default registry" in done.stderr
        )
        assert "handle slow (<string>:" in done.stderr
    assert "Task was destroyed but it is pending" not in done.stderr


LEAKY = """
import anyio, pytest, tether

pytestmark = pytest.mark.anyio

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

class Library:
    def start(self):
        tether.spawn(anyio.sleep_forever, name="library poller")

@pytest.mark.tether_no_leaks
async def test_leaks_through_a_library():
    Library().start()

@pytest.mark.tether_no_leaks
async def test_clean():
    await tether.spawn(anyio.lowlevel.checkpoint)
"""


def test_the_leak_check_names_a_task_left_in_the_default_registry(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_leaky=LEAKY)
    # anyio's plugin alone: pytest-asyncio, installed for other tests, stays off.
    result = pytester.runpytest_subprocess(
        "-p", "anyio", "-p", "no:asyncio", "-W", "error"
    )
    # Each backend's leak errors at teardown; the clean test passes on both.
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        ["*task of the default registry 'library poller' (spawned where no registry*"]
    )
