"""A reader that feeds handlers: a daemon kept until the drain ends
(``spawn(..., daemon=True, stop="after-drain")``), work offered with
``try_spawn`` and dropped while the registry closes, and a registry per
connection for a client that reconnects (issue 21, items 1 and 7)."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest

import tether
from helpers import closed, double, park, tether_records
from tether import RegistryClosed, RegistryFull, RegistryState, Status, TaskRegistry

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def misuse(value: object) -> Any:
    """``value`` typed as anything: the misuse a test makes on purpose (the type
    checkers refuse each of them in tests/type_tests/check_registry.py)."""
    return value


def state_of(registry: TaskRegistry) -> RegistryState:
    """Read the state afresh (type checkers keep a narrowed attribute)."""
    return registry.state


class Link:
    """One connection in memory, in the shape of a websocket client's: the server
    pushes events and replies into ``inbox``; a handler sends a request and waits
    for the reply that only the reader delivers."""

    def __init__(self, tasks: TaskRegistry) -> None:
        self.tasks = tasks
        self.to_client, self.inbox = anyio.create_memory_object_stream[tuple[str, int]](
            16
        )
        self.to_server, self.requests = anyio.create_memory_object_stream[int](16)
        self.waiting: dict[int, anyio.Event] = {}
        self.handled: list[int] = []
        self.log: list[str] = []

    def close(self) -> None:
        for stream in (self.to_client, self.inbox, self.to_server, self.requests):
            stream.close()

    async def read(self) -> None:
        """The reader: one handler per event, each reply to its waiter."""
        try:
            async for kind, n in self.inbox:
                if kind == "event":
                    self.tasks.try_spawn(self.handle, n, name=f"on_event {n}")
                else:
                    self.waiting.pop(n).set()
        finally:
            self.log.append("reader stopped")

    async def handle(self, n: int) -> None:
        """A handler that calls back through the connection."""
        reply = self.waiting[n] = anyio.Event()
        await self.to_server.send(n)
        await reply.wait()
        self.handled.append(n)
        self.log.append(f"handler {n} done")


# -- a daemon kept until the drain ends ---------------------------------------------


async def test_an_after_drain_reader_delivers_replies_while_its_handlers_drain(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    tasks = TaskRegistry(name="client", shutdown_timeout=5)
    link = Link(tasks)
    try:
        await tasks.open()
        reader = tasks.spawn(link.read, daemon=True, stop="after-drain")
        await link.to_client.send(("event", 1))
        assert await link.requests.receive() == 1  # handler 1 waits for its reply
        async with anyio.create_task_group() as tg:
            tg.start_soon(tasks.aclose)  # disconnect(): closing begins
            await anyio.wait_all_tasks_blocked()
            assert state_of(tasks) is RegistryState.DRAINING
            assert reader.status is Status.RUNNING  # kept for the drain
            await link.to_client.send(("event", 2))  # arrives during the drain
            await link.to_client.send(("reply", 1))
    finally:
        link.close()
    assert link.handled == [1]
    assert link.log == ["handler 1 done", "reader stopped"]
    assert reader.status is Status.CANCELLED
    assert tasks.statistics().dropped == 1
    (drop,) = [r for r in tether_records(caplog, logging.DEBUG) if "dropped" in r.msg]
    assert drop.getMessage() == (
        "TaskRegistry 'client' is DRAINING: try_spawn() dropped task 'on_event 2'"
    )
    assert drop.levelno == logging.DEBUG
    assert drop.tether_registry == "client"  # type: ignore[attr-defined]
    assert drop.tether_task == "on_event 2"  # type: ignore[attr-defined]
    # Cancelling the reader once the drain is over is the plan: nothing warns.
    assert tether_records(caplog, logging.WARNING) == []


@pytest.mark.mock_clock
async def test_an_ordinary_daemon_reader_is_cancelled_at_once_and_its_handler_waits(
    backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Today's behaviour, kept for ``daemon=True`` alone: the reader goes as
    closing begins, so the reply never arrives and the handler is cancelled at
    the deadline (the 5 s + lost work of the issue). On asyncio, which has no
    virtual clock, the deadline is short and only the order is asserted."""
    deadline = 5 if backend_name == "trio" else 0.01
    tasks = TaskRegistry(name="client", shutdown_timeout=deadline)
    link = Link(tasks)
    try:
        await tasks.open()
        reader = tasks.spawn(link.read, daemon=True)
        await link.to_client.send(("event", 1))
        assert await link.requests.receive() == 1
        start = anyio.current_time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(tasks.aclose)
            await anyio.wait_all_tasks_blocked()
            assert reader.status is Status.CANCELLED
            await link.to_client.send(("reply", 1))  # nobody reads it
        if backend_name == "trio":
            assert anyio.current_time() - start == 5
    finally:
        link.close()
    assert link.handled == []
    (warning,) = tether_records(caplog, logging.WARNING)
    assert "on_event 1" in warning.getMessage()


