"""A library that owns a private registry: opened in ``start()``, closed in
``close()``, and never seen by its users' ``tether.spawn``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import tether

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from typing import Any


class Client:
    def __init__(self, on_event: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._on_event = on_event
        # ambient=False: the client's tasks keep their user's ambient registry.
        self._tasks = tether.TaskRegistry(
            name="client", ambient=False, shutdown_timeout=5
        )

    async def start(self) -> None:
        await self._tasks.open()

    def dispatch(self, event: str) -> None:
        """Run the user's handler for ``event`` in the background."""
        self._tasks.spawn(self._on_event, event, name=f"on {event}")

    async def close(self) -> None:
        await self._tasks.aclose()  # drains for 5 s at most, then cancels
