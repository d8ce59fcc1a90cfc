"""The default registry: where :func:`tether.spawn` puts a task when no registry is
bound (library code, a protocol or loop callback, a framework that owns the loop).

There is one per event loop run (keyed as anyio's ``RunVar`` is, by the asyncio
loop or the trio run). The first spawn that finds no bound registry opens it. While
it holds tasks it does what ``asyncio.create_task`` does not: it holds each task
strongly until the task ends, reports a failure nobody awaited on logger
``"tether"`` with the task's name, shows in :func:`tether.dump`, and when the event
loop's run ends with tasks still in it (``asyncio.run``, ``anyio.run``,
``uvloop.run`` and ``trio.run`` cancel every task left) it names them in one
WARNING. Once it holds no task the run lets go of it, so that it never keeps a
finished loop alive; its thread keeps it for the next spawn of the run (see
:class:`_Holder`). It never drains and has no limit: that is what a bound registry
is for.

A program that wants every spawn to find a bound registry, as before 0.3, says so
with :func:`require_registry` or the environment variable
``TETHER_REQUIRE_REGISTRY=1``.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakSet

from ._log import logger
from ._registry import TaskRegistry, open_registries
from ._shutdown_log import grouped

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from ._handle import Handle

__all__ = [
    "DEFAULT_NAME",
    "RequireRegistry",
    "default_registry",
    "let_go_if_idle",
    "live_default_tasks",
    "quiet",
    "registry_required",
    "require_registry",
    "running_library",
    "running_loop",
]

T = TypeVar("T")

#: The name of every default registry, in log records and in ``tether.dump()``.
DEFAULT_NAME = "default"

#: The environment variable that turns the default registry off.
REQUIRE_ENV = "TETHER_REQUIRE_REGISTRY"

#: Default registries record spawn sites in Python's development mode and under
#: asyncio's debug variable, read once as asyncio reads it.
_DEBUG = sys.flags.dev_mode or bool(os.environ.get("PYTHONASYNCIODEBUG"))

#: Set by require_registry(); None: the environment variable decides.
_required: bool | None = None


class _Holder:
    """What the run variable holds: the run's default registry, strongly while it
    has tasks, weakly while it is idle.

    The run variable lives as long as the event loop, and a registry refers to its
    loop, so holding an idle registry there would keep a finished loop alive. An
    idle registry is kept instead by its thread's spare slot (:data:`_spare`),
    which the next registry to go idle in that thread replaces: a spawn after an
    idle spell reuses it (opening a registry costs more than a spawn), and at most
    one finished loop per thread waits for that replacement to be freed.
    """

    __slots__ = ("idle", "registry")

    def __init__(self) -> None:
        self.registry: DefaultRegistry | None = None
        self.idle: weakref.ref[DefaultRegistry] | None = None


class _Spare(threading.local):
    registry: DefaultRegistry | None = None


#: Per thread, the idle default registry kept for reuse.
_spare = _Spare()

#: Each run's holder, keyed as anyio's ``RunVar`` keys its values: by the asyncio
#: loop, or by the trio run's token. Looked up here rather than through a RunVar
#: because anyio finds the running loop through sniffio, which costs more than the
#: rest of a spawn and, on asyncio, sees no loop in a loop callback.
_holders: weakref.WeakKeyDictionary[object, _Holder] = weakref.WeakKeyDictionary()


class DefaultRegistry(TaskRegistry):
    """A registry that no program opened: the default of one event loop run."""

    __slots__ = ("_holder", "_quiet")

    def __init__(self, holder: _Holder, *, debug: bool) -> None:
        # ambient=False: its tasks do not see it as bound, so current_registry()
        # still raises in them and their own spawns come back here by default.
        super().__init__(name=DEFAULT_NAME, ambient=False, debug=debug)
        self._holder = holder
        # Tasks spawned with daemon=True: not named when the run ends with them.
        self._quiet: WeakSet[Handle[Any]] = WeakSet()

    def notify_if_idle_(self) -> None:
        super().notify_if_idle_()
        holder = self._holder
        if not self._live and holder.registry is self:
            # Nothing to hold: the loop must be free to end and be freed. Kept
            # for reuse by the thread's spare slot only.
            holder.registry = None
            holder.idle = weakref.ref(self)
            _spare.registry = self
            open_registries.discard(self)

    def open_for_run(self) -> None:
        """Open it now, for the run (opened by no task: a root in ``dump()``)."""
        self._open_now()
        self._opener = None  # the run's, not the spawning task's

    def keep_quiet(self, handle: Handle[Any]) -> None:
        """Leave ``handle``'s task unnamed if the run ends with it (a daemon)."""
        self._quiet.add(handle)

    def live_tasks(self) -> list[tuple[Handle[Any], object]]:
        """The live handles, each with its backend task."""
        return list(self._live.items())

    def _left_open_at_loop_end(self, handle: Handle[Any]) -> None:
        # The runner ending the loop cancels every task left, at once: the first
        # of ours to see it names the others, once.
        if self._warned:
            return
        self._warned = True
        quiet = self._quiet
        # The handle may or may not still be among the live ones: count it once.
        left = [h for h in dict.fromkeys((handle, *self._live)) if h not in quiet]
        if left:
            logger.warning(
                "The event loop's run ended with %d task(s) still running in "
                "tether's default registry (spawned where no TaskRegistry was "
                "bound): %s. They were cancelled. A TaskRegistry around the "
                "program would have let them finish (a drain) before the end",
                len(left),
                grouped(
                    h.name_ if h.spawned_at is None else f"{h.name_} ({h.spawned_at})"
                    for h in left
                ),
                extra={"tether_registry": DEFAULT_NAME, "tether_task": None},
            )

    def __del__(self) -> None:
        # Nobody opened it, so nobody is warned to close it: its tasks' end is
        # reported at the end of the run instead. It leaves the open registries,
        # whose entries are keyed by id (another registry's next).
        open_registries.discard(self)


