"""Graceful shutdown on SIGTERM or Ctrl+C: stop taking work, let the work in flight
finish for at most ``shutdown_timeout`` seconds, then cancel what is left."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import anyio

import tether

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any


async def serve_until_signal(
    accept: Callable[[tether.TaskRegistry], Coroutine[Any, Any, None]],
) -> None:
    async with tether.TaskRegistry(name="worker", shutdown_timeout=10) as tasks:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with anyio.create_task_group() as group:
                group.start_soon(accept, tasks)  # spawns each job into tasks
                async for _ in signals:
                    group.cancel_scope.cancel()  # stop taking new work
                    break
    # leaving the registry drained the jobs in flight, then cancelled the rest
