"""The task handle: what every spawn returns.

A handle is the registry's record of one task: the registry holds it (and through it
the backend task) until the task ends, and users await it for the outcome. It is kept
small on purpose: a handle is made for every task, so it has ``__slots__``, no
per-instance event until somebody waits on an unfinished task, and no back-pointers
it does not need.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any, Generic, NoReturn, Protocol, cast

import anyio

if sys.version_info >= (3, 13):  # a TypeVar's default=; final sets __final__ (3.11+)
    from typing import TypeVar, final
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVar, final

from ._exceptions import TaskCancelled, TaskNotFinished
from ._log import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    # At run time anyio.lowlevel is read as an attribute of anyio, which imports it
    # on first use (anyio 4.16; earlier ones import it with the package).
    import anyio.lowlevel  # noqa: TC004

    from ._backend import Event, Scope

__all__ = [
    "CALLBACK_RAISED",
    "Annex",
    "Delivery",
    "Handle",
    "Owner",
    "Status",
    "call_hook",
]

#: The ERROR record of a done-callback or hook that raised (the test plugin tells
#: it from a task's failure by this format).
CALLBACK_RAISED = "%s of task %r raised; the task is unaffected"

T_co = TypeVar("T_co", covariant=True, default=Any)


class Status(enum.Enum):
    """Where a task is in its life.

    A task moves from ``QUEUED`` (waiting for a slot of a registry with a ``limit``)
    or straight from the spawn to ``RUNNING``; ``CANCELLING`` once its cancellation
    has been asked for; and ends in exactly one of ``FINISHED``, ``FAILED`` or
    ``CANCELLED``.

    .. versionadded:: 0.1
    """

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


QUEUED = Status.QUEUED
RUNNING = Status.RUNNING
CANCELLING = Status.CANCELLING
FINISHED = Status.FINISHED
FAILED = Status.FAILED
CANCELLED = Status.CANCELLED
# The ended statuses are told apart by identity, never by ``in`` a set: an Enum
# member's hash is Python code (its name hashed), which every Handle.done() and a
# gather's every input paid.


class Delivery(enum.Enum):
    """Who has seen a failed task's exception: nobody yet, an awaiter, or the
    registry's reporter (the log or the ``on_error`` callable)."""

    UNSEEN = "unseen"
    RECEIVED = "received"
    REPORTED = "reported"


UNSEEN = Delivery.UNSEEN
RECEIVED = Delivery.RECEIVED
REPORTED = Delivery.REPORTED


class Annex:
    """What few tasks carry, annexed to the handle so that the others pay one
    slot for it (``Handle.annex_``, ``None`` for a plain task).

    ``timeout``: the seconds a plain task may run (a service times each run
    itself); ``restarts``: how often a service was restarted; ``callbacks``: the
    done-callbacks not yet run; ``hooks``: the registry's hooks, when it has some
    (then every task carries an ``Annex``, as with ``debug=True``); ``born`` and
    ``spawned_at``: when and where (``"file:line"``) the task was spawned,
    recorded with ``debug=True``; ``fatal``: the task's failure ends the registry
    as in raise mode, whatever its ``on_error`` (a service that gave up with
    ``on_give_up="raise"``); ``pool``: the pool (:class:`~tether.Pool`) whose
    slot the task holds or waits for.
    """

    __slots__ = (
        "born",
        "callbacks",
        "calling",
        "fatal",
        "hooks",
        "pool",
        "restarts",
        "spawned_at",
        "timeout",
    )

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout: float | None = timeout
        self.hooks: object = None
        self.pool: Any = None  # a tether._registry.Pool (not imported: a cycle)
        self.calling: bool = False  # the task's end is being told: callbacks queue up
        self.born: float | None = None  # when it was spawned, with debug=True
        self.spawned_at: str | None = None  # where, with debug=True
        self.restarts: int = 0
        self.fatal: bool = False
        self.callbacks: list[Callable[[Handle[Any]], object]] = []


