"""aiohttp: a pool for the jobs, so their follow-up work never waits behind them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import web

import tether
import tether.aiohttp

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


class Scanner(Protocol):
    async def scan(self, folder: str) -> None: ...


SCANNER = web.AppKey("scanner", Scanner)
JOBS = web.AppKey("jobs", tether.Pool)
WATCHERS = web.AppKey("watchers", set[web.WebSocketResponse])


def jobs_pool(
    limit: int, max_pending: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        # At most `limit` scans at once, `max_pending` more waiting: the
        # registry is open here, and closes (with the pool's work) after.
        registry = app[tether.aiohttp.REGISTRY]
        app[JOBS] = registry.pool("jobs", limit=limit, max_pending=max_pending)
        yield

    return context


async def scan_job(app: web.Application, folder: str) -> None:
    # Follow-up work goes to the registry, not the pool: it starts at once.
    tether.spawn(notify, app, f"started {folder}", name="notify")
    await app[SCANNER].scan(folder)
    tether.spawn(notify, app, f"finished {folder}", name="notify")


async def notify(app: web.Application, message: str) -> None:
    watchers = app[WATCHERS]
    for watcher in list(watchers):  # a copy: one may leave meanwhile
        await watcher.send_str(message)


async def scan(request: web.Request) -> web.Response:
    folder = request.query["folder"]
    # As aiojobs' spawn: waits while the pool's queue is full.
    await request.app[JOBS].spawn_when_room(
        scan_job, request.app, folder, name=f"scan {folder}"
    )
    return web.json_response({"status": "accepted"}, status=202)


async def jobs(request: web.Request) -> web.Response:
    stats = request.app[JOBS].statistics()
    return web.json_response({"running": stats.running, "queued": stats.queued})


async def progress(request: web.Request) -> web.WebSocketResponse:
    websocket = web.WebSocketResponse()
    await websocket.prepare(request)
    request.app[WATCHERS].add(websocket)
    try:
        async for _ in websocket:
            pass
    finally:
        request.app[WATCHERS].discard(websocket)
    return websocket


def create_app(
    scanner: Scanner, *, limit: int = 2, max_pending: int = 10
) -> web.Application:
    app = web.Application()
    app[SCANNER] = scanner
    app[WATCHERS] = set()
    app.router.add_post("/scan", scan)
    app.router.add_get("/jobs", jobs)
    app.router.add_get("/progress", progress)
    tether.aiohttp.setup(app, shutdown_timeout=10)
    app.cleanup_ctx.append(jobs_pool(limit, max_pending))  # after setup
    return app