def running_library() -> str | None:
    """``"asyncio"`` or ``"trio"``: the event loop running in this thread, if any."""
    running = running_loop()
    return None if running is None else running[0]


def running_loop() -> tuple[str, object] | None:
    """The event loop running in this thread, as ``("asyncio", loop)`` or
    ``("trio", token)``, or ``None``.

    Asked of the loops themselves: anyio asks sniffio, which on asyncio knows the
    loop only inside a task, not in a loop callback such as ``call_soon``'s or a
    Protocol's ``data_received``.
    """
    if "trio" in sys.modules:
        import trio

        if trio.lowlevel.in_trio_run():
            return "trio", trio.lowlevel.current_trio_token()
    if "asyncio" in sys.modules:
        import asyncio

        try:
            return "asyncio", asyncio.get_running_loop()
        except RuntimeError:
            return None
    return None


def registry_required() -> bool:
    """Whether a spawn with no registry bound must fail (the strict mode)."""
    if _required is not None:
        return _required
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def default_registry(running: tuple[str, object]) -> TaskRegistry:
    """The default registry of the running event loop's run, opened if needed.

    ``running`` is what :func:`running_loop` returned (not ``None``).
    """
    holder = _holders.get(running[1])
    if holder is None:
        holder = _holders[running[1]] = _Holder()
    registry = holder.registry
    if registry is not None:
        return registry  # the common case: the run's registry holds tasks
    registry = None if holder.idle is None else holder.idle()
    if registry is None:  # the run's first, or its idle one was let go
        registry = _seen_by_anyio(running[0], lambda: _open(holder))
    open_registries.add(registry)
    holder.registry = registry
    holder.idle = None
    return registry


def _open(holder: _Holder) -> DefaultRegistry:
    _spare.registry = None  # another run's: free its loop now
    registry = DefaultRegistry(holder, debug=_DEBUG)
    registry.open_for_run()
    return registry


def quiet(registry: TaskRegistry, handle: Handle[Any]) -> None:
    """A daemon task of the default registry: not named when the run ends."""
    if isinstance(registry, DefaultRegistry):
        registry.keep_quiet(handle)


def let_go_if_idle(registry: TaskRegistry) -> None:
    """A spawn into the default registry was refused: if it holds nothing, it
    must not stay (it would keep its event loop alive)."""
    if isinstance(registry, DefaultRegistry):
        registry.notify_if_idle_()


def _seen_by_anyio(library: str, fn: Callable[[], T]) -> T:
    """``fn()``, where anyio can see the running event loop.

    anyio finds the running loop through sniffio when sniffio is installed, and
    sniffio finds asyncio only inside a task. In a loop callback it is told, in a
    copy of the context, so that nothing of it leaks to the caller.
    """
    try:
        import sniffio
    except ImportError:  # pragma: no cover - anyio then asks asyncio itself
        return fn()
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return copy_context().run(
            _told, sniffio.current_async_library_cvar, library, fn
        )
    return fn()


def _told(
    cvar: Any,  # sniffio's ContextVar[str | None]
    library: str,
    fn: Callable[[], T],
) -> T:
    cvar.set(library)
    return fn()


def live_default_tasks() -> list[tuple[Handle[Any], object]]:
    """The live tasks of the running loop's default registry, with the backend
    task of each (for the pytest plugin's leak check); empty outside a loop."""
    running = running_loop()
    holder = None if running is None else _holders.get(running[1])
    registry = None if holder is None else holder.registry
    return [] if registry is None else registry.live_tasks()


class RequireRegistry:
    """The setting made by :func:`tether.require_registry`; ``undo()`` or the end of
    its ``with`` block puts back the one before.

    .. versionadded:: 0.3
    """

    __slots__ = ("_before", "_required")

    def __init__(self, required: bool, before: bool | None) -> None:
        self._required = required
        self._before = before

    def undo(self) -> None:
        """Put back the setting from before the call (idempotent)."""
        global _required
        _required = self._before

    def __enter__(self) -> RequireRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.undo()

    def __repr__(self) -> str:
        return f"<tether.require_registry({self._required})>"


def require_registry(required: bool = True) -> RequireRegistry:
    """Make :func:`tether.spawn` raise :exc:`~tether.NoRegistry` where no registry
    is bound, as it did before 0.3, instead of using the default registry.

    For a program that wants every task to belong to a registry it opened (so that
    every task is drained at shutdown): call it once at the start of ``main``. The
    setting is process-wide and wins over the environment variable
    ``TETHER_REQUIRE_REGISTRY`` (``1`` turns the strict mode on for a whole run
    with no code change, say in CI). ``require_registry(False)`` turns it off.

    Returns an object whose ``undo()``, or the end of a ``with`` block around the
    call, puts back the setting from before (for tests)::

        with tether.require_registry():
            ...  # tether.spawn(...) here raises NoRegistry unless one is bound

    Raises:
        TypeError: ``required`` is not ``True`` or ``False``.

    .. versionadded:: 0.3
    """
    global _required
    if not isinstance(required, bool):
        raise TypeError(
            f"require_registry(required={required!r}): required must be True "
            "(spawns need a bound registry) or False (they use the default one)"
        )
    before, _required = _required, required
    return RequireRegistry(required, before)
