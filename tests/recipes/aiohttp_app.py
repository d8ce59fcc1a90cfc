"""aiohttp: one call gives the application a registry, bound for every request."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

import tether
import tether.aiohttp


class Mailer(Protocol):
    async def send(self, address: str) -> None: ...


MAILER = web.AppKey("mailer", Mailer)


async def signup(request: web.Request) -> web.Response:
    address = request.query["address"]
    tether.spawn(request.app[MAILER].send, address, name=f"welcome {address}")
    return web.json_response({"status": "accepted"}, status=202)


async def tasks(request: web.Request) -> web.Response:
    registry = request.app[tether.aiohttp.REGISTRY]
    return web.json_response({"running": len(registry)})


def create_app(mailer: Mailer, *, shutdown_timeout: float = 10) -> web.Application:
    app = web.Application()
    app[MAILER] = mailer
    app.router.add_post("/signup", signup)
    app.router.add_get("/tasks", tasks)
    tether.aiohttp.setup(app, shutdown_timeout=shutdown_timeout)
    return app
