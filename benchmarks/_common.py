"""Shared pieces of the benchmark suite: the work function, the case record, and the
backend runners.

Every timed case is an ``async def body(n) -> int`` that spawns ``n`` tasks running
:func:`work`, waits for all of them and returns how many results it saw (or ``n`` when
the primitive hands back no results, as a bare trio nursery). The harness in ``run.py``
calls it inside an already running event loop, right after ``gc.collect()``, between two
``time.perf_counter_ns()`` readings: loop startup is never part of a measurement.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

#: Backend names, in table order.
BACKENDS: tuple[str, ...] = ("asyncio", "uvloop", "trio")
#: The backends an asyncio-only library can run on.
ASYNCIO_FAMILY: tuple[str, ...] = ("asyncio", "uvloop")

Body = Callable[[int], Awaitable[int]]


async def work(_item: object = None) -> int:
    """The one trivial task body every case runs (the argument serves ``amap``)."""
    return 1


@dataclass(frozen=True)
class Case:
    """One timed primitive: what it is called, where it runs, and its body."""

    key: str
    name: str
    group: str
    backends: tuple[str, ...]
    body: Body
    #: Returns why the case cannot run (``None`` when it can).
    unavailable: Callable[[], str | None] = field(default=lambda: None)


def missing_module(*names: str) -> Callable[[], str | None]:
    """An ``unavailable`` check that reports the first module that cannot be found."""

    def check() -> str | None:
        for name in names:
            if importlib.util.find_spec(name) is None:
                return f"{name} is not installed"
        return None

    return check


def backend_unavailable(backend: str) -> str | None:
    """Why ``backend`` cannot run here, or ``None``."""
    if backend == "asyncio":
        return None
    if backend == "uvloop":
        if sys.platform == "win32":
            return "uvloop does not support Windows"
        return missing_module("uvloop")()
    if backend == "trio":
        return missing_module("trio")()
    return f"unknown backend {backend!r}"


def _loop_factory(backend: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if backend == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_on(backend: str, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``fn()`` to completion on a fresh event loop of ``backend``."""
    if backend == "trio":
        import trio

        return trio.run(fn)
    factory = _loop_factory(backend)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(fn())
    loop = factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(fn())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def tether_unavailable(*attrs: str) -> Callable[[], str | None]:
    """An ``unavailable`` check for tether cases: the package and the names they use."""

    def check() -> str | None:
        try:
            import tether
        except Exception as exc:  # any import failure means "not ready yet"
            return f"tether: not importable yet ({type(exc).__name__}: {exc})"
        missing = [a for a in attrs if not hasattr(tether, a)]
        if missing:
            return f"tether: not importable yet (no {', '.join(missing)})"
        return None

    return check


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