@pytest.mark.mock_clock
async def test_the_drain_deadline_cancels_an_after_drain_daemon_with_the_rest(
    backend_name: str,
) -> None:
    ended: dict[str, float] = {}

    async def reader() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended["reader"] = anyio.current_time()

    async def stuck() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended["handler"] = anyio.current_time()

    deadline = 10 if backend_name == "trio" else 0.01  # asyncio: the order only
    start = 0.0
    async with TaskRegistry(shutdown_timeout=deadline) as tasks:
        tasks.spawn(reader, daemon=True, stop="after-drain")
        tasks.spawn(stuck)
        await anyio.wait_all_tasks_blocked()
        start = anyio.current_time()
    assert set(ended) == {"reader", "handler"}
    if backend_name == "trio":
        assert ended["reader"] - start == 10
        assert ended["handler"] - start == 10


async def test_with_nothing_to_drain_the_reader_is_cancelled_at_once() -> None:
    async with TaskRegistry() as tasks:
        reader = tasks.spawn(anyio.sleep_forever, daemon=True, stop="after-drain")
        await anyio.wait_all_tasks_blocked()
    assert reader.status is Status.CANCELLED  # pyright: ignore[reportPossiblyUnboundVariable]


async def test_on_close_is_the_default_of_a_daemon() -> None:
    record: list[str] = []

    async def handler(daemon: tether.Handle[None]) -> None:
        await daemon.wait()
        record.append("handler saw the daemon end")

    async with TaskRegistry() as tasks:
        daemon = tasks.spawn(anyio.sleep_forever, daemon=True, stop="on-close")
        tasks.spawn(handler, daemon)
        await anyio.wait_all_tasks_blocked()
    assert record == ["handler saw the daemon end"]


async def test_a_failure_in_raise_mode_cancels_an_after_drain_daemon_at_once() -> None:
    record: list[str] = []

    async def reader() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            record.append("reader cancelled")

    async def broken() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    with pytest.raises(ExceptionGroup) as info:  # noqa: PT012 - leaving the block raises
        async with TaskRegistry(on_error="raise") as tasks:
            tasks.spawn(reader, daemon=True, stop="after-drain")
            await anyio.wait_all_tasks_blocked()
            tasks.spawn(broken)
            await anyio.sleep_forever()
    assert [type(e) for e in info.value.exceptions] == [ValueError]
    assert record == ["reader cancelled"]


async def test_a_cancelled_host_skips_the_drain_and_cancels_the_reader() -> None:
    release = anyio.Event()
    with anyio.CancelScope() as scope:
        async with TaskRegistry() as tasks:
            reader = tasks.spawn(anyio.sleep_forever, daemon=True, stop="after-drain")
            handler = tasks.spawn(park, release)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
    assert reader.status is Status.CANCELLED  # pyright: ignore[reportPossiblyUnboundVariable]
    assert handler.status is Status.CANCELLED  # pyright: ignore[reportPossiblyUnboundVariable]


async def test_a_second_aclose_cancels_the_reader_and_the_handlers_at_once() -> None:
    tasks = TaskRegistry()
    await tasks.open()
    reader = tasks.spawn(anyio.sleep_forever, daemon=True, stop="after-drain")
    handler = tasks.spawn(park, anyio.Event())
    async with anyio.create_task_group() as tg:
        tg.start_soon(tasks.aclose)
        await anyio.wait_all_tasks_blocked()
        assert reader.status is Status.RUNNING
        await tasks.aclose()  # a second Ctrl+C
    assert (reader.status, handler.status) == (Status.CANCELLED, Status.CANCELLED)


