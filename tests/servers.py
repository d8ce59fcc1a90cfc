"""Real servers on 127.0.0.1 for the integration tests, and a mailer to drive.

Each server listens on a socket bound to a free port before the server starts
(so a client may connect at once: the kernel queues it), and is stopped when its
block ends, whether the test passed or failed. Every block is bounded, so a
server that will not stop fails the test instead of hanging the run.
"""

from __future__ import annotations

import logging
import socket
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import uvicorn
from aiohttp import web

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from tether.asgi import ASGIApp

#: No test waits longer for a server to start, answer or stop.
BOUND = 30


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1, on a port the kernel chose."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@asynccontextmanager
async def uvicorn_server(app: ASGIApp) -> AsyncGenerator[str, None]:
    """Serve ``app`` with uvicorn in this event loop; yield its base URL."""
    async with uvicorn_serving(app) as (url, _):
        yield url


@asynccontextmanager
async def uvicorn_serving(
    app: ASGIApp, *, log_level: str = "warning"
) -> AsyncGenerator[tuple[str, uvicorn.Server], None]:
    """Serve ``app`` with uvicorn in this event loop; yield its base URL and the
    server. The block ends once the server has stopped."""
    sock = listening_socket()
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, log_level=log_level, ws="none"
    )
    server = uvicorn.Server(config)
    with anyio.fail_after(BOUND), sock:
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            try:
                yield url_of(sock), server
            finally:
                server.should_exit = True  # drains, then runs the lifespan shutdown


@asynccontextmanager
async def aiohttp_server(
    app: web.Application, *, handler_cancellation: bool = False
) -> AsyncGenerator[str, None]:
    """Serve ``app`` with aiohttp's AppRunner; yield its base URL."""
    sock = listening_socket()
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation)
    with anyio.fail_after(BOUND):
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            yield url_of(sock)
        finally:
            await runner.cleanup()  # closes the socket too


class Mailer:
    """A mailer whose sends the test releases: each records that it started,
    waits for ``release``, then records that it finished. An address starting
    with ``bounce`` fails at once."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()
        self.finished = anyio.Event()
        self.sent: list[str] = []

    async def send(self, address: str) -> None:
        self.started.set()
        if address.startswith("bounce"):
            raise ConnectionRefusedError(f"{address}: mailbox unavailable")
        await self.release.wait()
        self.sent.append(address)
        self.finished.set()


class FailureLog(logging.Handler):
    """Sets ``logged`` when logger ``"tether"`` reports a task failure.

    The tests that use it assert every record it holds: it claims them (see
    ``helpers.tether_records``)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.logged = anyio.Event()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.tether_asserted = True
        self.records.append(record)
        self.logged.set()


@asynccontextmanager
async def failure_log() -> AsyncGenerator[FailureLog, None]:
    handler = FailureLog()
    logger = logging.getLogger("tether")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
