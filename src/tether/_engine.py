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
from collections.abc import Awaitable, Callable, Coroutine
from types import CoroutineType, FunctionType
from typing import Any, cast

import anyio
import anyio.lowlevel

from ._calls import close_if_coroutine, describe, is_async_callable, name_of
from ._exceptions import TaskCancelled
from ._handle import Handle

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "MISSING",
    "Engine",
    "foreign_cancellation",
    "prepare",
    "start",
    "validate_options",
]

MISSING: Any = object()

# What the engine does when an input fails.
FAIL_FAST, SETTLE, RACE = 0, 1, 2


def validate_options(
    api: str,
    limit: int | None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> None:
    """Check the shared keyword options, naming the argument and the fix."""
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
    ):
        raise ValueError(
            f"{api}(limit={limit!r}): limit must be a whole number >= 1 (the most "
            "inputs running at once), or None for no limit"
        )
    if per_second is not None and not (
        isinstance(per_second, int | float) and per_second > 0 and per_second < math.inf
    ):
        raise ValueError(
            f"{api}(per_second={per_second!r}): per_second must be a number > 0 (the "
            "most starts per second), or None for no rate limit"
        )
    if not isinstance(burst, int) or isinstance(burst, bool) or burst < 1:
        raise ValueError(
            f"{api}(burst={burst!r}): burst must be a whole number >= 1 (how many "
            "starts may happen at once before per_second spacing applies)"
        )
    if timeout is not None and not (isinstance(timeout, int | float) and timeout >= 0):
        raise ValueError(
            f"{api}(timeout={timeout!r}): timeout must be a number of seconds >= 0, "
            "or None for no timeout"
        )


async def _await_handle(handle: Handle[Any]) -> Any:
    return await handle


async def _await_future(future: Any) -> Any:
    # Waiting on a future we did not start must not cancel it when we stop waiting.
    import asyncio

    return await asyncio.shield(future)


async def _await_other(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def foreign_cancellation(what: str, cause: BaseException) -> TaskCancelled:
    """The outcome of an input cancelled by something other than the gather: it
    awaited a cancelled future or task, or raised the backend's cancellation itself.

    The backend's cancellation exception must not cross into the caller, where it
    would read as the caller's own cancellation.
    """
    exc = TaskCancelled(
        f"{what} was cancelled from outside (it awaited a cancelled future "
        "or task, or raised CancelledError itself)"
    )
    exc.__cause__ = cause
    return exc


def _bad_input(api: str, position: int, item: object, why: str) -> TypeError:
    return TypeError(
        f"{api}() argument {position + 1} ({describe(item)}) {why}. Pass coroutine "
        f"objects, tether handles, futures, or zero-argument async callables: "
        f"{api}(fetch(url), functools.partial(fetch, url))"
    )


def _check_callable(api: str, position: int, fn: Any) -> None:
    if type(fn) is FunctionType:
        code = fn.__code__
        if not code.co_flags & 0x80:  # CO_COROUTINE
            raise _bad_input(api, position, fn, "is a sync function")
        required = code.co_argcount - len(fn.__defaults__ or ())
        kw_defaults = fn.__kwdefaults__ or {}
        missing_kw = [
            k
            for k in code.co_varnames[
                code.co_argcount : code.co_argcount + code.co_kwonlyargcount
            ]
            if k not in kw_defaults
        ]
        if required > 0 or missing_kw:
            raise _bad_input(
                api,
                position,
                fn,
                "is an async function that needs arguments, passed uncalled; call it, "
                f"{describe(fn)}(...), or bind them with functools.partial",
            )
    elif not is_async_callable(fn):
        raise _bad_input(api, position, fn, "is not an async callable")


def prepare(api: str, work: tuple[Any, ...]) -> list[Any]:
    """Validate every input before anything starts; close coroutines on refusal.

    Returns the inputs as the engine takes them: coroutine objects and zero-argument
    async callables as given, handles and other awaitables wrapped in a coroutine
    function that awaits them.
    """
    prepared: list[Any] = []
    try:
        for position, item in enumerate(work):
            if isinstance(item, CoroutineType | Coroutine):
                prepared.append(item)
            elif isinstance(item, Handle):
                prepared.append((_await_handle, item))
            elif _is_asyncio_future(item):
                prepared.append((_await_future, item))
            elif hasattr(item, "__await__"):
                prepared.append((_await_other, item))
            elif callable(item):
                _check_callable(api, position, item)
                prepared.append(item)
            else:
                raise _bad_input(api, position, item, "is not awaitable")
    except BaseException:
        for item in work:
            close_if_coroutine(item)
        raise
    return prepared


def start(item: Any) -> Coroutine[Any, Any, Any]:
    """The coroutine for a prepared input: as given, wrapped, or called now."""
    if type(item) is CoroutineType:
        return item  # pyright: ignore[reportUnknownVariableType]
    if type(item) is tuple:
        wrapper, target = cast(
            "tuple[Callable[[Any], Coroutine[Any, Any, Any]], Any]", item
        )
        return wrapper(target)
    if isinstance(item, Coroutine):
        return item  # pyright: ignore[reportUnknownVariableType]
    coro = item()
    if not isinstance(coro, Coroutine):
        close_if_coroutine(coro)
        raise TypeError(
            f"{name_of(item)}() returned {type(coro).__name__}, not a coroutine"
        )
    return coro  # pyright: ignore[reportUnknownVariableType]


def _is_asyncio_future(item: object) -> bool:
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio.isfuture(item)


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
        self.scopes: dict[int, Any] = {}

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
        try:
            coro = start(item)
        except Exception as exc:  # a callable input raised instead of returning
            self._failed(index, exc)
            return
        self.inputs[index] = None  # started: the child owns it now
        self.in_flight += 1
        name: str = getattr(coro, "__qualname__", "input")
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
                    del self.scopes[index]
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
        for scope in list(self.scopes.values()):
            scope.cancel()

    async def _wait_children(self) -> None:
        while self.in_flight:
            self.wake = anyio.Event()
            await self.wake.wait()
