"""The websocket client recipe, against a real websocket server on 127.0.0.1:
handlers that finish through the reader while the client disconnects, events
dropped during the drain, and a client that reconnects.

asyncio and uvloop only: the ``websockets`` package does not run on trio. What
tether does for the recipe is tested on every backend in ``test_readers.py``.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

import anyio
import pytest
from websockets.asyncio.server import serve

from recipes.websocket_client import MAX_MESSAGE, Client, Connection, NotConnected
from tether import RegistryState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from websockets.asyncio.server import ServerConnection

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("anyio_backend", ["asyncio", "uvloop"], indirect=True),
]


class Server:
    """A websocket server that pushes the events it is told to and answers each
    request with its body upper-cased, once ``release`` is set."""

    def __init__(self) -> None:
        self.url = ""
        self.release = anyio.Event()
        self.requests: list[str] = []
        self.connections: list[ServerConnection] = []
        self._requested = anyio.Event()

    async def serve(self, websocket: ServerConnection) -> None:
        self.connections.append(websocket)
        async with anyio.create_task_group() as tg:
            async for message in websocket:
                request = json.loads(message)
                self.requests.append(request["body"])
                self._requested.set()
                tg.start_soon(self._answer, websocket, request)
            tg.cancel_scope.cancel()  # the client has gone: no one to answer

    async def _answer(
        self, websocket: ServerConnection, request: dict[str, str]
    ) -> None:
        await self.release.wait()
        reply = {"reply_to": request["id"], "body": request["body"].upper()}
        await websocket.send(json.dumps(reply))

    async def push(self, event: str) -> None:
        await self.connections[-1].send(json.dumps({"event": event}))

    async def wait_for_requests(self, count: int) -> None:
        while len(self.requests) < count:
            self._requested = anyio.Event()
            await self._requested.wait()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """The server on a free port of 127.0.0.1, stopped when the test ends, even
    when it fails."""
    server = Server()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))  # a free port
        host, port = listening.getsockname()[:2]
        server.url = f"ws://{host}:{port}"
        async with serve(server.serve, sock=listening, max_size=MAX_MESSAGE):
            yield server


class Handlers:
    """The user's event handler: asks the server about each event."""

    def __init__(self) -> None:
        self.done: list[str] = []

    async def on_event(self, connection: Connection, event: str) -> None:
        answer = await connection.request(event)
        self.done.append(f"{event}: {answer}")


async def test_disconnect_lets_handlers_finish_through_the_reader(
    server: Server,
) -> None:
    handlers = Handlers()
    client = Client(server.url, handlers.on_event, shutdown_timeout=5)
    await client.connect()
    connection = client.connection
    await server.push("a")
    await server.push("b")
    await server.wait_for_requests(2)  # both handlers wait for their replies
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.disconnect)
        await anyio.wait_all_tasks_blocked()
        assert connection.tasks.state is RegistryState.DRAINING
        await server.push("late")  # arrives while the handlers drain: dropped
        server.release.set()  # the replies come, through the reader
    assert sorted(handlers.done) == ["a: A", "b: B"]
    stats = connection.tasks.statistics()
    assert (stats.succeeded, stats.cancelled, stats.dropped) == (2, 1, 1)  # reader
    assert server.requests == ["a", "b"] or server.requests == ["b", "a"]
    assert [h.status for h in connection.tasks] == []
    with pytest.raises(NotConnected, match="connect"):
        await client.request("x")


async def test_a_client_reconnects_with_a_registry_per_connection(
    server: Server,
) -> None:
    server.release.set()
    handlers = Handlers()
    client = Client(server.url, handlers.on_event, shutdown_timeout=5)
    await client.connect()
    first = client.connection
    await server.push("a")
    await server.wait_for_requests(1)
    await client.reconnect()  # waits for the handler of "a"
    second = client.connection
    assert first is not second
    assert first.tasks.state is RegistryState.CLOSED
    assert await client.request("b") == "B"
    await server.push("c")
    await server.wait_for_requests(3)
    await client.disconnect()
    assert handlers.done == ["a: A", "c: C"]
    assert second.tasks.state is RegistryState.CLOSED
    await client.disconnect()  # idempotent


async def test_a_server_that_hangs_up_fails_the_requests_in_flight(
    server: Server,
) -> None:
    failures: list[BaseException] = []

    async def on_event(connection: Connection, event: str) -> None:
        try:
            await connection.request(event)
        except ConnectionError as exc:
            failures.append(exc)

    client = Client(server.url, on_event, shutdown_timeout=5)
    await client.connect()
    connection = client.connection
    await server.push("a")
    await server.wait_for_requests(1)
    await server.connections[-1].close()
    await connection.tasks.wait_idle()  # the reader saw the end, then the handler
    assert connection.tasks.state is RegistryState.OPEN
    await client.disconnect()
    assert [str(e) for e in failures] == ["the connection closed"]


async def test_a_reader_that_fails_fails_the_requests_after_it(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Review defect: a frame the reader cannot parse ended the reader (its
    failure logged) but left the connection usable in appearance: a request sent
    after it waited forever for a reply that no reader would deliver."""
    server.release.set()
    client = Client(server.url, Handlers().on_event, shutdown_timeout=5)
    await client.connect()
    connection = client.connection
    await server.connections[-1].send("not json")
    # The reader is a daemon, which wait_idle() does not wait for: its handle.
    (reader,) = [h for h in connection.tasks if h.name == "reader"]
    await reader.wait()  # the reader has failed
    (record,) = [r for r in caplog.records if r.name == "tether"]
    assert record.levelname == "ERROR"
    assert "'reader'" in record.getMessage()
    record.tether_asserted = True
    with anyio.fail_after(5), pytest.raises(ConnectionError, match="closed"):
        await client.request("x")  # a guard, not a measure: it hung before
    await client.disconnect()
