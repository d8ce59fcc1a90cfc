"""The trio backend: each task in its own ``trio.CancelScope``.

tether's model: the registry (or the gather) is the task's owner, and cancellation
reaches the task only through the scope it enters. A system task lives outside
every nursery and cancel scope of the code that started it, which is that model
(the default registry's tasks are system tasks); a nursery child in a shielded
scope of its own is too, and keeps its place in trio's task tree (see below).
trio turns an exception escaping a system task into ``TrioInternalError``, and one
escaping a nursery child would raise out of its nursery, so tether's task bodies
catch everything their coroutine raises and never let it escape.

Ctrl+C: trio shields system tasks from ``KeyboardInterrupt`` (it is delivered to
the main task at its next checkpoint instead), so a busy tether task would keep
running through it. trio decides frame by frame, walking up from the interrupted
frame to the first code object marked protected or unprotected, and to the task's
own flag at its root. tether's task body (the root) stays protected, so its
bookkeeping is never interrupted half-way; the user's coroutine is awaited through
:func:`interruptible`, a frame marked unprotected, so Ctrl+C raises in the user's
code as it would in a nursery task, and the task body hands it to its owner, which
cancels everything and re-raises it bare. A registry with no block to re-raise it
(opened with ``open()``, or the default registry) hands it to trio as trio hands a
Ctrl+C that lands in protected code: to the main task, at its next checkpoint
(:func:`hand_over_interrupt`).

The task tree: a registry's ``async with`` block opens a nursery in the task that
enters it (:class:`TrioHost`), and the registry starts its tasks there, so that
trio's instruments and ``current_root_task()`` walkers see them as children of
that task, in one nursery per registry. Each task runs in a scope of its own that
is shielded, so the block's cancellation and deadline reach the tasks only through
the registry (which cancels them as it closes), as before. A registry opened with
``open()`` has no block to host its tasks (``aclose()`` may run in any task, and a
nursery must be left in the task that opened it): a system task of its own, named
after the registry, holds them in its nursery instead (:class:`TrioSystemHost`).
The children of ``as_completed`` and ``amap`` are hosted as a registry's block's
are; those of ``run_all``, ``settle_all`` and ``race`` are plain nursery children
of their caller (:meth:`TrioBackend.children`), which see its deadline.
"""

from __future__ import annotations

import functools
import inspect
import math
import signal
import sys
import threading
from contextlib import asynccontextmanager
from contextvars import copy_context
from functools import partial
from threading import get_ident
from typing import TYPE_CHECKING, Any, TypeVar

import trio

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVarTuple, Unpack

from ._backend import KI_PROTECTED

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
    from contextlib import AbstractAsyncContextManager
    from contextvars import Context

    from ._backend import Event, HandOver, Interruptible, Scope

__all__ = [
    "TrioBackend",
    "TrioHost",
    "TrioSystemHost",
    "hand_over_interrupt",
    "interruptible",
]

PosArgsT = TypeVarTuple("PosArgsT")
T = TypeVar("T")


# A gather's child, and a registry's task in its block's nursery, is a nursery
# task, which trio does not protect: its body (tether's bookkeeping) is marked
# protected, as a system task's is by default.
for _body in KI_PROTECTED:  # the engine's children and feeder, a registry's task
    trio.lowlevel.enable_ki_protection(_body)