async def test_a_shield_in_the_reader_is_honoured_when_the_drain_ends() -> None:
    record: list[str] = []

    async def reader() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()
                record.append("reader's shielded cleanup ran")

    async def handler() -> None:
        await anyio.lowlevel.checkpoint()
        record.append("handler done")

    async with TaskRegistry() as tasks:
        tasks.spawn(reader, daemon=True, stop="after-drain")
        tasks.spawn(handler)
    assert record == ["handler done", "reader's shielded cleanup ran"]


async def test_aclose_from_the_reader_itself_waits_for_the_handlers() -> None:
    record: list[str] = []
    go = anyio.Event()

    async def handler() -> None:
        await go.wait()
        record.append("handler done")

    async def reader(tasks: TaskRegistry) -> str:
        tasks.spawn(handler)
        await anyio.lowlevel.checkpoint()
        go.set()
        await tasks.aclose()  # the server hung up: the reader disconnects
        record.append("reader closed its registry")
        return "left"

    tasks = TaskRegistry()
    await tasks.open()
    reader_handle = tasks.spawn(reader, tasks, daemon=True, stop="after-drain")
    assert await reader_handle == "left"
    assert record == ["handler done", "reader closed its registry"]
    assert state_of(tasks) is RegistryState.CLOSED
    await tasks.aclose()


async def test_an_after_drain_daemon_spawned_while_draining_lives_on() -> None:
    record: list[str] = []
    go = anyio.Event()

    async def late_reader() -> None:
        try:
            go.set()
            await anyio.sleep_forever()
        finally:
            record.append("late reader cancelled")

    async def handler(tasks: TaskRegistry) -> None:
        await anyio.lowlevel.checkpoint()  # the body has ended: draining
        tasks.spawn(late_reader, daemon=True, stop="after-drain")
        await go.wait()  # it runs during the drain
        record.append("handler done")

    async with TaskRegistry() as tasks:
        tasks.spawn(handler, tasks)
    assert record == ["handler done", "late reader cancelled"]


