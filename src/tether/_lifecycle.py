"""The registry's lifecycle and error policy: OPEN, DRAINING, CANCELLING, CLOSED.

:class:`Lifecycle` is the half of :class:`~tether.TaskRegistry` that is not on the
per-task hot path: entering a backend, leaving (drain, cancel, raise), reporting
failures, waiting for room or for idleness, and binding. The spawn/run/finish path
is in :mod:`tether._registry`.
"""

from __future__ import annotations

import enum
import logging
import sys
from contextvars import Context, ContextVar, Token
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from typing_extensions import TypeVarTuple

from ._backend import Backend, open_backend
from ._calls import (
    close_if_coroutine,
    describe,
    is_async_callable,
)
from ._exceptions import RegistryClosed
from ._handle import FAILED, QUEUED, RUNNING, Handle
from ._spawn import ambient

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Coroutine

    from ._registry import OnError

__all__ = ["Lifecycle", "RegistryState", "SlotWaiter"]

T = TypeVar("T")
R = TypeVar("R")
PosArgsT = TypeVarTuple("PosArgsT")

logger = logging.getLogger("tether")

#: The registries whose tasks the current code descends from: while a registry
#: drains, only they may still spawn follow-up work into it.
lineage: ContextVar[tuple[object, ...]] = ContextVar("tether.lineage", default=())

_SHUTDOWN_NAMES = 20


class RegistryState(enum.Enum):
    """The lifecycle of a :class:`~tether.TaskRegistry`: ``NEW`` until entered, then
    ``OPEN`` → ``DRAINING`` → ``CANCELLING`` → ``CLOSED``.

    .. versionadded:: 0.1
    """

    NEW = "new"
    OPEN = "open"
    DRAINING = "draining"
    CANCELLING = "cancelling"
    CLOSED = "closed"


NEW = RegistryState.NEW
OPEN = RegistryState.OPEN
DRAINING = RegistryState.DRAINING
CANCELLING = RegistryState.CANCELLING
CLOSED = RegistryState.CLOSED

_RAISE, _LOG, _CALL = 0, 1, 2

_WHY_CLOSED = {
    NEW: "NEW: it has not been entered yet. Open it first with `async with registry:`",
    DRAINING: (
        "DRAINING: its body has ended, and only its own tasks may spawn follow-up "
        "work while it waits for them. Spawn inside the `async with` block"
    ),
    CANCELLING: (
        "CANCELLING: it is cancelling its tasks (a failure in raise mode, the "
        "shutdown deadline, or a cancellation) and takes no new work"
    ),
    CLOSED: "CLOSED: all its tasks have ended. Open a new TaskRegistry",
}


class SlotWaiter:
    """A ``spawn_when_free`` caller waiting in the registry's FIFO queue."""

    __slots__ = ("closed", "event", "gone", "granted")

    def __init__(self, event: Any) -> None:
        self.event = event
        self.granted = False
        self.closed = False
        self.gone = False

    def grant(self) -> bool:
        if self.gone:
            return False
        self.granted = True
        self.event.set()
        return True


