"""tether.asgi under hypercorn on 127.0.0.1, on every backend: hypercorn serves on
asyncio (with or without uvloop) and on trio, in the test's own event loop.

hypercorn stops when its ``shutdown_trigger`` returns, so a program that embeds it
gives ``stop_server=`` a callable that fires that trigger.
"""

# hypercorn's serve() takes WSGI apps too, typed with bare dicts pyright cannot see.
# pyright: reportUnknownVariableType=false

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tether
from servers import BOUND, listening_socket, url_of
from tether.asgi import TaskRegistryMiddleware

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from starlette.requests import Request

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="fd:// binds are POSIX"),
]


async def serve(
    backend: str,
    app: Any,
    config: Config,
    stop: anyio.Event,
    raised: list[BaseException],
) -> None:
    """hypercorn's ``serve`` for the running backend, until ``stop`` is set; what
    it raises goes to ``raised``."""
    try:
        if backend == "trio":
            from hypercorn.trio import serve as serve_on_trio

            await serve_on_trio(app, config, shutdown_trigger=stop.wait)
        else:
            from hypercorn.asyncio import serve as serve_on_asyncio

            await serve_on_asyncio(app, config, shutdown_trigger=stop.wait)
    except Exception as exc:  # what the server does with a failed shutdown
        raised.append(exc)


async def test_a_fatal_task_stops_hypercorn_and_the_apps_shutdown_runs_first(
    backend_name: str,
) -> None:
    """Issue 27 and issue 19, under hypercorn: the app's shutdown runs, then
    hypercorn is told the shutdown failed, and its serve() raises."""
    events: list[str] = []
    stop = anyio.Event()

    def stop_server(cause: BaseException) -> None:
        events.append(f"stop_server({cause!r})")
        stop.set()

    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise RuntimeError("boom")

    async def spawn(request: Request) -> PlainTextResponse:
        tether.spawn(fail)
        return PlainTextResponse("spawned")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
        yield
        events.append("app shut down")

    app = Starlette(routes=[Route("/fail", spawn, methods=["POST"])], lifespan=lifespan)
    middleware = TaskRegistryMiddleware(app, on_error="raise", stop_server=stop_server)
    sock = listening_socket()
    url = url_of(sock)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn closes it
    config.accesslog = config.errorlog = None
    raised: list[BaseException] = []
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as group:
            group.start_soon(serve, backend_name, middleware, config, stop, raised)
            async with httpx.AsyncClient(base_url=url, timeout=BOUND) as client:
                assert (await client.post("/fail")).status_code == 200
    # serve() has returned: the callable stopped hypercorn, after the app's own
    # shutdown ran.
    assert events == ["stop_server(RuntimeError('boom'))", "app shut down"]
    if backend_name != "trio":  # hypercorn on trio logs a failed shutdown instead
        [failure] = raised
        assert isinstance(failure, LifespanFailureError)
        assert "RuntimeError: boom" in str(failure)  # the registry's traceback
