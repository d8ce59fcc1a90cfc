"""A registry's error policy: what a failing task does, and what leaves the block.

:class:`ErrorPolicy` owns ``on_error`` and everything that follows from it: the
failures collected in raise mode, the one ``BaseException`` that ends everything,
reporting a failure nobody received (once, to the log or the callback), and the
exception the ``async with`` finally raises. What the registry says while it
closes is :mod:`tether._shutdown_log`'s.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from ._calls import describe, is_async_callable
from ._checks import check_choice
from ._handle import FAILED, REPORTED, UNSEEN, Handle
from ._log import logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

__all__ = ["ErrorPolicy", "OnError", "OnErrorMode", "plain_outcome"]

OnError: TypeAlias = (
    "Literal['raise', 'log'] | Callable[[Handle[Any], Exception], None]"
)


class OnErrorMode(enum.Enum):
    """The three ``on_error`` policies."""

    RAISE = "raise"  # structured: the first failure cancels everything
    LOG = "log"  # isolated: report to logger "tether"
    CALL = "call"  # isolated: report to the user's callable


class ErrorPolicy:
    """``on_error`` for one registry, and the outcome of its ``async with``."""

    __slots__ = (
        "_callback",
        "_registry",
        "base_exc",
        "base_handed_over",
        "failures",
        "mode",
    )

    def __init__(self, on_error: OnError, registry: str) -> None:
        self._callback: Callable[[Handle[Any], Exception], object] | None = None
        if on_error == "log":  # the default first: a short-lived registry's case
            self.mode = OnErrorMode.LOG
        elif on_error == "raise":
            self.mode = OnErrorMode.RAISE
        else:
            given: object = on_error  # any value at all, at run time
            if not callable(given):
                check_choice(
                    "TaskRegistry",
                    "on_error",
                    given,
                    ("log", "raise"),
                    "use 'log' (isolate and log), 'raise' (cancel all and raise an "
                    "ExceptionGroup) or a callable (handle, exception) -> None",
                )
            if is_async_callable(on_error):
                # Called synchronously when a task fails: a coroutine function
                # would only make a coroutine that nobody awaits.
                raise TypeError(
                    f"TaskRegistry(on_error={describe(on_error)}): on_error is "
                    "called synchronously with (handle, exception) when a task "
                    "fails, so it must be a plain `def`, not an `async def`"
                )
            self.mode = OnErrorMode.CALL
            self._callback = on_error
        self._registry = registry
        self.failures: list[Exception] = []
        self.base_exc: BaseException | None = None
        # The event loop raised it elsewhere (trio's main task): not raised again.
        self.base_handed_over = False

    # -- failures ---------------------------------------------------------------------

    def add_failure(self, exc: Exception) -> None:
        """Collect a failure for the ``ExceptionGroup`` of raise mode, once."""
        # Awaiting a handle raises the task's own exception object, so a body or a
        # sibling that re-raises it must not add it again; nor the group aclose()
        # raised, nor a group of a nested task group that holds one.
        known = set(map(id, _leaves(self.failures)))
        if isinstance(exc, ExceptionGroup):

            def new(e: BaseException) -> bool:
                return not isinstance(e, BaseExceptionGroup) and id(e) not in known

            group = cast("ExceptionGroup[Exception]", exc)
            rest = group.subgroup(new)
            if rest is not None:
                self.failures.append(rest)
        elif id(exc) not in known:
            self.failures.append(exc)

    def task_failed(self, handle: Handle[Any], exc: Exception, closed: bool) -> bool:
        """A task failed; return whether the registry must cancel everything.

        ``closed``: the registry has closed and nothing will raise its group any
        more (a task that called ``aclose()`` failed after it): in raise mode the
        failure is then reported, as a failure nobody awaited is. A task marked
        fatal (a service that gave up with ``on_give_up="raise"``) fails the
        registry as in raise mode, whatever ``on_error`` says."""
        if self._raises(handle):
            if closed:
                handle.delivered_ = REPORTED
                self._log_failure(handle, exc, " after the registry had closed")
                return False
            self.add_failure(exc)
            return True
        if handle.event_ is None or handle.awaiters_ == 0:
            return self.report(handle)
        return False  # its awaiters receive it (or report it if they all leave)

    def _raises(self, handle: Handle[Any]) -> bool:
        """Whether the task's failure goes to the block's group, not a report."""
        if self.mode is OnErrorMode.RAISE:
            return True
        annex = handle.annex_
        return annex is not None and annex.fatal

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
            self._raises(handle)
            or handle.delivered_ is not UNSEEN
            or handle.status_ is not FAILED
        ):
            return False
        handle.delivered_ = REPORTED
        exc = handle.value_
        assert isinstance(exc, Exception)  # FAILED: always an Exception
        callback = self._callback
        if callback is None:
            self._log_failure(handle, exc)
            return False
        try:
            returned = callback(handle, exc)
        except (KeyboardInterrupt, SystemExit) as base:
            self._log_failure(handle, exc)
            self.base_exception(base)
            return True
        except BaseException as callback_exc:  # a cancellation too: not ours to obey
            self._log_failure(handle, exc)
            logger.error(
                "The on_error callback of TaskRegistry %r raised while reporting "
                "task %r",
                self._registry,
                handle.name_,
                exc_info=callback_exc,
                extra={"tether_registry": self._registry, "tether_task": handle.name_},
            )
            return False
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
                extra={"tether_registry": self._registry, "tether_task": handle.name_},
            )
        return False

    def _fields(self, task: str | None = None) -> dict[str, object]:
        return {"tether_registry": self._registry, "tether_task": task}

    def _log_failure(self, handle: Handle[Any], exc: Exception, when: str = "") -> None:
        logger.error(
            "Task %r of TaskRegistry %r failed%s",
            handle.name_,
            self._registry,
            when,
            exc_info=exc,
            extra={"tether_registry": self._registry, "tether_task": handle.name_},
        )

    def outcome(
        self,
        exc: BaseException | None,
        original: BaseException | None,
        cancelled_exc: type[BaseException],
    ) -> bool:
        """Raise what leaves the ``async with``; return whether to swallow
        ``original`` (the body's exception)."""
        if self.base_exc is None and not self.failures:
            return plain_outcome(exc, original, cancelled_exc)
        if exc is not None and _fatal(exc, cancelled_exc):
            raise exc  # KeyboardInterrupt or SystemExit in the body
        if self.base_exc is not None:
            # A KeyboardInterrupt ends the block bare; the failures it would have
            # raised in a group are logged rather than lost.
            for failure in self.failures:
                logger.error(
                    "TaskRegistry %r: a failure was superseded by %s",
                    self._registry,
                    type(self.base_exc).__name__,
                    exc_info=failure,
                    extra=self._fields(),
                )
            if not self.base_handed_over:
                raise self.base_exc
        elif self.failures:
            # A copy: a group once raised never changes, whatever comes later.
            raise ExceptionGroup(
                f"unhandled errors in TaskRegistry {self._registry!r}",
                list(self.failures),
            )
        return plain_outcome(exc, original, cancelled_exc)  # no failure to raise


def plain_outcome(
    exc: BaseException | None,
    original: BaseException | None,
    cancelled_exc: type[BaseException],
) -> bool:
    """:meth:`ErrorPolicy.outcome` with no failure and nothing that ended
    everything: also the outcome of a registry that never needed its policy."""
    if exc is None:
        return original is not None
    if exc is original and not _fatal(exc, cancelled_exc):
        return False
    raise exc  # another exception, or a KeyboardInterrupt or SystemExit in the body


def _fatal(exc: BaseException, cancelled_exc: type[BaseException]) -> bool:
    """Whether ``exc`` is a ``KeyboardInterrupt``-like exception: neither an
    ``Exception`` nor a cancellation."""
    return not isinstance(exc, Exception) and not isinstance(exc, cancelled_exc)


def _leaves(excs: Iterable[BaseException]) -> Iterable[BaseException]:
    for exc in excs:
        if isinstance(exc, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", exc)
            yield from _leaves(group.exceptions)
        else:
            yield exc
