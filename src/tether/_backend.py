"""The per-registry choice of backend, made in ``__aenter__``.

pytest runs asyncio and trio in one process, so the backend is detected for each
registry when it is entered, never once per process, and the backend's modules are
imported only then. Each backend gets the cheapest public primitives that give the
same observable behaviour:

- asyncio (and uvloop): a raw task per spawn, in its own ``anyio.CancelScope``
  (instantiated through its concrete class, skipping anyio's per-call dispatch);
- trio: a nursery opened by the registry, each task in its own shielded
  ``trio.CancelScope``, so deadlines around the registry never reach its tasks.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

__all__ = ["Backend", "open_backend"]


class Backend:
    """What a registry needs from its event loop."""

    __slots__ = (
        "call_soon_threadsafe",
        "cancelled_exc",
        "create_task",
        "event_cls",
        "nursery_cm",
        "scope_factory",
        "spawn_soon",
        "trio",
    )

    def __init__(self) -> None:
        self.trio = False
        self.cancelled_exc: type[BaseException] = anyio.get_cancelled_exc_class()
        self.scope_factory: Callable[[], Any]
        self.event_cls: Callable[[], Any]
        self.create_task: Callable[..., Any]  # asyncio only
        self.spawn_soon: Callable[..., Any]  # trio only
        self.nursery_cm: Any = None
        self.call_soon_threadsafe: Callable[[Callable[[], object]], object]


async def open_backend() -> Backend:
    """Detect the running backend and prepare its primitives (a trio nursery
    is entered here and must be exited by the caller)."""
    backend = Backend()
    if backend.cancelled_exc.__module__.partition(".")[0] == "trio":
        import trio

        backend.trio = True
        backend.scope_factory = functools.partial(trio.CancelScope, shield=True)
        backend.event_cls = trio.Event
        backend.call_soon_threadsafe = trio.lowlevel.current_trio_token().run_sync_soon
        backend.nursery_cm = trio.open_nursery()
        nursery = await backend.nursery_cm.__aenter__()
        backend.spawn_soon = nursery.start_soon
    else:
        import asyncio

        loop = asyncio.get_running_loop()
        backend.create_task = task_creator(loop)
        backend.scope_factory = type(anyio.CancelScope())
        backend.event_cls = type(anyio.Event())
        backend.call_soon_threadsafe = loop.call_soon_threadsafe
    return backend


def task_creator(loop: asyncio.AbstractEventLoop) -> Callable[..., Any]:
    """``loop.create_task``, unless the loop's task factory starts tasks eagerly,
    inside ``create_task``: then a plain, lazy ``asyncio.Task``.

    asyncio's own eager factories are recognised; any other factory is tried once
    with a probe task, since a wrapped or custom eager factory would otherwise run
    the task inside ``spawn``, before the registry holds it.
    """
    factory = loop.get_task_factory()
    if factory is None:
        return loop.create_task
    import asyncio

    lazy = functools.partial(asyncio.Task, loop=loop)
    if sys.version_info >= (3, 12) and (
        factory is asyncio.eager_task_factory
        or getattr(factory, "__code__", None)
        is asyncio.create_eager_task_factory(asyncio.Task).__code__
    ):
        return lazy
    started: list[bool] = []

    async def probe() -> None:
        started.append(True)

    coro = probe()
    try:
        loop.create_task(coro)  # a lazy probe finishes at the next iteration
    except BaseException:
        coro.close()
        raise
    return lazy if started else loop.create_task
