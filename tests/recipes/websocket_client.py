"""A websocket client library: ``connect()``, ``disconnect()`` and
``reconnect()``; a reader that runs one handler task per event; handlers that call
back through the connection (request and reply).

The ``websockets`` package runs on asyncio (and uvloop), not on trio, so this
recipe does too; tether's part of it (a reader kept for the drain, ``try_spawn``,
a registry per connection) is the same on every backend.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import connect

import tether

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from websockets.asyncio.client import ClientConnection

    Handler = Callable[["Connection", str], Coroutine[Any, Any, None]]

#: The largest message either side takes (bytes): a peer cannot make us buffer more.
MAX_MESSAGE = 64 * 1024


class NotConnected(RuntimeError):
    """The client has no connection: call ``connect()`` first."""


class Connection:
    """One websocket connection and the registry of its tasks, opened together
    and closed together: a client that reconnects makes a new one."""

    def __init__(
        self, websocket: ClientConnection, on_event: Handler, shutdown_timeout: float
    ) -> None:
        self._websocket = websocket
        self._on_event = on_event
        self._replies: dict[int, asyncio.Future[str]] = {}
        self._ids = itertools.count()
        self._reading = True  # False once the reader has ended, however
        # ambient=False: the handlers keep the tether.spawn of the user's code.
        self.tasks = tether.TaskRegistry(
            name="websocket", ambient=False, shutdown_timeout=shutdown_timeout
        )

    async def open(self) -> None:
        await self.tasks.open()
        # The handlers' replies come through the reader: it stays until they
        # have ended (or the drain's deadline has passed), then it is cancelled.
        self.tasks.spawn(self._read, name="reader", daemon=True, stop="after-drain")

    async def request(self, body: str) -> str:
        """Send ``body`` and wait for the server's reply to it."""
        if not self._reading:  # no reader would deliver the reply
            raise ConnectionError("the connection closed")
        request_id = next(self._ids)
        reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        try:
            await self._websocket.send(json.dumps({"id": request_id, "body": body}))
            return await reply
        finally:
            del self._replies[request_id]

    async def _read(self) -> None:
        try:
            async for message in self._websocket:
                frame = json.loads(message)
                if "reply_to" in frame:
                    reply = self._replies.get(frame["reply_to"])
                    if reply is not None and not reply.done():
                        reply.set_result(frame["body"])
                else:
                    # Dropped (None) once disconnect() has begun: no new work.
                    event = frame["event"]
                    self.tasks.try_spawn(self._on_event, self, event, name=event)
        finally:  # the server hung up, or a frame made the reader fail
            self._reading = False
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_exception(ConnectionError("the connection closed"))

    async def close(self) -> None:
        try:
            await self.tasks.aclose()  # the handlers end, then the reader
        finally:
            await self._websocket.close()


class Client:
    """A client whose connection comes and goes. The connection, which holds the
    registry, is its one optional attribute: the registry itself is never
    ``Optional``, and a closed registry is never reopened."""

    def __init__(
        self, url: str, on_event: Handler, *, shutdown_timeout: float = 5.0
    ) -> None:
        self._url = url
        self._on_event = on_event
        self._shutdown_timeout = shutdown_timeout
        self._connection: Connection | None = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise NotConnected("not connected: call `await client.connect()` first")
        return self._connection

    async def connect(self) -> None:
        if self._connection is not None:
            raise RuntimeError("already connected: use `await client.reconnect()`")
        websocket = await connect(self._url, max_size=MAX_MESSAGE)
        connection = Connection(websocket, self._on_event, self._shutdown_timeout)
        try:
            await connection.open()
        except BaseException:
            await websocket.close()
            raise
        self._connection = connection

    async def disconnect(self) -> None:
        """Let the handlers in flight finish (for ``shutdown_timeout`` seconds at
        most), then close the connection. Idempotent."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def reconnect(self) -> None:
        await self.disconnect()
        await self.connect()

    async def request(self, body: str) -> str:
        return await self.connection.request(body)