@trio.lowlevel.disable_ki_protection
async def interruptible(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` where Ctrl+C can interrupt it: in a frame marked unprotected,
    between the protected task body and the user's code."""
    return await coro


@trio.lowlevel.enable_ki_protection
def hand_over_interrupt() -> bool:
    """Tell trio that Ctrl+C arrived while protected code ran, so that it raises a
    ``KeyboardInterrupt`` in the main task at its next checkpoint (waking it if it
    waits), or from ``trio.run`` if the main task is ending: what trio's own
    SIGINT handler does when the interrupted frame is protected, as this one is.
    Returns whether it did.

    trio has no public call for it but that handler, installed in the main thread
    while a run's ``KeyboardInterrupt`` handling is on. Elsewhere (a run in
    another thread, Python's default handler, a handler that raises) nothing is
    handed over: the registry keeps the interrupt for ``aclose()``, as before.
    """
    if threading.current_thread() is not threading.main_thread():
        return False  # the process's handler belongs to the main thread's program
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or handler is signal.default_int_handler:
        return False
    try:
        handler(signal.SIGINT, inspect.currentframe())  # this protected frame
    except BaseException:  # not trio's: it raised instead of handing over
        return False
    return True


class TrioBackend:
    """trio's primitives, used directly: they are already what tether needs."""

    __slots__ = (
        "call_soon_threadsafe",
        "cancelled_exc",
        "checkpoint",
        "checkpoint_if_cancelled",
        "clock",
        "current_effective_deadline",
        "hand_over_interrupt",
        "holds_children",
        "interruptible",
        "late_scope",
        "new_deadline_scope",
        "new_event",
        "new_scope",
        "new_waker",
        "new_wakeup",
        "open_host",
        "open_system_host",
        "thread",
    )

    interruptible: Interruptible
    hand_over_interrupt: HandOver

    def __init__(self) -> None:
        self.cancelled_exc = trio.Cancelled
        self.thread = get_ident()
        self.new_scope = trio.CancelScope
        self.new_deadline_scope = trio.CancelScope
        self.new_event = self.new_wakeup = self.new_waker = trio.Event
        self.holds_children = True  # a gather's children are nursery children
        self.call_soon_threadsafe = trio.lowlevel.current_trio_token().run_sync_soon
        self.clock = trio.lowlevel.current_clock().current_time  # the MockClock too
        # Partials: a plain function in an attribute reads as a method to pyright.
        self.checkpoint = partial(trio.lowlevel.checkpoint)
        self.checkpoint_if_cancelled = partial(trio.lowlevel.checkpoint_if_cancelled)
        self.current_effective_deadline = partial(trio.current_effective_deadline)
        self.interruptible = interruptible
        self.open_host = TrioHost.open
        self.late_scope = None  # a trio scope is entered where it is made
        self.open_system_host = TrioSystemHost.open
        self.hand_over_interrupt = hand_over_interrupt

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> object:
        # A system task starts in trio's system context unless given one: pass the
        # spawner's, as nursery.start_soon would.
        return trio.lowlevel.spawn_system_task(
            fn, *args, name=name, context=copy_context() if context is None else context
        )

    @asynccontextmanager
    async def children(self) -> AsyncGenerator[Callable[..., object]]:
        # The children of a gather never outlive the call, so they can be what a
        # trio user expects: nursery children of the caller, which see its
        # deadlines and sit under it in trio's task tree. Every child catches all
        # it raises, so the nursery never raises; the body's own exception is
        # re-raised after the nursery closes, bare, never wrapped in a group.
        # The start function is this gather's own: the backend is shared by every
        # gather and registry of the run, so it keeps no nursery of its own.
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            start_soon = nursery.start_soon

            def create_task(
                fn: Callable[..., Coroutine[Any, Any, None]],
                /,
                *args: object,
                name: str,
            ) -> object:
                start_soon(fn, *args, name=name)
                return nursery  # what keeps the task alive is the nursery

            try:
                yield create_task
            except BaseException as exc:
                failure = exc
                # The gather waits for its children before it leaves, unless
                # that wait itself was interrupted (Ctrl+C): end them anyway.
                nursery.cancel_scope.cancel()
        if failure is not None:
            try:
                raise failure
            finally:
                del failure

    def caller_cancelled(self) -> bool:
        # Outside its own scope a nursery child's cancel status is the nursery's,
        # which is the caller's. A system task (its parent is trio's root task)
        # has no caller there.
        nursery = trio.lowlevel.current_task().parent_nursery
        return (
            nursery is not None
            and nursery.parent_task is not trio.lowlevel.current_root_task()
            and trio.current_effective_deadline() == -math.inf
        )

    def current_task(self) -> object:
        return trio.lowlevel.current_task()

    def loop_is_ending(self) -> bool:
        # A registry's task is shielded in a block's nursery, and otherwise sits
        # outside every scope but the system nursery's (a system task, or a
        # system host's child), which trio cancels only when the run ends.
        return True

    def coroutine_of(self, task: object) -> object:
        # A task of a registry's block that has not run yet is known by its
        # nursery only: it has no await chain to show.
        return task.coro if isinstance(task, trio.lowlevel.Task) else None

    def tasks_of(self, held: list[object]) -> list[object]:
        tasks: list[object] = []
        seen: set[int] = set()
        for item in held:
            # A gather's children are held by their nursery, a stream's by its host.
            nursery = item.nursery if isinstance(item, TrioHost) else item
            if isinstance(nursery, trio.Nursery):
                if id(nursery) not in seen:
                    seen.add(id(nursery))
                    tasks += sorted(nursery.child_tasks, key=id)
            else:
                tasks.append(item)
        return tasks

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


class _NurseryHost:
    """What both hosts share: a nursery's ``start_soon``, which starts a
    registry's tasks."""

    __slots__ = ("_start_soon",)

    _start_soon: Callable[..., None]

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> object:
        # start_soon runs the task in a copy of the current context: in a copy
        # of the one given, when given.
        if context is None:
            self._start_soon(fn, *args, name=name)
        else:
            context.run(self._start_soon, fn, *args, name=name)
        # The task itself is not returned: it tells its registry when it first
        # runs. Until then, its nursery is what keeps it.
        return self


class TrioHost(_NurseryHost):
    """A registry's tasks as nursery children of the task that entered its
    ``async with`` block (see the module's docstring)."""

    __slots__ = ("_manager", "nursery")

    def __init__(
        self, manager: AbstractAsyncContextManager[trio.Nursery], nursery: trio.Nursery
    ) -> None:
        self._manager = manager
        self.nursery = nursery  # for tether.dump(): the tasks it holds
        self._start_soon = nursery.start_soon

    @staticmethod
    async def open() -> TrioHost:
        """Open a nursery in the calling task. Not a checkpoint: trio's nursery
        only enters a cancel scope there."""
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        return TrioHost(manager, nursery)

    # A partial, not a method: one Python call less per task.
    new_scope = staticmethod(functools.partial(trio.CancelScope, shield=True))

    async def close(self) -> None:
        # Every task has ended (the registry waited for them), and the block's
        # own outcome is the registry's to raise: the nursery exits clean. A
        # schedule point, shielded from cancellation, as every nursery's exit.
        await self._manager.__aexit__(None, None, None)


class TrioSystemHost(_NurseryHost):
    """A registry's tasks as nursery children of a system task of its own, for a
    registry opened with ``open()``: the host is named after the registry and
    ends once the registry has closed (see the module's docstring)."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = trio.Event()

    @staticmethod
    async def open(name: str) -> TrioSystemHost:
        """Start the host and wait until its nursery is open: a schedule point
        that cannot be cancelled (the opener's cancellation is the opener's)."""
        host = TrioSystemHost()
        ready = trio.Event()
        # In trio's system context, as every system task: the tasks it starts
        # run in their spawners' contexts.
        trio.lowlevel.spawn_system_task(
            host._host, ready, name=f"TaskRegistry {name!r}"
        )
        with trio.CancelScope(shield=True):
            await ready.wait()
        return host

    async def _host(self, ready: trio.Event) -> None:
        # A system task's exception would crash the run: only the run's own
        # cancellation, as it ends, may leave here (the nursery then cancels the
        # tasks, which the registry reports as left open).
        async with trio.open_nursery() as nursery:
            self._start_soon = nursery.start_soon
            ready.set()
            await self._done.wait()

    # Not shielded: the host is cancelled only as the run ends, and that must
    # reach the tasks. The class itself, not a method: one Python call less.
    new_scope = trio.CancelScope

    async def close(self) -> None:
        # Only lets the host end: the closer may be one of the host's own tasks,
        # which the host's nursery waits for.
        self._done.set()


def _nothing() -> None:
    pass
