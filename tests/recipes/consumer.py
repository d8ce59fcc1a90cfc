"""A supervised queue consumer in a FastAPI lifespan: restarted when it crashes,
cancelled (not drained) at shutdown."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI

import tether

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator


class Queue(Protocol):
    async def get(self) -> str: ...

    async def ack(self, message: str) -> None: ...


async def consume(queue: Queue, handled: list[str]) -> None:
    while True:
        message = await queue.get()  # raises ConnectionError when the broker drops
        handled.append(message)
        await queue.ack(message)


def create_app(queue: Queue, handled: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        async with tether.TaskRegistry(name="app", shutdown_timeout=10) as tasks:
            tasks.spawn_service(
                consume,
                queue,
                handled,
                name="consumer",
                max_restarts=5,  # more than 5 crashes within a minute: give up
                restart_window=60,
                backoff=0.5,  # 0.5 s, 1 s, 2 s... up to max_backoff, with jitter
            )
            app.state.tasks = tasks
            yield
        # leaving the block cancelled the consumer (a service is a daemon)

    return FastAPI(lifespan=lifespan)
