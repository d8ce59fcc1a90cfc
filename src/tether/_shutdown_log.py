"""What a registry says while it closes, or when it was left open.

The registry decides; this module speaks. :class:`ShutdownLog` is one registry's
voice at shutdown: the INFO record as the drain starts, the WARNING repeated while
a drain or a cancellation takes long (where each task waits, through the one await
chain walker of :mod:`tether._dump`), and the WARNING at the end naming what
shutdown cancelled. :func:`warn_left_open` is the ``ResourceWarning`` of a registry
nobody closed. Every record goes to the one logger of :mod:`tether._log`.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._dump import frames, suspended_at
from ._log import DEBUG, INFO, logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._handle import Handle

__all__ = ["STILL_WAITING_EVERY", "ShutdownLog", "grouped", "warn_left_open"]

#: While a drain or a cancellation waits, a WARNING this often (seconds).
STILL_WAITING_EVERY = 5.0

#: How many task names the shutdown WARNING lists.
_SHUTDOWN_NAMES = 20

#: A handle's name, read without a call per handle.
_NAME = attrgetter("name_")


class ShutdownLog:
    """What one registry says while it closes: the records, and the count of the
    tasks shutdown cancelled, kept for the WARNING at the end."""

    __slots__ = ("_count", "_names", "_registry")

    def __init__(self, registry: str) -> None:
        self._registry = registry
        self._count = 0
        # Counted, not listed: a shutdown may cancel a hundred thousand tasks.
        # Made at the first task cancelled at shutdown: most registries have none.
        self._names: Counter[str] | None = None

    def _fields(self, task: str | None = None) -> dict[str, object]:
        return {"tether_registry": self._registry, "tether_task": task}

    def drain_started(self, handles: list[Handle[Any]], timeout: float | None) -> None:
        """One INFO record as draining starts with tasks still running."""
        if handles and logger.isEnabledFor(INFO):
            logger.info(
                "TaskRegistry %r is draining %d task(s) (%s), %s",
                self._registry,
                len(handles),
                grouped(h.name for h in handles),
                "without a deadline"
                if timeout is None
                else "with no time left to drain: it cancels them at once"
                if timeout <= 0
                # Rounded up: "at most" stays true of a remainder (tether.aiohttp).
                else f"for at most {math.ceil(timeout * 100) / 100:g} s before "
                "it cancels them",
                extra=self._fields(),
            )

    def dropped(self, state: str, task: str, pool: str | None = None) -> None:
        """One DEBUG record for work ``try_spawn`` dropped: the registry was
        closing or closed (``state``); ``pool``: the name of the pool it was
        offered to."""
        logger.debug(
            "TaskRegistry %r is %s: try_spawn()%s dropped task %r",
            self._registry,
            state,
            "" if pool is None else f" of pool {pool!r}",
            task,
            extra=self._fields(task),
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
            "; ".join(f"{h.name} (suspended at {suspended_at(c)})" for h, c in handles),
            extra=self._fields(),
        )
        if logger.isEnabledFor(DEBUG):
            for handle, coro in handles:
                logger.debug(
                    "TaskRegistry %r: task %r is suspended at %s",
                    self._registry,
                    handle.name,
                    " > ".join(frames(coro)) or "not started",
                    extra=self._fields(handle.name),
                )

    def cancelled(
        self, running: list[Handle[Any]], queued: list[Handle[Any]], *, sites: bool
    ) -> None:
        """Record the tasks that shutdown cancels, for the WARNING at the end (and
        one DEBUG record each, when DEBUG is on). ``sites``: the registry records
        where its tasks were spawned (``debug=True``), which the WARNING shows."""
        if not running and not queued:
            return
        self._count += len(running) + len(queued)
        names = self._names
        if names is None:
            names = self._names = Counter()
        for handles in (running, queued):
            if sites:
                _add(
                    names,
                    [
                        h.name if h.spawned_at is None else f"{h.name} ({h.spawned_at})"
                        for h in handles
                    ],
                )
            else:  # without a call per task
                _add(names, list(map(_NAME, handles)))
        if logger.isEnabledFor(DEBUG):
            for handles, status in ((running, "RUNNING"), (queued, "QUEUED")):
                for handle in handles:
                    logger.debug(
                        "TaskRegistry %r cancels task %r at shutdown (%s)",
                        self._registry,
                        handle.name,
                        status,
                        extra=self._fields(handle.name),
                    )

    def closed(self) -> None:
        """One WARNING naming what shutdown cancelled, if anything, grouped."""
        if self._count and self._names is not None:
            logger.warning(
                "TaskRegistry %r cancelled %d task(s) at shutdown: %s",
                self._registry,
                self._count,
                grouped(self._names, most=_SHUTDOWN_NAMES),
                extra=self._fields(),
            )

    def left_open_at_loop_end(self, live: Iterable[str], task: str) -> None:
        """The registry was still open when its event loop ended, which cancelled
        ``task`` and the rest: the ``ResourceWarning``, or, where warnings are
        errors, an ERROR record (never raised from a task)."""
        try:
            warn_left_open(
                self._registry,
                "was still open when its event loop ended (it cancelled task "
                f"{task!r} and the rest; queued tasks never start)",
                live,
            )
        except Warning as raised:
            logger.error(
                "%s",
                str(raised),  # not the warning: its traceback would keep us alive
                extra=self._fields(task),
            )


def _add(counts: Counter[str], names: list[str]) -> None:
    """Count ``names`` into ``counts``. A shutdown's tasks mostly share a few
    names: each is counted by ``list.count()``, a loop in C, where a ``Counter``
    makes a new integer for every task; many distinct names are counted one by
    one. Names with the same count keep the order they first appeared in (the
    WARNING lists them so)."""
    distinct = dict.fromkeys(names)  # in order of first appearance, as a Counter
    if len(distinct) <= _FEW_NAMES:
        for name in distinct:
            counts[name] += names.count(name)
    else:
        counts.update(names)


#: Up to how many distinct names :func:`_add` counts with ``list.count()``.
_FEW_NAMES = 8


def warn_left_open(registry: str, what: str, live: Iterable[str]) -> None:
    """The ``ResourceWarning`` of a registry left open, shown at the caller:
    ``what`` happened to it, with the names of its live tasks (running and
    queued), and how to close it."""
    names = grouped(live)
    warnings.warn(
        f"TaskRegistry {registry!r} {what}"
        + (f", with tasks {names}" if names else "")
        + ": close it with `await registry.aclose()`, or use `async with`",
        ResourceWarning,
        stacklevel=2,
    )


def grouped(names: Iterable[str], most: int = _SHUTDOWN_NAMES) -> str:
    """``"send_email x8, flush"``: names with their counts, most common first, at
    most ``most`` of them (``names`` may be a ``Counter`` already)."""
    counts = names if isinstance(names, Counter) else Counter(names)
    shown = [name if n == 1 else f"{name} x{n}" for name, n in counts.most_common(most)]
    rest = len(counts) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")
