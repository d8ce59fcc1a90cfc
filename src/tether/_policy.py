"""A registry's error policy: what a failing task does, and what leaves the block.

:class:`ErrorPolicy` owns ``on_error`` and everything that follows from it: the
failures collected in raise mode, the one ``BaseException`` that ends everything,
reporting a failure nobody received (once, to the log or the callback), the record
of what shutdown cancelled, and the exception the ``async with`` finally raises.
"""

from __future__ import annotations

import enum
import functools
import importlib.util
import logging
import math
import os
import sys
import sysconfig
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from ._calls import describe, is_async_callable
from ._handle import FAILED, REPORTED, UNSEEN, Handle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

__all__ = ["ErrorPolicy", "Mode", "OnError", "grouped", "logger", "suspended_at"]

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
        # Counted, not listed: a shutdown may cancel a hundred thousand tasks.
        # Made at the first task cancelled at shutdown: most registries have none.
        self._shutdown_names: Counter[str] | None = None

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
        failure is then reported, as a failure nobody awaited is."""
        if self.mode is Mode.RAISE:
            if closed:
                handle._delivered = REPORTED
                self._log_failure(handle, exc, " after the registry had closed")
                return False
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
                handle._name,
                exc_info=callback_exc,
                extra={"tether_registry": self._registry, "tether_task": handle._name},
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
                extra={"tether_registry": self._registry, "tether_task": handle._name},
            )
        return False

    def _log_failure(self, handle: Handle[Any], exc: Exception, when: str = "") -> None:
        logger.error(
            "Task %r of TaskRegistry %r failed%s",
            handle._name,
            self._registry,
            when,
            exc_info=exc,
            extra={"tether_registry": self._registry, "tether_task": handle._name},
        )

    # -- shutdown ---------------------------------------------------------------------

    def _extra(self, task: str | None = None) -> dict[str, object]:
        return {"tether_registry": self._registry, "tether_task": task}

    def drain_started(self, handles: list[Handle[Any]], timeout: float | None) -> None:
        """One INFO record as draining starts with tasks still running."""
        if handles and logger.isEnabledFor(logging.INFO):
            logger.info(
                "TaskRegistry %r is draining %d task(s) (%s), %s",
                self._registry,
                len(handles),
                grouped(h._name for h in handles),
                "without a deadline"
                if timeout is None
                else "with no time left to drain: it cancels them at once"
                if timeout <= 0
                # Rounded up: "at most" stays true of a remainder (tether.aiohttp).
                else f"for at most {math.ceil(timeout * 100) / 100:g} s before "
                "it cancels them",
                extra=self._extra(),
            )

    def still_waiting(
        self, phase: str, waited: float, handles: list[tuple[Handle[Any], object]]
    ) -> None:
        """The WARNING repeated while a drain or a cancellation takes long, naming
        where each task waits in the application's own code; the full await
        chain of each at DEBUG. ``handles`` pairs each task with its coroutine."""
        logger.warning(
            "TaskRegistry %r has been %s for %.0f s; still running: %s",
            self._registry,
            phase,
            waited,
            "; ".join(
                f"{h._name} (suspended at {suspended_at(c)})" for h, c in handles
            ),
            extra=self._extra(),
        )
        if logger.isEnabledFor(logging.DEBUG):
            for handle, coro in handles:
                logger.debug(
                    "TaskRegistry %r: task %r is suspended at %s",
                    self._registry,
                    handle._name,
                    " > ".join(_frames(coro)) or "not started",
                    extra=self._extra(handle._name),
                )

    def cancelled_at_shutdown(
        self, running: list[Handle[Any]], queued: list[Handle[Any]]
    ) -> None:
        """Record the tasks that shutdown cancels, for the WARNING at the end (and
        one DEBUG record each, when DEBUG is on)."""
        if not running and not queued:
            return
        self._shutdown_count += len(running) + len(queued)
        if self._shutdown_names is None:
            self._shutdown_names = Counter()
        self._shutdown_names.update(
            [
                h._name if h._spawned_at is None else f"{h._name} ({h._spawned_at})"
                for h in running + queued
            ]
        )
        if logger.isEnabledFor(logging.DEBUG):
            for handle in running + queued:
                logger.debug(
                    "TaskRegistry %r cancels task %r at shutdown (%s)",
                    self._registry,
                    handle._name,
                    handle._status.name,
                    extra=self._extra(handle._name),
                )

    def log_shutdown(self) -> None:
        """One WARNING naming what shutdown cancelled, if anything, grouped."""
        count = self._shutdown_count
        if count and self._shutdown_names is not None:
            logger.warning(
                "TaskRegistry %r cancelled %d task(s) at shutdown: %s",
                self._registry,
                count,
                grouped(self._shutdown_names, most=_SHUTDOWN_NAMES),
                extra=self._extra(),
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
            # A KeyboardInterrupt ends the block bare; the failures it would have
            # raised in a group are logged rather than lost.
            for failure in self.failures:
                logger.error(
                    "TaskRegistry %r: a failure was superseded by %s",
                    self._registry,
                    type(self.base_exc).__name__,
                    exc_info=failure,
                    extra=self._extra(),
                )
            raise self.base_exc
        if self.failures:
            # A copy: a group once raised never changes, whatever comes later.
            raise ExceptionGroup(
                f"unhandled errors in TaskRegistry {self._registry!r}",
                list(self.failures),
            )
        if exc is None:
            return original is not None
        if exc is original:
            return False
        raise exc


def _leaves(excs: Iterable[BaseException]) -> Iterable[BaseException]:
    for exc in excs:
        if isinstance(exc, BaseExceptionGroup):
            group = cast("BaseExceptionGroup[BaseException]", exc)
            yield from _leaves(group.exceptions)
        else:
            yield exc


def grouped(names: Iterable[str], most: int = _SHUTDOWN_NAMES) -> str:
    """``"send_email x8, flush"``: names with their counts, most common first, at
    most ``most`` of them (``names`` may be a ``Counter`` already)."""
    counts = names if isinstance(names, Counter) else Counter(names)
    shown = [name if n == 1 else f"{name} x{n}" for name, n in counts.most_common(most)]
    rest = len(counts) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def suspended_at(coro: object) -> str:
    """Where a coroutine is suspended, as ``"function (file:line)"``: the innermost
    frame of its await chain that is the application's own, not the standard
    library's (asyncio's), anyio's, trio's, tether's nor an installed package's
    (under site-packages: an HTTP client's internals); failing that, the innermost
    that is not the standard library's, anyio's, trio's or tether's (an
    application installed in site-packages); the innermost frame when none is;
    ``"not started"`` before its first step."""
    frames = (
        _frames(coro, skip=_is_installed)
        or _frames(coro, skip=_is_library)
        or _frames(coro)
    )
    return frames[-1] if frames else "not started"


def _frames(coro: object, *, skip: Callable[[str], bool] | None = None) -> list[str]:
    """The await chain of ``coro``, outermost first, less the frames whose file
    ``skip`` is true of."""
    frames: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            if skip is None or not skip(code.co_filename):
                name = getattr(code, "co_qualname", code.co_name)  # 3.10: no qualname
                frames.append(f"{name} ({code.co_filename}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _package_dir(name: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # pragma: no cover - a broken install
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "")


@functools.cache
def _library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The folders whose code is not the application's, and the folders of
    installed packages inside them that are (site-packages under the stdlib)."""
    paths = sysconfig.get_paths()
    libraries = [os.path.join(paths[key], "") for key in ("stdlib", "platstdlib")]
    for package in ("anyio", "trio", "sniffio", "outcome", "tether"):
        folder = _package_dir(package)
        if folder is not None:
            libraries.append(folder)
    installed = [os.path.join(paths[key], "") for key in ("purelib", "platlib")]
    return tuple(libraries), tuple(installed)


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return True
    libraries, installed = _library_dirs()
    if not filename.startswith(libraries):
        return False
    # Under the stdlib's folder, site-packages holds installed packages: only
    # the ones named above are libraries.
    named = libraries[2:]
    return not filename.startswith(installed) or filename.startswith(named)


def _is_installed(filename: str) -> bool:
    """A library's, or an installed package's (under site-packages)."""
    return _is_library(filename) or filename.startswith(_library_dirs()[1])
