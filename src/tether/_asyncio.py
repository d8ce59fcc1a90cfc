"""The asyncio backend (uvloop included): a raw task in its own cancel scope.

A raw ``asyncio.Task`` is the cheapest task there is. Its scope is tether's own
(:mod:`tether._asyncio_scope`): native cancellation that honours the anyio shields
inside the task, level-triggered, checked once per process; where that check fails,
or ``TETHER_ASYNCIO_SCOPE=anyio`` is set, anyio's public ``CancelScope`` (its concrete
class, instantiated directly to skip anyio's per-call dispatch), which gives the same
behaviour at a higher price.

The loop keeps only weak references to tasks, so the caller of :meth:`create_task` holds
the task it returns until the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import sys
import types
from threading import get_ident
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVarTuple, Unpack

from . import _asyncio_scope
from ._asyncio_scope import NativeScope, cancel_many, late_scope, native_scopes_usable

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Generator
    from contextlib import AbstractAsyncContextManager
    from contextvars import Context

    from ._backend import Event, Scope

__all__ = ["AsyncioBackend"]

PosArgsT = TypeVarTuple("PosArgsT")


class AsyncioBackend:
    """asyncio's loop, with tether's (or anyio's) scope and anyio's event class."""

    __slots__ = (
        "_cancel_many",
        "_create",
        "_factory",
        "_get_factory",
        "_loop",
        "_sleepers",
        "_timer",
        "_timer_at",
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

    def __init__(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self.cancelled_exc = asyncio.CancelledError
        self.thread = get_ident()
        new_scope: Callable[[], Scope]
        self.late_scope: Callable[[object], Scope] | None
        if native_scopes_usable():
            new_scope, self._cancel_many = NativeScope, cancel_many
            self.late_scope = late_scope
        else:
            new_scope, self._cancel_many = type(anyio.CancelScope()), _cancel_each
            self.late_scope = None  # anyio's scope must be entered where it nests
        self.new_scope = new_scope
        # anyio's, on either path: code in the task sees the deadline.
        self.new_deadline_scope: Callable[..., Scope] = type(anyio.CancelScope())
        self.new_event = type(anyio.Event())
        self.new_wakeup = functools.partial(_Wakeup, loop.create_future)
        self.new_waker = functools.partial(_Waker, loop.create_future)
        self.holds_children = False  # a gather's children are plain tasks
        self.call_soon_threadsafe = loop.call_soon_threadsafe
        self.clock = loop.time  # anyio.current_time() on asyncio
        # anyio's own, from the backend class its public token names: the same
        # answers as anyio.lowlevel's functions, without their dispatch.
        anyio_backend = anyio.lowlevel.current_token().backend_class
        self.checkpoint = functools.partial(_checkpoint)
        checkpoint_if_cancelled: Callable[[], Awaitable[None]]
        checkpoint_if_cancelled = anyio_backend.checkpoint_if_cancelled
        current_effective_deadline: Callable[[], float]
        current_effective_deadline = anyio_backend.current_effective_deadline
        if self.late_scope is not None:  # anyio's task records are read anyway
            checkpoint_if_cancelled = _asyncio_scope.checkpoint_if_cancelled
            current_effective_deadline = _asyncio_scope.current_effective_deadline
        # Partials: a plain function in an attribute reads as a method to pyright.
        self.checkpoint_if_cancelled = functools.partial(checkpoint_if_cancelled)
        self.current_effective_deadline = functools.partial(current_effective_deadline)
        self.interruptible = None  # asyncio delivers Ctrl+C to the main task
        self.open_host = self.open_system_host = None  # asyncio keeps no task tree
        # wait_until(): who waits until when, and the one timer of the loop that
        # wakes them (armed for the earliest, kept for the next ones).
        self._sleepers: dict[object, tuple[float, Callable[[], object]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.hand_over_interrupt = None  # Ctrl+C cancels the main task (asyncio.run)
        self._get_factory = loop.get_task_factory
        self._factory = self._get_factory()
        self._create = task_creator(loop, self._factory)

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> asyncio.Task[None]:
        if self._get_factory() is not self._factory:
            # A factory set since we looked (an eager one would run the task inside
            # this call, before its owner holds it): look again.
            self._factory = self._get_factory()
            self._create = task_creator(self._loop, self._factory)
        coro = fn(*args)
        try:
            if context is None:
                return self._create(coro, name=name)
            if sys.version_info >= (3, 11):
                return self._create(coro, name=name, context=context)
            else:  # pragma: no cover - 3.10's create_task has no context argument
                return context.run(self._create, coro, name=name)
        except BaseException:
            coro.close()
            raise

    def current_task(self) -> object:
        return asyncio.current_task()

    def loop_is_ending(self) -> bool:
        # tether never leaves a request of its own counted: its scope takes back
        # each one it made (uncancel()) before the ending is classified, and anyio's
        # scopes do the same. A request still counted came from task.cancel()
        # outside tether, as asyncio.run() does to every task left at its end. (An
        # awaited future cancelled by someone else counts no request.) Python 3.10
        # cannot count them: no warning there.
        if sys.version_info < (3, 11):  # pragma: no cover
            return False
        else:
            task = asyncio.current_task()
            return task is not None and task.cancelling() > 0

    def coroutine_of(self, task: object) -> object:
        return cast("asyncio.Task[object]", task).get_coro()

    def tasks_of(self, held: list[object]) -> list[object]:
        return held  # create_task() returns the task itself

    def children(self) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    def caller_cancelled(self) -> bool:
        return False  # a child is the caller's in nothing but tether's bookkeeping

    def wake(self) -> None:
        # A signal handler runs while the loop may sleep in its selector, which a
        # call_soon does not interrupt: the self-pipe of call_soon_threadsafe does.
        if asyncio.current_task() is None:
            self.call_soon_threadsafe(_nothing)

    def cancel_soon(self, scopes: list[Scope], wake: list[Event] | None = None) -> None:
        # From one loop callback for the whole batch: anyio's cancel() called from
        # inside a task writes that task's repr into the cancel reason, which costs
        # more than the rest of the cancellation, and tether's own scope retries the
        # batch with one callback. Tasks already woken in this iteration take one
        # more step before they see it, as on trio.
        self._loop.call_soon(self._cancel_many, scopes, wake)

    async def wait_until(
        self,
        deadline: float,
        wake: Callable[[], object],
        fn: Callable[[Unpack[PosArgsT]], Awaitable[object]],
        /,
        *args: Unpack[PosArgsT],
    ) -> None:
        # One timer for every waiter of the run, armed for the earliest and kept
        # for the next: an anyio scope with a deadline cost a short-lived
        # registry's drain a quarter of its time, and a timer of its own a tenth
        # (issue #27 item 4). Drains come and go; the timer stays until it fires.
        key = object()
        sleepers = self._sleepers
        sleepers[key] = (deadline, wake)
        if deadline < self._timer_at:
            self._arm(deadline)
        try:
            await fn(*args)
        finally:
            del sleepers[key]

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._fire)
        self._timer_at = when

    def _fire(self) -> None:
        """Wake every waiter whose deadline has come; arm for the next one."""
        self._timer, self._timer_at = None, math.inf
        now = self._loop.time()
        later = math.inf
        for deadline, wake in list(self._sleepers.values()):
            if deadline <= now:
                wake()  # it leaves the sleepers as its wait returns
            elif deadline < later:
                later = deadline
        if later < math.inf:
            self._arm(later)


def _yield() -> Generator[None, None, None]:
    yield


#: ``anyio.lowlevel.checkpoint()`` on asyncio, which is ``await sleep(0)``: the bare
#: yield that ``sleep(0)`` makes, without its two coroutine layers (#27). (Called
#: rather than a decorator: mypy reads a decorated one as a plain generator.)
_checkpoint: Callable[[], Awaitable[None]] = types.coroutine(_yield)


class _Waker:
    """The future its one waiter awaits: no waiter list, no coroutine to wait."""

    __slots__ = ("_future",)

    def __init__(self, create_future: Callable[[], asyncio.Future[None]]) -> None:
        self._future = create_future()

    def set(self) -> None:
        future = self._future
        if not future.done():  # it may have been cancelled with its waiter
            future.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        return self._future


class _Wakeup:
    """``new_wakeup`` on asyncio: an event whose every waiter awaits a future of
    its own, made as it waits, so that a cancelled waiter cancels only its own (a
    shared future would be cancelled for all); without ``asyncio.Event``'s
    coroutine, its lookup of the loop and its removal of each waiter as it wakes,
    on every drain of a short-lived registry (issue #27 item 4)."""

    __slots__ = ("_create_future", "_futures")

    def __init__(self, create_future: Callable[[], asyncio.Future[None]]) -> None:
        self._create_future = create_future
        # None once set: a wait after it returns at once, as an event's does.
        self._futures: list[asyncio.Future[None]] | None = []

    def set(self) -> None:
        futures, self._futures = self._futures, None
        for future in futures or ():
            if not future.done():  # it was cancelled with its waiter
                future.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        future = self._create_future()
        if self._futures is None:
            future.set_result(None)
        else:
            self._futures.append(future)
        return future


def _nothing() -> None:
    pass


def _cancel_each(scopes: list[Scope], wake: list[Event] | None) -> None:
    for scope in scopes:
        scope.cancel()
    for event in wake or ():
        event.set()


def task_creator(
    loop: asyncio.AbstractEventLoop, factory: object
) -> Callable[..., asyncio.Task[Any]]:
    """``loop.create_task``, unless the loop's task factory starts tasks eagerly,
    inside ``create_task``: then a plain, lazy ``asyncio.Task``.

    asyncio's own eager factories are recognised; any other factory is tried once
    with a probe task, since a wrapped or custom eager factory would otherwise run
    the task inside ``spawn``, before the registry holds it.
    """
    if factory is None:
        return loop.create_task
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
        # A lazy probe finishes at the next iteration; nothing needs to keep it.
        loop.create_task(coro)  # noqa: TET001 - a probe of the task factory
    except BaseException:
        coro.close()
        raise
    return lazy if started else loop.create_task
