"""The engine under run_all, settle_all and race: run inputs, collect outcomes.

One child task per started input. On trio the children live in a nursery opened by
the caller, so the caller's cancellation and deadlines reach them as they would any
child, and stopping early is one ``nursery.cancel_scope.cancel()``. On asyncio each
child is a raw task in its own ``anyio.CancelScope`` (shields inside it are
honoured), and the caller cancels them explicitly when it stops or is cancelled.
Nothing starts before the caller awaits; a callable input is called only when its
slot frees, and every coroutine that never started is closed.
"""

from __future__ import annotations

import math
import sys
from types import CoroutineType
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

from ._calls import close_if_coroutine
from ._inputs import foreign_cancellation, start

if TYPE_CHECKING:
    from collections.abc import Coroutine

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["FAIL_FAST", "MISSING", "RACE", "SETTLE", "Engine"]

MISSING: Any = object()

# What the engine does when an input fails.
FAIL_FAST, SETTLE, RACE = 0, 1, 2


class Engine:
    """One run of run_all, settle_all or race."""

    __slots__ = (
        "base_exc",
        "burst",
        "create_task",
        "first",
        "in_flight",
        "inputs",
        "limit",
        "mode",
        "next",
        "notes",
        "nursery",
        "period",
        "results",
        "scope_cls",
        "scopes",
        "stop",
        "tat",
        "timed_out",
        "wake",
        "winner",
    )

    def __init__(
        self,
        inputs: list[Any],
        mode: int,
        limit: int | None,
        per_second: float | None,
        burst: int,
    ) -> None:
        self.inputs = inputs
        self.mode = mode
        self.limit = limit
        self.period = None if per_second is None else 1.0 / per_second
        self.burst = burst
        self.tat = -math.inf
        self.results: list[Any] = [MISSING] * len(inputs)
        self.next = 0
        self.in_flight = 0
        self.stop = False
        self.first: BaseException | None = None
        self.notes: list[str] = []
        self.base_exc: BaseException | None = None
        self.winner = MISSING
        self.timed_out = False
        self.wake: Any = None
        self.nursery: Any = None
        self.scope_cls: Any = None
        # asyncio: each running child's cancel scope, by input position.
        self.scopes: list[Any] = [None] * len(inputs)

    # -- driving --------------------------------------------------------------------

    async def run(self, timeout: float | None) -> None:
        """Run every input, stopping early as the mode says or when ``timeout``
        expires (then ``timed_out`` is set)."""
        if timeout is None:
            await self._run_backend()
            return
        with anyio.move_on_after(timeout) as scope:
            await self._run_backend()
        self.timed_out = scope.cancelled_caught

    def unfinished(self) -> int:
        """How many inputs had not finished when the run stopped."""
        return sum(1 for r in self.results if r is MISSING)

    async def _run_backend(self) -> None:
        if anyio.get_cancelled_exc_class().__module__.partition(".")[0] == "trio":
            await self._run_trio()
            return
        import asyncio

        self.scope_cls = type(anyio.CancelScope())
        self.create_task = asyncio.get_running_loop().create_task
        try:
            await self._drive()
        except BaseException:
            self._cancel_children()
            with anyio.CancelScope(shield=True):
                await self._wait_children()
            raise
        if self.stop:
            self._cancel_children()
            with anyio.CancelScope(shield=True):
                await self._wait_children()

    async def _run_trio(self) -> None:
        import trio

        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                try:
                    await self._drive()
                except BaseException:
                    # Children not yet stepped must not run, as on asyncio.
                    self.stop = True
                    raise
                if self.stop:
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # A strict nursery wraps even a lone exception. The children only ever
            # raise Cancelled into it, so the group holds the caller's cancellation
            # or an exception from the body: raise that bare, as on asyncio (and as
            # anyio's task group collapses a group of Cancelled).
            cancelled, rest = group.split(trio.Cancelled)
            bare: BaseException = rest if rest is not None else cast("Any", cancelled)
            while isinstance(bare, BaseExceptionGroup):
                bare = cast("BaseExceptionGroup[BaseException]", bare).exceptions[0]
        else:
            return
        raise bare  # outside the except clause: its __context__ stays its own

    async def _drive(self) -> None:
        inputs, limit, total = self.inputs, self.limit, len(self.inputs)
        try:
            # A caller already cancelled (or timeout=0) starts nothing, on every
            # backend: trio would otherwise run each child up to its first checkpoint.
            await anyio.lowlevel.checkpoint_if_cancelled()
            while True:
                while (
                    self.next < total
                    and not self.stop
                    and (limit is None or self.in_flight < limit)
                ):
                    if self.period is not None and not await self._rate_gate():
                        break
                    index = self.next
                    self.next += 1
                    self._start(index, inputs[index])
                if self.stop or (self.in_flight == 0 and self.next >= total):
                    return
                self.wake = anyio.Event()
                await self.wake.wait()
        finally:
            self._close_unstarted()

    async def _rate_gate(self) -> bool:
        # GCRA: `tat` is the theoretical arrival time of the next start; up to
        # `burst` starts may run ahead of it, then starts are `period` apart.
        period = self.period
        assert period is not None
        now = anyio.current_time()
        tat = max(self.tat, now)
        allowed_at = tat - (self.burst - 1) * period
        if allowed_at > now:
            # Sleep until the start is allowed, but wake when a child stops the run:
            # a failure must not wait for the next rate slot to be raised.
            with anyio.CancelScope(deadline=allowed_at):
                while not self.stop:
                    self.wake = anyio.Event()
                    await self.wake.wait()
            self.wake = None
            if self.stop:
                return False
        else:
            await anyio.lowlevel.checkpoint()
        self.tat = tat + period
        return not self.stop  # a child may have failed during the checkpoint

    def _start(self, index: int, item: Any) -> None:
        if type(item) is CoroutineType:  # the common input, without a call
            coro = cast("Coroutine[Any, Any, Any]", item)
            name: str = item.__qualname__
        else:
            try:
                coro = start(item)
            except Exception as exc:  # a callable input raised instead of returning
                self._failed(index, exc)
                return
            name = getattr(coro, "__qualname__", "input")
        self.inputs[index] = None  # started: the child owns it now
        self.in_flight += 1
        if self.nursery is not None:
            self.nursery.start_soon(self._child, index, coro, name=name)
        else:
            self.create_task(self._child(index, coro), name=name)

    def _close_unstarted(self) -> None:
        for index in range(self.next, len(self.inputs)):
            close_if_coroutine(self.inputs[index])
            self.inputs[index] = None

    # -- children -------------------------------------------------------------------

    async def _child(self, index: int, coro: Coroutine[Any, Any, Any]) -> None:
        if self.stop:  # stopped before this child's first step: it never runs
            coro.close()
            self._ended()
            return
        scope_cls = self.scope_cls
        try:
            if scope_cls is None:
                self.results[index] = await coro
            else:
                scope = self.scopes[index] = scope_cls()
                try:
                    with scope:
                        self.results[index] = await coro
                finally:
                    self.scopes[index] = None
        except Exception as exc:
            self._failed(index, exc)
        except BaseException as exc:
            if not isinstance(exc, anyio.get_cancelled_exc_class()):
                if self.base_exc is None:
                    self.base_exc = exc
                self._stop()
            elif self.nursery is not None:
                self._ended()
                raise  # trio's nursery scope swallows its own cancellation
            else:
                # On asyncio our own scope swallows the cancellation we cause, so this
                # one came from elsewhere: the input awaited a cancelled future or
                # raised CancelledError itself. It is the input's outcome, not ours.
                self._failed(index, foreign_cancellation(f"input {index + 1}", exc))
        else:
            if (
                self.mode == RACE
                and self.winner is MISSING
                and self.results[index] is not MISSING  # not cancelled
            ):
                self.winner = index
                self._stop()
        self._ended()

    def _failed(self, index: int, exc: Exception) -> None:
        mode = self.mode
        if mode in (SETTLE, RACE):
            self.results[index] = exc
        elif self.first is None:
            self.first = exc
            self._stop()
        elif exc is not self.first:
            self.notes.append(f"run_all input {index + 1} also failed: {exc!r}")

    def _stop(self) -> None:
        if not self.stop:
            self.stop = True
            self._wake_parent()

    def _ended(self) -> None:
        self.in_flight -= 1
        if self.limit is not None or self.in_flight == 0 or self.stop:
            self._wake_parent()

    def _wake_parent(self) -> None:
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set()

    def _cancel_children(self) -> None:
        self.stop = True
        for scope in [s for s in self.scopes if s is not None]:
            scope.cancel()

    async def _wait_children(self) -> None:
        while self.in_flight:
            self.wake = anyio.Event()
            await self.wake.wait()