class Owner(Protocol):
    """What a handle needs from the registry that owns its task."""

    def fatal_(self, exc: BaseException, /) -> None:
        """A callback or hook raised ``KeyboardInterrupt``-like ``exc``: end all."""
        ...

    @property
    def name(self) -> str:
        """The owner's name, for log records."""
        ...

    def cancel_task_(self, handle: Handle[Any], /) -> None:
        """Cancel the task behind ``handle`` (queued or running)."""
        ...

    def new_event_(self) -> Event:
        """A fresh event of the owner's backend."""
        ...

    def report_(self, handle: Handle[Any], /) -> None:
        """Report the failure of ``handle`` that no awaiter received."""
        ...

    def refuse_self_wait_(self, handle: Handle[Any], /) -> None:
        """Raise ``RuntimeError`` if the running task is ``handle``'s own."""
        ...


@final
class Handle(Generic[T_co]):
    """A task spawned into a :class:`~tether.TaskRegistry`, and its outcome.

    Returned by :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`,
    :func:`tether.spawn` and :meth:`~tether.TaskRegistry.spawn_when_free`; never
    constructed by users.

    ``await handle`` suspends until the task ends and then returns its result,
    raises the task's own exception object (with its traceback, so ``except
    SomeError:`` works as it does around an awaited :class:`asyncio.Task`), or raises
    :exc:`~tether.TaskCancelled` if the task was cancelled. While it waits it is a
    cancellation point; cancelling the awaiter stops the wait and never cancels the
    task (unlike awaiting an :class:`asyncio.Task`). On a task that has already
    ended it returns at once and is not a checkpoint, like awaiting a done
    :class:`asyncio.Task`.

    A handle is not an asyncio future: ``asyncio.wait([handle])`` does not accept
    it. Use :func:`tether.race` or :func:`tether.as_completed` instead.

    .. versionadded:: 0.1
    """

    # The registry's record of the task, which tether's own modules (the registry,
    # the engine, the error policy, the slots) read and write on the hot path, so
    # plain slots, no properties. A trailing underscore marks a name public to the
    # package but not the API: kept out of the docs (docs/api.md lists the members
    # it shows) and used by nothing outside tether; pyright's reportPrivateUsage
    # then holds for every name with a leading one.
    __slots__ = (
        "__weakref__",
        "annex_",
        "awaiters_",
        "delivered_",
        "event_",
        "name_",
        "owner_",
        "scope_",
        "status_",
        "value_",
    )

    awaiters_: int
    delivered_: Delivery
    event_: Event | None
    annex_: Annex | None
    name_: str
    owner_: Owner
    scope_: Scope | None
    status_: Status
    # One slot for what is never needed together (a handle is made per task):
    # while QUEUED, the (coroutine, context) to start it with; once FINISHED, the
    # result; once FAILED, the exception; once CANCELLED, the BaseException that
    # cancelled it from outside (KeyboardInterrupt...), or None.
    value_: Any

    def __init__(self) -> None:
        raise TypeError(
            "Handle objects are made by spawning: use TaskRegistry.spawn(fn, *args) "
            "or tether.spawn(fn, *args)"
        )

    # -- reading the outcome ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The task's name: ``name=`` given to the spawn, or the function's
        ``__qualname__``."""
        return self.name_

    @property
    def status(self) -> Status:
        """The task's current :class:`Status`."""
        return self.status_

    @property
    def spawned_at(self) -> str | None:
        """``"file:line"`` of the spawn call when the registry has ``debug=True``,
        else ``None``."""
        annex = self.annex_
        return None if annex is None else annex.spawned_at

    @property
    def restarts(self) -> int:
        """How many times the task was restarted: always 0 but for a service (see
        :meth:`TaskRegistry.spawn_service <tether.TaskRegistry.spawn_service>`).

        .. versionadded:: 0.2
        """
        return 0 if self.annex_ is None else self.annex_.restarts

    def done(self) -> bool:
        """Return ``True`` once the task has ended: finished, failed or cancelled."""
        status = self.status_
        return status is FINISHED or status is FAILED or status is CANCELLED

    def result(self) -> T_co:
        """Return the task's result without waiting.

        Raises:
            TaskNotFinished: the task has not ended yet.
            TaskCancelled: the task was cancelled.
            Exception: the task's own exception, if it failed.
        """
        status = self.status_
        if status is FINISHED:
            return cast("T_co", self.value_)
        if status is FAILED:
            raise cast("BaseException", self.value_)
        if status is CANCELLED:
            self._raise_cancelled()
        raise TaskNotFinished(
            f"task {self.name_!r} is {status.name}: await the handle, or check "
            "handle.done() before calling result()"
        )

    def exception(self) -> BaseException | None:
        """Return the exception the task failed with, or ``None`` if it finished.

        Raises:
            TaskNotFinished: the task has not ended yet.
            TaskCancelled: the task was cancelled.
        """
        status = self.status_
        if status is FINISHED:
            return None
        if status is FAILED:
            exc: BaseException = self.value_
            return exc
        if status is CANCELLED:
            self._raise_cancelled()
        raise TaskNotFinished(
            f"task {self.name_!r} is {status.name}: await handle.wait(), or check "
            "handle.done() before calling exception()"
        )

    def cancel(self) -> None:
        """Cancel this task, and only this task. Idempotent; never blocks.

        A queued task is dropped and its coroutine closed; a task that has not taken
        its first step never runs; a running task is cancelled at its next unshielded
        checkpoint, and at every one after that until it ends.
        """
        if self.status_ is RUNNING or self.status_ is QUEUED:
            self.owner_.cancel_task_(self)

    def add_done_callback(self, fn: Callable[[Handle[T_co]], object], /) -> None:
        """Call ``fn(handle)`` once, when the task ends; at once if it has ended.

        As on an :class:`asyncio.Task`, but called synchronously as the task ends
        (before anyone awaiting it wakes up), in the order the callbacks were
        added, on every backend (one added by a callback runs after those added
        before it): in the task's own context, or for a task dropped
        before it started, in the context of whoever dropped it. The outcome is
        on the handle (``handle.status``, ``handle.exception()``); reading it
        there does not count as receiving a failure. An exception raised by ``fn``
        is logged on logger ``"tether"`` and changes nothing else; a
        ``KeyboardInterrupt`` or ``SystemExit`` cancels every task and is
        re-raised bare from the block, as from a task. Keep callbacks short and
        non-blocking: to do async work, spawn it from the callback.

        Raises:
            TypeError: ``fn`` is not callable, or is an async function (its
                coroutine would never be awaited).

        .. versionadded:: 0.2
        """
        if not callable(fn):
            raise TypeError(
                f"add_done_callback(fn={fn!r}): fn must be a callable taking the handle"
            )
        from ._calls import describe, is_async_callable

        if is_async_callable(fn):
            raise TypeError(
                f"add_done_callback({describe(fn)}): fn is called synchronously as "
                "the task ends, so it must be a plain `def`, not an `async def`. To "
                "do async work, spawn it from the callback"
            )
        annex = self.annex_
        if self.done() and (annex is None or not annex.calling):
            _call_back(self, fn, at_once=True)
            return
        self.add_callback_(fn)

    def add_callback_(self, fn: Callable[[Handle[T_co]], object], /) -> None:
        """:meth:`add_done_callback` of a checked ``fn`` on a task that has not
        ended (or whose end is being told): tether's own, which checks nothing
        (the check of ``fn`` cost a one-handle gather a fifth of its time)."""
        annex = self.annex_
        if annex is None:
            annex = self.annex_ = Annex()
        # Added while the end is told (by a callback or the ended hook): after
        # the callbacks added before it, as asyncio's call_soon would order it.
        annex.callbacks.append(fn)

    def ended_(self) -> None:
        """The task has ended: call the ``ended`` hook, then the done-callbacks (the
        owner calls this only when ``annex_`` is set)."""
        annex = self.annex_
        assert annex is not None
        annex.calling = True
        try:
            if annex.hooks is not None:
                call_hook(annex.hooks, "ended", self)
            callbacks = annex.callbacks
            while callbacks:
                _call_back(self, callbacks.pop(0))
        finally:
            annex.calling = False

    async def wait(self) -> None:
        """Wait until the task has ended, whatever the outcome; never raises it.

        A checkpoint. Waiting with ``wait()`` does not count as receiving a failure
        (see ``on_error``). Cancelling the waiter does not cancel the task.
        """
        if self.done():
            await anyio.lowlevel.checkpoint()
            return
        self.owner_.refuse_self_wait_(self)
        await self._waiter_event().wait()

    def __await__(self) -> Generator[Any, Any, T_co]:
        """``await handle``: the task's result, its own exception, or
        :exc:`~tether.TaskCancelled`; see the class docstring for when it waits."""
        status = self.status_
        if status is FINISHED:
            return cast("T_co", self.value_)
        if status is FAILED or status is CANCELLED:
            return self.outcome_()
        # Waits here, in this generator, as _wait_as_awaiter() does: no coroutine
        # of our own between the awaiter and the event.
        self.owner_.refuse_self_wait_(self)
        event = self._waiter_event()  # counts the awaiters
        self.awaiters_ += 1
        try:
            yield from event.wait().__await__()
        except BaseException:
            self.awaiters_ -= 1
            self.unreceived_()
            raise
        self.awaiters_ -= 1
        return self.outcome_()

    def _waiter_event(self) -> Any:
        # Made on demand: most tasks end before anyone waits on them, and an event
        # per task would cost every task its allocation.
        event = self.event_
        if event is None:
            event = self.event_ = self.owner_.new_event_()
            self.awaiters_ = 0
        return event

    async def wait_as_awaiter_(self, event: Event) -> None:
        """Wait for ``event`` as one who will receive a failure: while we wait, a
        failure is left to us, and reported if every such waiter leaves first."""
        self._waiter_event()  # counts the awaiters
        self.awaiters_ += 1
        try:
            await event.wait()
        except BaseException:
            self.awaiters_ -= 1
            self.unreceived_()
            raise
        self.awaiters_ -= 1

    def unreceived_(self) -> None:
        """An awaiter leaves without receiving the outcome: if it was the last and
        the task's failure is unseen, report it now, once."""
        if self.awaiters_ == 0 and self.status_ is FAILED and self.delivered_ is UNSEEN:
            self.owner_.report_(self)

    def redeliver_(self) -> None:
        """A gather received this failure and dropped it: report it after all."""
        if self.status_ is FAILED and self.delivered_ is RECEIVED:
            self.delivered_ = UNSEEN
            self.owner_.report_(self)

    def outcome_(self) -> T_co:
        """:meth:`result`, as an awaiter receives it: a failure counts as seen."""
        if self.status_ is FAILED and self.delivered_ is UNSEEN:
            self.delivered_ = RECEIVED
        return self.result()

    def _raise_cancelled(self) -> NoReturn:
        cause: BaseException | None = self.value_
        raise TaskCancelled(f"task {self.name_!r} was cancelled") from cause

    def __repr__(self) -> str:
        status = self.status_
        detail = ""
        if status is FINISHED:
            detail = f" result={self.value_!r}"
        elif status is FAILED:
            detail = f" exception={self.value_!r}"
        spawned_at = self.spawned_at
        if spawned_at is not None:
            detail += f" spawned_at={spawned_at}"
        return f"<tether.Handle {self.name_!r} {status.name}{detail}>"