async def test_stop_on_every_spawn_form_of_the_registry() -> None:
    seen: list[list[Status]] = []

    async def reader(
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        await anyio.sleep_forever()

    async def handler(readers: list[tether.Handle[None]]) -> None:
        await anyio.lowlevel.checkpoint()  # the body has ended: draining
        await anyio.wait_all_tasks_blocked()
        seen.append([r.status for r in readers])

    readers: list[tether.Handle[None]] = []
    async with TaskRegistry(limit=10) as tasks:
        readers.append(
            await tasks.spawn_when_free(reader, daemon=True, stop="after-drain")
        )

        def in_thread() -> tether.Handle[None]:
            future = tasks.spawn_threadsafe(reader, daemon=True, stop="after-drain")
            return future.result()

        readers.append(await anyio.to_thread.run_sync(in_thread))
        readers.append(tasks.spawn_service(reader, stop="after-drain"))
        readers.append(tether.spawn(reader, daemon=True, stop="after-drain"))
        await tasks.start(reader, daemon=True, stop="after-drain")
        readers.extend(h for h in tasks if h not in readers)
        tasks.spawn(handler, readers)
    assert seen == [[Status.RUNNING] * 5]
    assert [r.status for r in readers] == [Status.CANCELLED] * 5


async def test_an_after_drain_service_restarts_during_the_drain() -> None:
    runs: list[str] = []
    handler_may_end = anyio.Event()

    async def feed() -> None:
        runs.append("run")
        if len(runs) == 2:
            handler_may_end.set()  # the second run happens during the drain
            await anyio.sleep_forever()
        raise ConnectionError("feed dropped")

    async def handler() -> None:
        await handler_may_end.wait()

    async with TaskRegistry() as tasks:
        tasks.spawn(handler)
        await anyio.wait_all_tasks_blocked()
        service = tasks.spawn_service(feed, backoff=0.001, stop="after-drain")
    assert runs == ["run", "run"]
    assert service.status is Status.CANCELLED  # pyright: ignore[reportPossiblyUnboundVariable]


async def test_an_after_drain_daemon_is_a_daemon_in_dump() -> None:
    async with TaskRegistry(name="client") as tasks:
        tasks.spawn(anyio.sleep_forever, daemon=True, stop="after-drain", name="read")
        await anyio.wait_all_tasks_blocked()
        assert "read RUNNING, daemon" in tasks.dump()


async def test_bad_stop_values_are_refused_naming_the_fix() -> None:
    async with TaskRegistry() as tasks:
        coro = anyio.sleep_forever()
        with pytest.raises(ValueError, match="without daemon=True") as info:
            tasks.spawn(coro, stop="after-drain")
        assert "spawn(..., daemon=True, stop='after-drain')" in str(info.value)
        assert closed(coro)
        with pytest.raises(ValueError, match="use 'on-close'"):
            tasks.spawn(
                anyio.sleep_forever,
                daemon=True,
                stop=misuse("later"),
            )
        with pytest.raises(TypeError, match=r"stop=True\): use 'on-close'"):
            tasks.spawn(
                anyio.sleep_forever,
                daemon=True,
                stop=misuse(True),
            )
        with pytest.raises(ValueError, match="without daemon=True"):
            tasks.try_spawn(anyio.sleep_forever, stop="on-close")

        async def reads_until(*, stop: str = "eof") -> None:
            del stop  # pragma: no cover - never called

        with pytest.raises(TypeError, match="'stop' is both an option"):
            tasks.spawn(reads_until, daemon=True, stop="after-drain")
        assert len(tasks) == 0  # the registry is intact


# -- try_spawn: offered, and dropped while closing ----------------------------------


async def test_try_spawn_spawns_while_open_and_drops_once_closing_begins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    tasks = TaskRegistry(name="app")
    with pytest.raises(RegistryClosed, match="NEW"):  # a misuse, not a drop
        tasks.try_spawn(double, 1)
    async with tasks:
        handle = tasks.try_spawn(double, 21)
        assert handle is not None
        assert await handle == 42
    coro = double(2)
    assert tasks.try_spawn(coro) is None
    assert closed(coro)
    assert tasks.try_spawn(double, 3, name="late") is None
    stats = tasks.statistics()
    assert (stats.spawned, stats.succeeded, stats.dropped) == (1, 1, 2)
    drops = [r.getMessage() for r in tether_records(caplog, logging.DEBUG)]
    assert drops[-2:] == [
        "TaskRegistry 'app' is CLOSED: try_spawn() dropped task 'double'",
        "TaskRegistry 'app' is CLOSED: try_spawn() dropped task 'late'",
    ]


async def test_try_spawn_from_a_draining_registrys_own_task_drops() -> None:
    results: list[object] = []

    async def follow_up(tasks: TaskRegistry) -> None:
        await anyio.lowlevel.checkpoint()  # the body has ended: draining
        results.append(tasks.try_spawn(double, 1))
        results.append(await tasks.spawn(double, 2))  # follow-up work: taken

    async with TaskRegistry() as tasks:
        tasks.spawn(follow_up, tasks)
    assert results == [None, 4]


def refuse_misuse(tasks: TaskRegistry) -> None:
    """Each misuse of try_spawn raises, naming try_spawn."""
    with pytest.raises(TypeError, match=r"^try_spawn\(double, \.\.\.\): double\(\)"):
        tasks.try_spawn(misuse(double), 1, 2)
    with pytest.raises(TypeError, match=r"^try_spawn\(\) got keyword arguments"):
        misuse(tasks.try_spawn)(double, x=1)
    with pytest.raises(TypeError, match=r"^try_spawn\(\.\.\., name=3\)"):
        tasks.try_spawn(double, 1, name=misuse(3))
    with pytest.raises(ValueError, match=r"^try_spawn\(\.\.\., stop='after-drain'\)"):
        tasks.try_spawn(double, 1, stop="after-drain")
    coro = double(1)
    with pytest.raises(TypeError, match="daemon must be True or False"):
        tasks.try_spawn(coro, daemon=misuse("yes"))
    assert closed(coro)


async def test_try_spawn_refuses_misuse_whether_it_would_take_or_drop() -> None:
    async with TaskRegistry() as tasks:
        refuse_misuse(tasks)
        assert len(tasks) == 0
    refuse_misuse(tasks)
    stats = tasks.statistics()
    assert (stats.spawned, stats.dropped) == (0, 0)


async def test_try_spawn_raises_registry_full_a_full_queue_is_not_a_drop() -> None:
    release = anyio.Event()
    async with TaskRegistry(limit=1, max_pending=0) as tasks:
        tasks.spawn(park, release)
        coro = park(release)
        with pytest.raises(RegistryFull):
            tasks.try_spawn(coro)
        assert closed(coro)
        release.set()


async def test_try_spawn_from_another_thread_names_spawn_threadsafe() -> None:
    async with TaskRegistry() as tasks:
        pass
    errors: list[BaseException] = []

    def in_thread() -> None:
        try:
            tasks.try_spawn(double, 1)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert "spawn_threadsafe" in str(errors[0])


# -- a registry per connection: the reconnecting client -----------------------------


class Session:
    """One connection and the registry of its tasks, made together and closed
    together: a client that reconnects makes a new one."""

    def __init__(self, number: int, seen: list[tuple[int, str]]) -> None:
        self.number = number
        self.seen = seen
        self.tasks = TaskRegistry(
            name=f"session {number}", ambient=False, shutdown_timeout=5
        )
        self.to_client, self.inbox = anyio.create_memory_object_stream[str](16)

    async def open(self) -> None:
        await self.tasks.open()
        self.tasks.spawn(self.read, daemon=True, stop="after-drain")

    async def read(self) -> None:
        async for event in self.inbox:
            self.tasks.try_spawn(self.on_event, event)

    async def on_event(self, event: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.seen.append((self.number, event))

    async def close(self) -> None:
        try:
            await self.tasks.aclose()
        finally:
            self.to_client.close()
            self.inbox.close()


class Reconnecting:
    """The client: ``connect()``, ``disconnect()``, ``reconnect()``. What may be
    missing is the connection, so that is the one optional attribute; the
    registry is a plain attribute of the connection."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self._connections = 0
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("not connected: call connect() first")
        return self._session

    async def connect(self) -> None:
        if self._session is not None:
            raise RuntimeError("already connected: call reconnect()")
        self._connections += 1
        session = Session(self._connections, self.seen)
        await session.open()
        self._session = session

    async def push(self, event: str) -> None:
        await self.session.to_client.send(event)

    async def disconnect(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def reconnect(self) -> None:
        await self.disconnect()
        await self.connect()


async def test_a_client_reconnects_with_a_new_registry_per_connection() -> None:
    client = Reconnecting()
    await client.connect()
    first = client.session.tasks
    await client.push("a")
    await anyio.wait_all_tasks_blocked()
    await client.reconnect()
    second = client.session.tasks
    assert first is not second
    assert first.state is RegistryState.CLOSED
    assert second.state is RegistryState.OPEN
    await client.push("b")
    await anyio.wait_all_tasks_blocked()
    session = client.session
    await client.disconnect()
    assert client.seen == [(1, "a"), (2, "b")]
    assert (first.statistics().succeeded, second.statistics().succeeded) == (1, 1)
    assert session.tasks.try_spawn(double, 1) is None  # a late event: dropped
    with pytest.raises(RuntimeError, match="not connected"):
        _ = client.session
    await client.disconnect()  # idempotent


async def test_a_closed_registry_is_not_opened_again() -> None:
    """Registries stay single-use, as nurseries and task groups are: a new
    session is a new registry, so a handle, dump() and statistics() always speak
    of one session."""
    tasks = TaskRegistry(name="session")
    handles: list[tether.Handle[int]] = []
    async with tasks:
        handles.append(tasks.spawn(double, 1))
    assert await handles[0] == 2
    with pytest.raises(RegistryClosed, match="single-use"):
        await tasks.open()
    with pytest.raises(RegistryClosed, match="single-use"):
        async with tasks:
            pass  # pragma: no cover
