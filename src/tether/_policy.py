"""A registry's error policy: what a failing task does, and what leaves the block.

:class:`ErrorPolicy` owns ``on_error`` and everything that follows from it: the
failures collected in raise mode, the one ``BaseException`` that ends everything,
reporting a failure nobody received (once, to the log or the callback), the record
of what shutdown cancelled, and the exception the ``async with`` finally raises.
"""

from __future__ import annotations

import enum
import logging
import sys
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ._calls import describe, is_async_callable
from ._handle import FAILED, REPORTED, UNSEEN, Handle

if TYPE_CHECKING:
    from collections.abc import Callable

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

__all__ = ["ErrorPolicy", "Mode", "OnError", "logger"]

logger = logging.getLogger("tether")

OnError: TypeAlias = (
    "Literal['raise', 'log'] | Callable[[Handle[Any], Exception], None]"
)

#: How many task names the shutdown WARNING lists.
_SHUTDOWN_NAMES = 20


class Mode(enum.Enum):
    """The three ``on_error`` policies."""

    RAISE = "raise"  # structured: the first failure cancels everything
    LOG = "log"  # isolated: report to logger "tether"
    CALL = "call"  # isolated: report to the user's callable


class ErrorPolicy:
    """``on_error`` for one registry, and the outcome of its ``async with``."""

    __slots__ = (
        "_callback",
        "_registry",
        "_shutdown_count",
        "_shutdown_names",
        "base_exc",
        "failures",
        "mode",
    )

    def __init__(self, on_error: OnError, registry: str) -> None:
        self._callback: Callable[[Handle[Any], Exception], object] | None = None
        if on_error == "raise":
            self.mode = Mode.RAISE
        elif on_error == "log":
            self.mode = Mode.LOG
        elif callable(on_error):
            if is_async_callable(on_error):
                # Called synchronously when a task fails: a coroutine function
                # would only make a coroutine that nobody awaits.
                raise TypeError(
                    f"TaskRegistry(on_error={describe(on_error)}): on_error is "
                    "called synchronously with (handle, exception) when a task "
                    "fails, so it must be a plain `def`, not an `async def`"
                )
            self.mode = Mode.CALL
            self._callback = on_error
        else:
            raise ValueError(
                f"TaskRegistry(on_error={on_error!r}): use 'log' (isolate and log), "
                "'raise' (cancel all and raise an ExceptionGroup) or a callable "
                "(handle, exception) -> None"
            )
        self._registry = registry
        self.failures: list[Exception] = []
        self.base_exc: BaseException | None = None
        self._shutdown_count = 0
        self._shutdown_names: list[str] = []

    # -- failures ---------------------------------------------------------------------

    def add_failure(self, exc: Exception) -> None:
        """Collect a failure for the ``ExceptionGroup`` of raise mode, once."""
        # Awaiting a handle raises the task's own exception object, so a body or a
        # sibling that re-raises it must not add it again.
        if all(seen is not exc for seen in self.failures):
            self.failures.append(exc)

    def task_failed(self, handle: Handle[Any], exc: Exception) -> bool:
        """A task failed; return whether the registry must cancel everything."""
        if self.mode is Mode.RAISE:
            self.add_failure(exc)
            return True
        if handle._event is None or handle._awaiters == 0:
            return self.report(handle)
        return False  # its awaiters receive it (or report it if they all leave)

    def base_exception(self, exc: BaseException) -> None:
        """Keep the first ``KeyboardInterrupt``-like exception, to re-raise bare."""
        if self.base_exc is None:
            self.base_exc = exc

    def report(self, handle: Handle[Any]) -> bool:
        """Report a failure nobody received, once (log and callable modes).

        Returns whether the registry must cancel everything: the callback raised a
        ``BaseException`` that is not an ``Exception``, kept to be re-raised bare.
        """
        if (
            self.mode is Mode.RAISE
            or handle._delivered is not UNSEEN
            or handle._status is not FAILED
        ):
            return False
        handle._delivered = REPORTED
        exc = handle._value
        assert isinstance(exc, Exception)  # FAILED: always an Exception
        callback = self._callback
        if callback is None:
            self._log_failure(handle, exc)
            return False
        try:
            returned = callback(handle, exc)
        except Exception as callback_exc:
            self._log_failure(handle, exc)
            logger.error(
                "The on_error callback of TaskRegistry %r raised while reporting "
                "task %r",
                self._registry,
                handle._name,
                exc_info=callback_exc,
                extra={"tether_registry": self._registry, "tether_task": handle._name},
            )
            return False
        except BaseException as base:  # KeyboardInterrupt, SystemExit
            self._log_failure(handle, exc)
            self.base_exception(base)
            return True
        if hasattr(returned, "__await__"):
            # A sync callable that returns an awaitable (a lambda around an async
            # function): nobody would ever await it.
            close: object = getattr(returned, "close", None)
            if callable(close):
                close()
            self._log_failure(handle, exc)
            logger.error(
                "The on_error callback of TaskRegistry %r returned %s, which is "
                "never awaited: on_error must be a plain function that handles the "
                "failure itself (to do async work, spawn it from the callback)",
                self._registry,
                type(returned).__name__,
                extra={"tether_registry": self._registry, "tether_task": handle._name},
            )
        return False

    def _log_failure(self, handle: Handle[Any], exc: Exception) -> None:
        logger.error(
            "Task %r of TaskRegistry %r failed",
            handle._name,
            self._registry,
            exc_info=exc,
            extra={"tether_registry": self._registry, "tether_task": handle._name},
        )

    # -- shutdown ---------------------------------------------------------------------

    def cancelled_at_shutdown(
        self, running: list[Handle[Any]], queued: list[Handle[Any]]
    ) -> None:
        """Record the tasks that shutdown cancels, for the WARNING at the end (and
        one DEBUG record each, when DEBUG is on)."""
        self._shutdown_count += len(running) + len(queued)
        room = _SHUTDOWN_NAMES - len(self._shutdown_names)
        if room > 0:
            self._shutdown_names += [h._name for h in (running + queued)[:room]]
        if logger.isEnabledFor(logging.DEBUG):
            for handle in running + queued:
                logger.debug(
                    "TaskRegistry %r cancels task %r at shutdown (%s)",
                    self._registry,
                    handle._name,
                    handle._status.name,
                    extra={
                        "tether_registry": self._registry,
                        "tether_task": handle._name,
                    },
                )

    def log_shutdown(self) -> None:
        """One WARNING naming what shutdown cancelled, if anything."""
        count = self._shutdown_count
        if count:
            more = (
                f" and {count - _SHUTDOWN_NAMES} more"
                if count > _SHUTDOWN_NAMES
                else ""
            )
            logger.warning(
                "TaskRegistry %r cancelled %d task(s) at shutdown: %s%s",
                self._registry,
                count,
                ", ".join(self._shutdown_names),
                more,
                extra={"tether_registry": self._registry, "tether_task": None},
            )

    def outcome(
        self,
        exc: BaseException | None,
        original: BaseException | None,
        cancelled_exc: type[BaseException],
    ) -> bool:
        """Raise what leaves the ``async with``; return whether to swallow
        ``original`` (the body's exception)."""
        if (
            exc is not None
            and not isinstance(exc, Exception)
            and not isinstance(exc, cancelled_exc)
        ):
            raise exc  # KeyboardInterrupt or SystemExit in the body
        if self.base_exc is not None:
            raise self.base_exc
        if self.failures:
            raise ExceptionGroup(
                f"unhandled errors in TaskRegistry {self._registry!r}", self.failures
            )
        if exc is None:
            return original is not None
        if exc is original:
            return False
        raise exc