def _call_back(
    handle: Handle[Any],
    fn: Callable[[Handle[Any]], object],
    *,
    at_once: bool = False,
    what: str = "A done-callback",
) -> None:
    """Call ``fn(handle)`` for the registry: an exception is logged and changes
    nothing; a ``KeyboardInterrupt`` or ``SystemExit`` ends everything through the
    owner (never raised inside a task's end), or with ``at_once`` reaches the
    caller."""
    try:
        fn(handle)
    except (KeyboardInterrupt, SystemExit) as exc:
        if at_once:
            raise  # called by add_done_callback itself: the caller's to handle
        handle.owner_.fatal_(exc)
    except BaseException:
        # Any other, a cancellation included (result() of a cancelled asyncio
        # future read in a callback): it would otherwise cancel whoever ran us.
        logger.exception(
            CALLBACK_RAISED,
            what,
            handle.name_,
            extra={"tether_registry": handle.owner_.name, "tether_task": handle.name_},
        )


def call_hook(hooks: object, moment: str, handle: Handle[Any]) -> None:
    """Call ``hooks.<moment>(handle)`` (see :class:`tether.Hooks`) if it is there."""
    method: Callable[[Handle[Any]], object] | None = getattr(hooks, moment, None)
    if method is not None:
        _call_back(
            handle,
            method,
            what=f"The {moment} hook of TaskRegistry {handle.owner_.name!r}",
        )
