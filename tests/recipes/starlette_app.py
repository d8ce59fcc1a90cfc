"""Starlette: the same middleware, for HTTP and websocket handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

import tether
from tether.asgi import TaskRegistryMiddleware

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.websockets import WebSocket


class Mailer(Protocol):
    async def send(self, address: str) -> None: ...


async def signup(request: Request) -> JSONResponse:
    address = request.query_params["address"]
    mailer: Mailer = request.app.state.mailer
    tether.spawn(mailer.send, address, name=f"welcome {address}")
    return JSONResponse({"status": "accepted"}, status_code=202)


async def invitations(websocket: WebSocket) -> None:
    await websocket.accept()
    mailer: Mailer = websocket.app.state.mailer
    async for address in websocket.iter_text():
        tether.spawn(mailer.send, address, name=f"invite {address}")
        await websocket.send_text(f"queued {address}")


def create_app(mailer: Mailer, *, shutdown_timeout: float = 10) -> Starlette:
    app = Starlette(
        routes=[
            Route("/signup", signup, methods=["POST"]),
            WebSocketRoute("/invitations", invitations),
        ],
        middleware=[
            Middleware(TaskRegistryMiddleware, shutdown_timeout=shutdown_timeout)
        ],
    )
    app.state.mailer = mailer
    return app
