"""The backend seam: what tether needs from an event loop, behind one interface.

One class per backend (asyncio, which includes uvloop, in :mod:`tether._asyncio`;
trio in :mod:`tether._trio`), chosen by :func:`tether._loop.current_backend` once
per event-loop run, at the first registry or gather, never once per process
(pytest runs asyncio and trio in one process). The backend modules are imported
only then, so ``import tether`` stays cheap. Nothing outside the two backend
modules asks which backend is running.

Every backend gives the same observable behaviour:

- a task started by :meth:`Backend.create_task` is held by tether (the caller keeps
  what ``create_task`` returns), runs in a copy of the given context, first runs at
  the caller's next checkpoint and never inherits the caller's cancel scopes or
  deadlines: its owner is the only way cancellation reaches it, through the scope
  the task enters (one exception: on trio, a gather's child started within
  :meth:`Backend.children` is the caller's nursery child, and sees its deadlines;
  and a registry's task started by a :class:`Host` is the host's nursery child);
- :meth:`Backend.cancel_soon` cancels many scopes at once, from the event loop rather
  than from the calling task where that is cheaper.

One rule tells how a task ended, the same for the registry's tasks and the gather's
children: :func:`leave_scope`. A task is cancelled by its owner only through the
scope it entered, so a cancellation that scope catches is the owner's own, and one
that escapes it came from outside (the task awaited something cancelled, raised the
backend's cancellation itself, or the event loop is ending).
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine
    from contextlib import AbstractAsyncContextManager
    from contextvars import Context
    from types import TracebackType

__all__ = [
    "KI_PROTECTED",
    "Backend",
    "Ending",
    "Event",
    "HandOver",
    "Host",
    "Interruptible",
    "Scope",
    "Waker",
    "current_exception",
    "ki_protected",
    "leave_scope",
]

PosArgsT = TypeVarTuple("PosArgsT")

#: Task bodies that hold tether's bookkeeping and must run protected from Ctrl+C on
#: trio, where a nursery task's body is not protected (a system task's is). Each
#: module adds its own as it is imported; the trio backend marks them all when it
#: is first imported, so it needs no import of the modules that own them.
KI_PROTECTED: list[Callable[..., object]] = []

BodyT = TypeVar("BodyT", bound="Callable[..., object]")


def ki_protected(body: BodyT) -> BodyT:
    """Add ``body`` to :data:`KI_PROTECTED` where it is defined; returns it as it is."""
    KI_PROTECTED.append(body)
    return body


class Scope(Protocol):
    """A cancel scope that a task enters by hand around its coroutine.

    The task enters it in its first step, before any ``await``, and leaves it as it
    ends; a scope with a deadline is made with it (``new_deadline_scope``). (tether's
    own scope on asyncio counts on both: nothing can have asked to cancel the task
    before, and a task with a deadline gets anyio's scope. A registry block's body
    is the one exception: on that scope its scope is made when something first
    cancels the body, ``late_scope``, which holds because the scope keeps no stack.)
    """

    @property
    def cancelled_caught(self) -> bool: ...

    @property
    def deadline(self) -> float: ...
    @deadline.setter
    def deadline(self, value: float, /) -> None: ...

    def cancel(self) -> None:
        """Cancel the task in the scope, now or as soon as it enters it."""
        ...

    def __enter__(self) -> object: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool | None: ...


class HandOver(Protocol):
    """Hands a ``KeyboardInterrupt`` to the event loop; returns whether it did (see
    :attr:`Backend.hand_over_interrupt`)."""

    def __call__(self) -> bool: ...


class Interruptible(Protocol):
    """Wraps the coroutine a task awaits for its owner (see
    :attr:`Backend.interruptible`)."""

    def __call__(
        self, coro: Coroutine[Any, Any, Any], /
    ) -> Coroutine[Any, Any, Any]: ...


class Host(Protocol):
    """Where a registry's tasks (or a stream's children) live while it is open:
    see :attr:`Backend.open_host` and :attr:`Backend.open_system_host`."""

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> object:
        """Start a task, as :meth:`Backend.create_task` does. What it returns keeps the
        task alive but may not be the task itself: the task then tells its
        registry when it first runs (:meth:`Backend.current_task`)."""
        ...

    def new_scope(self) -> Scope:
        """The scope each task enters: one that the block's own cancellation and
        deadline do not reach."""
        ...

    async def close(self) -> None:
        """Called as the registry closes, once every task has ended (but the
        task that closed it, if it is one of the registry's own)."""
        ...


class Event(Protocol):
    """A one-shot event: ``set()`` wakes every ``await wait()``."""

    def set(self) -> None:
        """Set the event: every waiter wakes up."""
        ...

    def wait(self) -> Awaitable[object]:
        """Wait until the event is set (at once if it is): ``await event.wait()``."""
        ...


class Waker(Protocol):
    """A one-shot wakeup that exactly one task waits on, as soon as it has it:
    ``set()`` wakes it (and does nothing once it woke or stopped waiting). See
    :attr:`Backend.new_waker`."""

    def set(self) -> None:
        """Wake the waiter (now, or as soon as it waits)."""
        ...

    def wait(self) -> Awaitable[object]:
        """What the waiter awaits, once."""
        ...


class Ending(enum.Enum):
    """How a task that raised has ended, told by :func:`leave_scope`."""

    #: Its own scope caught the cancellation: its owner's cancel, or its deadline.
    CANCELLED = "cancelled"
    #: It raised an ``Exception``.
    FAILED = "failed"
    #: The backend's cancellation escaped its scope: it came from outside.
    CANCELLED_FROM_OUTSIDE = "cancelled from outside"
    #: ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``: what ends everything.
    INTERRUPTED = "interrupted"


if sys.version_info >= (3, 11):
    #: The exception being handled (in an ``except`` block): ``sys.exception``,
    #: which makes no tuple; ``sys.exc_info()[1]`` on 3.10.
    current_exception = sys.exception
else:  # pragma: no cover

    def current_exception() -> BaseException | None:
        return sys.exc_info()[1]


def leave_scope(
    scope: Scope, exc: BaseException, cancelled_exc: type[BaseException]
) -> tuple[Ending, BaseException]:
    """Leave ``scope``, which the task entered by hand, as ``exc`` escapes the task's
    coroutine; return how the task ended, and the exception it ended with (the
    scope may replace ``exc``, as an anyio scope does with a group).

    Only the raising path needs the rule: a coroutine that returned leaves its
    scope with ``scope.__exit__(None, None, None)``."""
    try:
        caught = scope.__exit__(type(exc), exc, exc.__traceback__)
    except BaseException as replaced:  # the scope raised something else
        exc, caught = replaced, False
    if caught:
        return Ending.CANCELLED, exc
    if isinstance(exc, Exception):
        return Ending.FAILED, exc
    if isinstance(exc, cancelled_exc):
        return Ending.CANCELLED_FROM_OUTSIDE, exc
    return Ending.INTERRUPTED, exc


class Backend(Protocol):
    """What a registry and a gather need from the running event loop.

    Attributes:
        cancelled_exc: the backend's cancellation exception class.
        thread: the ident of the event loop's thread.
        new_scope: makes a fresh, unshielded cancel scope, without a deadline.
        new_deadline_scope: makes a fresh, unshielded cancel scope with a
            deadline (``new_deadline_scope(deadline=t)``), which anyio-aware code
            inside it sees (``anyio.current_effective_deadline()``).
        new_event: makes a fresh event.
        new_wakeup: makes a fresh event for waiters that wait on it as soon as
            they get it, never once it is set (whoever sets it drops it): the
            backend's own event, without anyio's wrapper (whose wait on a set
            event checkpoints, which such an event never needs), cheaper to make
            (issue #27 item 4); on asyncio a future per waiter, without
            ``asyncio.Event``'s coroutine.
        new_waker: makes a fresh :class:`Waker`, for one waiter only (a
            gather's driver or consumer): on asyncio the bare future it awaits,
            without an event's list of waiters (issue #27 item 4); elsewhere an
            event.
        holds_children: whether a gather's children must run inside the block
            :meth:`children` gives (trio); where ``False``, the block gives
            ``None`` and the engine skips it (asyncio, issue #27 item 4).
        call_soon_threadsafe: runs a sync callable on the loop, from any thread.
        interruptible: ``None``, or wraps the coroutine a task awaits for its
            owner so that Ctrl+C can interrupt it there while the owner's own
            bookkeeping stays protected (trio, whose system tasks are shielded
            from ``KeyboardInterrupt``).
        open_host: ``None``, or opens a :class:`Host` in the calling task, which
            a registry's ``async with`` block (or an ``as_completed`` block)
            holds its tasks in so that they sit under the block's task in the
            backend's task tree (trio). Not a checkpoint.
        late_scope: ``None``, or makes a scope for code that is already running
            in the given task, as if it had entered the scope then: a block's
            body gets its scope only when something first cancels it, which
            most blocks never need (asyncio's native scope, which keeps no stack
            of scopes; issue #27 item 4). Its ``__exit__`` is called as the body
            ends, in that task. Where ``None``, the body enters its scope as it
            starts.
        open_system_host: ``None``, or opens a :class:`Host` for a registry
            opened with ``open()``, given its name: a task of the backend's own
            that its tasks sit under (trio). A schedule point that cannot be
            cancelled; the host's close only lets it end (it may be called from
            one of the registry's tasks).
        hand_over_interrupt: ``None``, or hands a ``KeyboardInterrupt`` that a
            task of a registry with no block raised to the event loop, as
            Ctrl+C in the loop's protected code is handed (trio: raised in the
            main task at its next checkpoint); returns whether it did.
    """

    # Read-only members: each backend sets them once, as plain attributes.
    @property
    def cancelled_exc(self) -> type[BaseException]: ...
    @property
    def thread(self) -> int: ...
    @property
    def new_scope(self) -> Callable[[], Scope]: ...
    @property
    def new_deadline_scope(self) -> Callable[..., Scope]: ...
    @property
    def new_event(self) -> Callable[[], Event]: ...
    @property
    def new_wakeup(self) -> Callable[[], Event]: ...
    @property
    def new_waker(self) -> Callable[[], Waker]: ...
    @property
    def holds_children(self) -> bool: ...
    @property
    def call_soon_threadsafe(self) -> Callable[[Callable[[], object]], object]: ...
    @property
    def interruptible(self) -> Interruptible | None: ...
    @property
    def late_scope(self) -> Callable[[object], Scope] | None: ...
    @property
    def open_host(self) -> Callable[[], Awaitable[Host]] | None: ...
    @property
    def open_system_host(self) -> Callable[[str], Awaitable[Host]] | None: ...
    @property
    def hand_over_interrupt(self) -> HandOver | None: ...
    def current_task(self) -> object:
        """The running task, as :meth:`create_task` returns it."""
        ...

    def loop_is_ending(self) -> bool:
        """Called in a task whose cancellation came from outside its own scope:
        whether that is the event loop ending (it cancels every task left)."""
        ...

    def coroutine_of(self, task: object) -> object:
        """The outermost coroutine a task returned by :meth:`create_task` runs."""
        ...

    def tasks_of(self, held: list[object]) -> list[object]:
        """The running tasks among what a gather's ``create_task`` returned (on
        trio a gather's children are held through their nursery or host), for
        ``tether.dump()``. Reads only; may run in another thread."""
        ...

    def create_task(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, None]],
        /,
        *args: Unpack[PosArgsT],
        name: str,
        context: Context | None = None,
    ) -> object:
        """Start ``fn(*args)`` as a task and return it (the caller holds it: that
        keeps it alive).

        The task runs in a copy of the current context, or in ``context`` itself
        (pass a copy). If the task cannot be started, the coroutine is closed and
        the error raised: nothing is left half-started.
        """
        ...

    def children(self) -> AbstractAsyncContextManager[Callable[..., object] | None]:
        """For a gather: the block its children run in, in the calling task. It
        gives ``None`` (asyncio: start them with :meth:`create_task`), or the function
        that starts this gather's children (with :meth:`create_task`'s arguments but
        ``context``) as children of the caller's (on trio, nursery children that
        see the caller's deadlines). Every child must end inside it."""
        ...

    def caller_cancelled(self) -> bool:
        """Called in a gather's child, outside the task's own scope: whether the
        caller's cancellation reaches it there (on trio, where the task is the
        caller's nursery child, started by the function :meth:`children`
        gives)."""
        ...

    def wake(self) -> None:
        """Called after a cancellation was requested: when no task is running (a
        ``signal.signal`` handler, which runs while the loop may sleep in its
        selector), make the loop wake and deliver it now. Inside a task, nothing:
        the loop is awake."""
        ...

    def cancel_soon(self, scopes: list[Scope], wake: list[Event] | None = None) -> None:
        """Cancel every scope in ``scopes``, then set every event in ``wake``: now,
        or from one callback of the loop where that is cheaper.

        Setting the events after the cancellations means a task that is both
        cancelled and woken sees its cancellation, on every backend.
        """
        ...

    @property
    def clock(self) -> Callable[[], float]:
        """The event loop's clock, as ``anyio.current_time()`` reads it, without
        anyio's dispatch."""
        ...

    @property
    def checkpoint(self) -> Callable[[], Awaitable[None]]:
        """``anyio.lowlevel.checkpoint``, without anyio's dispatch."""
        ...

    @property
    def checkpoint_if_cancelled(self) -> Callable[[], Awaitable[None]]:
        """``anyio.lowlevel.checkpoint_if_cancelled``, without anyio's dispatch."""
        ...

    @property
    def current_effective_deadline(self) -> Callable[[], float]:
        """``anyio.current_effective_deadline``, without anyio's dispatch."""
        ...

    async def wait_until(
        self,
        deadline: float,
        wake: Callable[[], object],
        fn: Callable[[Unpack[PosArgsT]], Awaitable[object]],
        /,
        *args: Unpack[PosArgsT],
    ) -> None:
        """``await fn(*args)``, given up at ``deadline`` (the clock's time): on
        asyncio a timer calls ``wake``, which must make ``fn`` return (set what it
        waits for); on trio a deadline cancels it. Cheaper than an anyio scope
        with a deadline, which a drain made every time (issue #27 item 4)."""
        ...
