"""Shared pieces of the benchmark suite: the task bodies, the case record, and the
backend runners.

Every timed case is an ``async def body(n) -> int`` that spawns ``n`` tasks running a
task body, waits for all of them and returns the sum of the results it saw (or ``n``
when the primitive hands back no results, as a bare trio nursery). The harness in
``run.py`` calls it inside an already running event loop, right after ``gc.collect()``,
between two ``time.perf_counter_ns()`` readings: loop startup is never part of a
measurement.

Each throughput case comes in two variants (:func:`task_cases`):

* ``suspends`` (the figures): the body suspends once and returns 1, as real tasks do;
  a body that never suspends hides every cost of parking and waking a task. Cases
  written against anyio (anyio, asyncer, aiometer, tether) suspend with the portable
  ``anyio.lowlevel.checkpoint()``; cases written against a raw backend (the floors, the
  stdlib, the asyncio-only libraries) with that backend's own ``sleep(0)`` (on trio
  its checkpoint, which is what ``trio.sleep(0)`` runs), so they are not charged
  anyio's dispatch, which they do not have.
* ``never-suspends``: the body returns 1 at once (a second column, never a figure).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from anyio.lowlevel import checkpoint

T = TypeVar("T")

#: Backend names, in table order.
BACKENDS: tuple[str, ...] = ("asyncio", "uvloop", "trio")
#: The backends an asyncio-only library can run on.
ASYNCIO_FAMILY: tuple[str, ...] = ("asyncio", "uvloop")

Body = Callable[[int], Awaitable[int]]
#: A task body: ``await work(item)`` gives 1 (the argument serves ``amap``).
Work = Callable[..., Coroutine[Any, Any, int]]
#: A throughput case before its task body is chosen: ``fn(n, work)``.
TaskBody = Callable[[int, Work], Awaitable[int]]

#: The body variants, in table order; the figures use the first.
SUSPENDS = "suspends"
NEVER_SUSPENDS = "never-suspends"
VARIANTS: tuple[str, ...] = (SUSPENDS, NEVER_SUSPENDS)


async def work(_item: object = None) -> int:
    """The portable body: suspends once at an anyio checkpoint, then returns 1."""
    await checkpoint()
    return 1


async def work_asyncio(_item: object = None) -> int:
    """The body of cases written against raw asyncio: suspends once in ``sleep(0)``."""
    await asyncio.sleep(0)
    return 1


@cache
def _work_trio() -> Work:
    import trio.lowlevel

    async def work_trio(_item: object = None) -> int:
        """The body of cases written against raw trio: suspends once at trio's own
        checkpoint (what ``trio.sleep(0)`` calls).
        """
        await trio.lowlevel.checkpoint()
        return 1

    return work_trio


async def work_never_suspends(_item: object = None) -> int:
    """The second column's body: returns at once, never parking its task."""
    return 1


#: Which API a case is written against, so which suspending body it runs.
NATIVE = ("anyio", "asyncio", "trio")


def body_for(variant: str, native: str) -> Work:
    if variant == NEVER_SUSPENDS:
        return work_never_suspends
    if native == "asyncio":
        return work_asyncio
    if native == "trio":
        return _work_trio()
    return work


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
    #: The task body variant (throughput cases; memory and shutdown tasks park).
    variant: str = SUSPENDS

    @property
    def id(self) -> str:
        """Unique within a section: the key, tagged with a non-default variant."""
        return self.key if self.variant == SUSPENDS else f"{self.key}~{self.variant}"


def task_cases(
    key: str,
    name: str,
    group: str,
    backends: tuple[str, ...],
    fn: TaskBody,
    unavailable: Callable[[], str | None] = lambda: None,
    *,
    native: str = "anyio",
    variants: tuple[str, ...] = VARIANTS,
) -> list[Case]:
    """One throughput case in each body variant; ``native`` picks the suspension."""
    if native not in NATIVE:
        raise ValueError(f"native must be one of {NATIVE}, not {native!r}")

    def bind(variant: str) -> Body:
        def body(n: int) -> Awaitable[int]:
            return fn(n, body_for(variant, native))

        return body

    return [Case(key, name, group, backends, bind(v), unavailable, v) for v in variants]


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


#: The key suffix of a tether case run on anyio's public CancelScope, the asyncio
#: scope's fallback (and 0.2's only path): the "before" of the same run.
ANYIO_SCOPE = "/anyio-scope"


def on_anyio_scope(body: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``body``, with tether's asyncio backends made on anyio's public CancelScope
    (as ``TETHER_ASYNCIO_SCOPE=anyio`` does for a whole process)."""

    async def run(*args: Any) -> T:
        from tether import _asyncio_scope

        saved = _asyncio_scope._usable
        _asyncio_scope.force(False)
        try:
            return await body(*args)
        finally:
            _asyncio_scope._usable = saved

    return run


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