class Lifecycle:
    """Entering, leaving, error policy and waiting for a registry."""

    __slots__ = (
        "_backend",
        "_base_exc",
        "_body_open",
        "_body_scope",
        "_cancelled",
        "_cancelled_exc",
        "_create_task",
        "_event_cls",
        "_failed",
        "_failures",
        "_idle_event",
        "_lineage_token",
        "_mode",
        "_name",
        "_on_error",
        "_reserved",
        "_scope_factory",
        "_shutdown_count",
        "_shutdown_names",
        "_shutdown_timeout",
        "_spawn_soon",
        "_spawned",
        "_state",
        "_succeeded",
        "_thread",
        "_token",
        "_trio",
    )

    _backend: Backend
    _lineage_token: Token[tuple[object, ...]]
    _spawned: int
    _succeeded: int
    _failed: int
    _cancelled: int
    _reserved: int

    # Provided by TaskRegistry.
    _debug: bool
    _limit: int | None
    _live: dict[Handle[Any], object]
    _queue: deque[Handle[Any] | SlotWaiter]
    _queued: int

    def __init__(
        self, name: str, on_error: OnError, shutdown_timeout: float | None
    ) -> None:
        if on_error == "raise":
            self._mode = _RAISE
        elif on_error == "log":
            self._mode = _LOG
        elif callable(on_error):
            if is_async_callable(on_error):
                # Called synchronously when a task fails: a coroutine function
                # would only make a coroutine that nobody awaits.
                raise TypeError(
                    f"TaskRegistry(on_error={describe(on_error)}): on_error is "
                    "called synchronously with (handle, exception) when a task "
                    "fails, so it must be a plain `def`, not an `async def`"
                )
            self._mode = _CALL
        else:
            raise ValueError(
                f"TaskRegistry(on_error={on_error!r}): use 'log' (isolate and log), "
                "'raise' (cancel all and raise an ExceptionGroup) or a callable "
                "(handle, exception) -> None"
            )
        if shutdown_timeout is not None and not (
            isinstance(shutdown_timeout, int | float) and shutdown_timeout >= 0
        ):
            raise ValueError(
                f"TaskRegistry(shutdown_timeout={shutdown_timeout!r}): give the "
                "seconds to wait for tasks at shutdown as a number >= 0, or None to "
                "wait without limit"
            )
        self._name = name
        self._on_error = on_error
        self._shutdown_timeout = shutdown_timeout
        self._state = NEW
        self._spawned = self._succeeded = self._failed = self._cancelled = 0
        self._failures: list[Exception] = []
        self._base_exc: BaseException | None = None
        self._idle_event: Any = None
        self._shutdown_count = 0
        self._shutdown_names: list[str] = []
        self._token: Token[Any] | None = None
        self._body_open = False
        self._trio = False
        self._thread = 0
        # Slots granted to spawn_when_free callers that have not spawned yet.
        self._reserved = 0

    # Implemented by TaskRegistry.
    def _make_handle(self, name: str) -> Handle[Any]:
        raise NotImplementedError

    def _submit(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
    ) -> None:
        raise NotImplementedError

    def _cancel_task(self, handle: Handle[Any]) -> None:
        raise NotImplementedError

    def _drop_queued(self, handle: Handle[Any]) -> None:
        raise NotImplementedError

    def _slot_freed(self) -> None:
        raise NotImplementedError

    # -- state checks -----------------------------------------------------------------

    def _raise_closed(self, why: str) -> None:
        raise RegistryClosed(f"TaskRegistry {self._name!r} is {why}")

    def _check_may_spawn(self, fn: object) -> None:
        """Allow a spawn outside OPEN only for follow-up work while draining."""
        state = self._state
        if state is OPEN or (state is DRAINING and self in lineage.get()):
            return
        close_if_coroutine(fn)
        self._raise_closed(_WHY_CLOSED[state])

    def _is_idle(self) -> bool:
        return not self._live and self._queued == 0 and self._reserved == 0

    def _maybe_idle(self) -> None:
        if self._is_idle():
            event = self._idle_event
            if event is not None:
                self._idle_event = None
                event.set()

    # -- entering and leaving ---------------------------------------------------------

    async def _enter_backend(self) -> None:
        backend = self._backend = await open_backend()
        self._trio = backend.trio
        self._cancelled_exc = backend.cancelled_exc
        self._scope_factory = backend.scope_factory
        self._event_cls = backend.event_cls
        if backend.trio:
            self._spawn_soon = backend.spawn_soon
        else:
            self._create_task = backend.create_task
        self._body_scope = anyio.CancelScope()
        self._body_scope.__enter__()
        self._body_open = True
        self._token = ambient.set(self)  # type: ignore[arg-type]  # self is a TaskRegistry
        # The body's context, and so every task spawned from it and their
        # descendants, counts as this registry's own work while it drains.
        self._lineage_token = lineage.set((*lineage.get(), self))
        self._state = OPEN

    async def _exit(self, exc: BaseException | None) -> bool:
        original = exc
        if self._token is not None:
            ambient.reset(self._token)
            lineage.reset(self._lineage_token)
            self._token = None
        self._body_open = False
        try:
            if self._body_scope.__exit__(
                None if exc is None else type(exc),
                exc,
                None if exc is None else exc.__traceback__,
            ):
                exc = None  # our own cancellation of the body, swallowed
        except BaseException as remaining:
            exc = remaining
        if exc is not None and self._mode == _RAISE and isinstance(exc, Exception):
            self._add_failure(exc)
        if exc is None and self._state is OPEN:
            self._state = DRAINING
            try:
                await self._drain()
            except BaseException as cancelled:  # the host was cancelled while draining
                exc = cancelled
        self._begin_cancelling()
        with anyio.CancelScope(shield=True):
            await self._wait_until_idle()
        if self._trio:
            # Every child has released its slot; trio's nursery exit waits for them
            # to return and cannot be cancelled, so it needs no shield (a shield
            # here would sit inside the nursery's own scope).
            await self._backend.nursery_cm.__aexit__(None, None, None)
        self._state = CLOSED
        self._log_shutdown()
        return self._outcome(exc, original)

    def _outcome(
        self, exc: BaseException | None, original: BaseException | None
    ) -> bool:
        """Raise what leaves the ``async with``; return whether to swallow
        ``original``."""
        if (
            exc is not None
            and not isinstance(exc, Exception)
            and not isinstance(exc, self._cancelled_exc)
        ):
            raise exc  # KeyboardInterrupt or SystemExit in the body
        if self._base_exc is not None:
            raise self._base_exc
        if self._failures:
            raise ExceptionGroup(
                f"unhandled errors in TaskRegistry {self._name!r}",
                self._failures,
            )
        if exc is None:
            return original is not None
        if exc is original:
            return False
        raise exc

    async def _drain(self) -> None:
        if self._shutdown_timeout is None:
            await self._wait_until_idle()
        else:
            with anyio.move_on_after(self._shutdown_timeout):
                await self._wait_until_idle()

    async def _wait_until_idle(self) -> None:
        while not self._is_idle():
            event = self._idle_event
            if event is None:
                event = self._idle_event = self._event_cls()
            await event.wait()

    def _begin_cancelling(self) -> None:
        if self._state is CANCELLING or self._state is CLOSED:
            return
        self._state = CANCELLING
        self._cancel_everything(shutdown=True)
        if self._body_open:
            self._body_scope.cancel()

    def _cancel_everything(self, *, shutdown: bool) -> None:
        debug = shutdown and logger.isEnabledFor(logging.DEBUG)
        doomed = [h for h in self._live if h._status is RUNNING]
        entries = list(self._queue)
        self._queue.clear()
        for entry in entries:
            if type(entry) is Handle:
                if entry._status is QUEUED:
                    doomed.append(entry)
            elif isinstance(entry, SlotWaiter):
                if shutdown:
                    entry.closed = True
                    entry.event.set()
                else:
                    self._queue.append(entry)
        for handle in doomed:
            if shutdown:
                self._shutdown_count += 1
                if len(self._shutdown_names) < _SHUTDOWN_NAMES:
                    self._shutdown_names.append(handle._name)
                if debug:
                    logger.debug(
                        "TaskRegistry %r cancels task %r at shutdown (%s)",
                        self._name,
                        handle._name,
                        handle._status.name,
                    )
            self._cancel_task(handle)

    def _log_shutdown(self) -> None:
        count = self._shutdown_count
        if count:
            more = (
                f" and {count - _SHUTDOWN_NAMES} more"
                if count > _SHUTDOWN_NAMES
                else ""
            )
            logger.warning(
                "TaskRegistry %r cancelled %d task(s) at shutdown: %s%s",
                self._name,
                count,
                ", ".join(self._shutdown_names),
                more,
            )

    # -- failures ---------------------------------------------------------------------

    def _add_failure(self, exc: Exception) -> None:
        # Each exception once: awaiting a handle raises the task's own exception
        # object, so a body or a sibling that re-raises it must not add it again.
        if all(seen is not exc for seen in self._failures):
            self._failures.append(exc)

    def _task_failed(self, handle: Handle[Any], exc: Exception) -> None:
        if self._mode == _RAISE:
            self._add_failure(exc)
            self._begin_cancelling()
        elif handle._event is None or handle._awaiters == 0:
            self._report(handle)

    def _base_exception(self, exc: BaseException) -> None:
        if self._base_exc is None:
            self._base_exc = exc
        self._begin_cancelling()

    def _report(self, handle: Handle[Any]) -> None:
        """Report a failure nobody received, once (log and callable modes)."""
        if self._mode == _RAISE or handle._delivered or handle._status is not FAILED:
            return
        handle._delivered = True
        exc = handle._exc
        assert isinstance(exc, Exception)  # FAILED: always an Exception
        if self._mode == _CALL:
            try:
                self._on_error(handle, exc)  # type: ignore[operator]  # mode says callable
            except Exception as callback_exc:
                logger.error(
                    "Task %r of TaskRegistry %r failed",
                    handle._name,
                    self._name,
                    exc_info=exc,
                )
                logger.error(
                    "The on_error callback of TaskRegistry %r raised while reporting "
                    "task %r",
                    self._name,
                    handle._name,
                    exc_info=callback_exc,
                )
            return
        logger.error(
            "Task %r of TaskRegistry %r failed", handle._name, self._name, exc_info=exc
        )
