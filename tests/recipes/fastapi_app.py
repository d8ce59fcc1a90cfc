"""FastAPI: spawn background work from handlers, drained at shutdown."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, FastAPI, Request

import tether
from tether.asgi import TaskRegistryMiddleware


class Mailer(Protocol):
    async def send(self, address: str) -> None: ...


def create_app(mailer: Mailer, *, shutdown_timeout: float = 10) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=shutdown_timeout)
    app.state.mailer = mailer

    @app.post("/signup", status_code=202)
    async def signup(address: str, request: Request) -> dict[str, str]:
        mailer: Mailer = request.app.state.mailer
        # Runs after the response is sent; the registry holds it until it ends.
        tether.spawn(mailer.send, address, name=f"welcome {address}")
        return {"status": "accepted"}

    @app.get("/tasks")
    async def tasks(
        registry: Annotated[tether.TaskRegistry, Depends(tether.current_registry)],
    ) -> dict[str, int]:
        return {"running": len(registry)}

    return app
