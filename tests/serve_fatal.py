"""An app whose background task ends it, served as a program, for the tests of
``stop_server``.

    python serve_fatal.py SERVER LOOP ON_ERROR

SERVER is ``aiohttp`` (``web.run_app``) or ``uvicorn`` (a Starlette app with a
lifespan of its own). ``POST /spawn?kind=KIND`` spawns a task into the app's
registry: ``sleeper`` runs until it is cancelled, ``exit`` raises
``SystemExit(3)`` (a watchdog whose parent died), ``fail`` raises
``RuntimeError('boom')``, ``gives-up`` starts a service whose every run fails
and which gives up with ``on_give_up="raise"`` after one restart. Like
``serve_uvicorn.py``, it prints what the test waits for on stdout, one line each.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.lowlevel
import uvicorn
from aiohttp import web
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tether
import tether.aiohttp
from servers import listening_socket, url_of
from tether.asgi import TaskRegistryMiddleware

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from starlette.requests import Request

    from tether.asgi import ASGIApp


async def sleeper() -> None:
    print("sleeper started", flush=True)
    try:
        await anyio.sleep_forever()
    except BaseException:
        print("sleeper cancelled", flush=True)
        raise


async def watchdog() -> None:
    await anyio.lowlevel.checkpoint()
    print("watchdog exits", flush=True)
    raise SystemExit(3)


async def failing() -> None:
    await anyio.lowlevel.checkpoint()
    raise RuntimeError("boom")


async def checker() -> None:
    await anyio.lowlevel.checkpoint()
    print("checker failed", flush=True)
    raise ConnectionError("the checked service is unreachable")


TASKS = {"sleeper": sleeper, "exit": watchdog, "fail": failing}


def spawn(kind: str) -> None:
    if kind == "gives-up":
        tether.current_registry().spawn_service(
            checker, max_restarts=1, backoff=0.01, max_backoff=0.01, on_give_up="raise"
        )
        return
    tether.spawn(TASKS[kind], name=kind)


# -- aiohttp -------------------------------------------------------------------------


async def aiohttp_spawn(request: web.Request) -> web.Response:
    spawn(request.query["kind"])
    return web.Response(text="spawned")


async def pool(app: web.Application) -> AsyncIterator[None]:
    """A context the background work needs, added before setup: closes last."""
    yield
    print("pool closed", flush=True)


def aiohttp_app(on_error: Literal["log", "raise"]) -> web.Application:
    app = web.Application()
    app.router.add_post("/spawn", aiohttp_spawn)
    app.cleanup_ctx.append(pool)
    tether.aiohttp.setup(app, on_error=on_error, shutdown_timeout=5)
    return app


# -- uvicorn -------------------------------------------------------------------------


async def starlette_spawn(request: Request) -> PlainTextResponse:
    spawn(request.query_params["kind"])
    return PlainTextResponse("spawned")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncGenerator[None, None]:
    print("app startup ran", flush=True)
    yield
    print("app shutdown ran", flush=True)  # not in a finally: runs only normally


def starlette_app(on_error: Literal["log", "raise"]) -> ASGIApp:
    app = Starlette(
        routes=[Route("/spawn", starlette_spawn, methods=["POST"])], lifespan=lifespan
    )
    return TaskRegistryMiddleware(app, on_error=on_error, shutdown_timeout=5)


def main() -> None:
    server, loop, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    on_error: Literal["log", "raise"] = "raise" if mode == "raise" else "log"
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(levelname)s %(message)s"
    )
    sock = listening_socket()
    print(f"listening {url_of(sock)}", flush=True)
    if server == "uvicorn":
        config = uvicorn.Config(starlette_app(on_error), loop=loop, log_config=None)
        uvicorn.Server(config).run(sockets=[sock])
        print("uvicorn returned", flush=True)
        return
    if loop == "uvloop":
        import uvloop

        event_loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    else:
        event_loop = asyncio.new_event_loop()
    web.run_app(aiohttp_app(on_error), sock=sock, print=None, loop=event_loop)
    print("run_app returned", flush=True)


if __name__ == "__main__":
    main()
