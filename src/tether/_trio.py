"""The trio backend: each task a system task in its own ``trio.CancelScope``.

A system task lives outside every nursery and cancel scope of the code that
started it, which is exactly tether's model: the registry (or the gather) is the
task's owner, and cancellation reaches it only through the scope it enters. trio
turns an exception escaping a system task into ``TrioInternalError``, so tether's
task bodies catch everything their coroutine raises and never let it escape.

Ctrl+C: trio shields system tasks from ``KeyboardInterrupt`` (it is delivered to
the main task at its next checkpoint instead), so a busy tether task would keep
running through it. trio decides frame by frame, walking up from the interrupted
frame to the first code object marked protected or unprotected, and to the task's
own flag at its root. tether's task body (the root) stays protected, so its
bookkeeping is never interrupted half-way; the user's coroutine is awaited through
:func:`interruptible`, a frame marked unprotected, so Ctrl+C raises in the user's
code as it would in a nursery task, and the task body hands it to its owner, which
cancels everything and re-raises it bare.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from contextvars import copy_context
from functools import partial
from threading import get_ident
from typing import TYPE_CHECKING, Any, TypeVar

import trio
from typing_extensions import TypeVarTuple, Unpack

from ._engine import Engine

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
    from contextvars import Context

    from ._backend import Event, Interruptible, Scope

__all__ = ["TrioBackend", "interruptible"]

PosArgsT = TypeVarTuple("PosArgsT")
T = TypeVar("T")


# A gather's child is a nursery task, which trio does not protect: its body (the
# engine's bookkeeping) is marked protected, as a system task's is by default.
trio.lowlevel.enable_ki_protection(Engine._child)


@trio.lowlevel.disable_ki_protection
async def interruptible(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` where Ctrl+C can interrupt it: in a frame marked unprotected,
    between the protected task body and the user's code."""
    return await coro


class TrioBackend:
    """trio's primitives, used directly: they are already what tether needs."""

    __slots__ = (
        "_nursery",
        "call_soon_threadsafe",
        "cancelled_exc",
        "checkpoint_if_cancelled",
        "clock",
        "current_effective_deadline",
        "interruptible",
        "new_event",
        "new_scope",
        "thread",
    )

    interruptible: Interruptible

    def __init__(self) -> None:
        self.cancelled_exc = trio.Cancelled
        self.thread = get_ident()
        self.new_scope = trio.CancelScope
        self.new_event = trio.Event
        self.call_soon_threadsafe = trio.lowlevel.current_trio_token().run_sync_soon
        self.clock = trio.lowlevel.current_clock().current_time  # the MockClock too
        # Partials: a plain function in an attribute reads as a method to pyright.
        self.checkpoint_if_cancelled = partial(trio.lowlevel.checkpoint_if_cancelled)
        self.current_effective_deadline = partial(trio.current_effective_deadline)
        self.interruptible = interruptible
        self._nursery: trio.Nursery | None = None

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> object:
        nursery = self._nursery
        if nursery is not None and context is None:  # a gather's child
            nursery.start_soon(fn, *args, name=name)
            return nursery  # what keeps the task alive is the nursery
        # A system task starts in trio's system context unless given one: pass the
        # spawner's, as nursery.start_soon would.
        return trio.lowlevel.spawn_system_task(
            fn, *args, name=name, context=copy_context() if context is None else context
        )

    @asynccontextmanager
    async def children(self) -> AsyncGenerator[None]:
        # The children of a gather never outlive the call, so they can be what a
        # trio user expects: nursery children of the caller, which see its
        # deadlines and sit under it in trio's task tree. Every child catches all
        # it raises, so the nursery never raises; the body's own exception is
        # re-raised after the nursery closes, bare, never wrapped in a group.
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                yield
            except BaseException as exc:
                failure = exc
                # The gather waits for its children before it leaves, unless
                # that wait itself was interrupted (Ctrl+C): end them anyway.
                nursery.cancel_scope.cancel()
        self._nursery = None
        if failure is not None:
            try:
                raise failure
            finally:
                del failure

    def caller_cancelled(self) -> bool:
        # Outside its own scope a nursery child's cancel status is the nursery's,
        # which is the caller's.
        return (
            self._nursery is not None and trio.current_effective_deadline() == -math.inf
        )

    def current_task(self) -> object:
        return trio.lowlevel.current_task()

    def loop_is_ending(self) -> bool:
        # A system task sits outside every scope but the system nursery's, which
        # trio cancels only when the run ends.
        return True

    def coroutine_of(self, task: object) -> object:
        assert isinstance(task, trio.lowlevel.Task)
        return task.coro

    def wake(self) -> None:
        # Outside every task (a signal handler while trio sleeps in its I/O wait),
        # a cancellation reschedules the task but wakes nothing: the token does.
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            self.call_soon_threadsafe(_nothing)

    def cancel_soon(self, scopes: list[Scope], wake: list[Event] | None = None) -> None:
        for scope in scopes:  # trio's cancel() is cheap from anywhere
            scope.cancel()
        for event in wake or ():
            event.set()

    async def wait_until(
        self,
        deadline: float,
        wake: Callable[[], object],
        fn: Callable[[Unpack[PosArgsT]], Awaitable[object]],
        /,
        *args: Unpack[PosArgsT],
    ) -> None:
        with trio.move_on_at(deadline):  # cheap on trio: no timer needed
            await fn(*args)


def _nothing() -> None:
    pass
