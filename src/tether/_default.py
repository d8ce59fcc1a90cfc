"""The default registry: where :func:`tether.spawn` puts a task when no registry is
bound (library code, a protocol or loop callback, a framework that owns the loop).

There is one per event loop run, kept in an anyio ``RunVar``. The first spawn that
finds no bound registry opens it; it lets go of itself as soon as it holds no task,
so that it never keeps a finished event loop alive, and the next such spawn opens
another. While it holds tasks it does what ``asyncio.create_task`` does not: it
holds each task strongly until the task ends, reports a failure nobody awaited on
logger ``"tether"`` with the task's name, shows in :func:`tether.dump`, and when the
event loop's run ends with tasks still in it (``asyncio.run``, ``anyio.run``,
``uvloop.run`` and ``trio.run`` cancel every task left) it names them in one
WARNING. It never drains and has no limit: that is what a bound registry is for.

A program that wants every spawn to find a bound registry, as before 0.3, says so
with :func:`require_registry` or the environment variable
``TETHER_REQUIRE_REGISTRY=1``.
"""

from __future__ import annotations

import os
import sys
from contextvars import copy_context
from typing import TYPE_CHECKING, Any, TypeVar
from weakref import WeakSet

from anyio.lowlevel import RunVar

from ._policy import grouped, logger
from ._registry import TaskRegistry, _open_registries

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
]

T = TypeVar("T")

#: The name of every default registry, in log records and in ``tether.dump()``.
DEFAULT_NAME = "default"

#: The environment variable that turns the default registry off.
REQUIRE_ENV = "TETHER_REQUIRE_REGISTRY"

#: Set by require_registry(); None: the environment variable decides.
_required: bool | None = None


class _Holder:
    """What the run variable holds: the run's default registry while it has tasks.

    A holder rather than the registry itself: the run variable lives as long as
    the event loop, and a registry refers to its loop, so holding an idle registry
    there would keep a finished loop alive.
    """

    __slots__ = ("registry",)

    def __init__(self) -> None:
        self.registry: DefaultRegistry | None = None


_holders: RunVar[_Holder] = RunVar("tether.default_registry")


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

    def _notify_if_idle(self) -> None:
        super()._notify_if_idle()
        if not self._live and self._holder.registry is self:
            # Nothing to hold: let go, so the loop is free to end and be freed.
            self._holder.registry = None
            _open_registries.discard(self)

    def _left_open_at_loop_end(self, handle: Handle[Any]) -> None:
        # The runner ending the loop cancels every task left, at once: the first
        # of ours to see it names the others, once.
        if self._warned:
            return
        self._warned = True
        quiet = self._quiet
        left = [h for h in (handle, *self._live) if h not in quiet]
        if left:
            logger.warning(
                "The event loop's run ended with %d task(s) still running in "
                "tether's default registry (spawned where no TaskRegistry was "
                "bound): %s. They were cancelled. A TaskRegistry around the "
                "program would have let them finish (a drain) before the end",
                len(left),
                grouped(
                    h._name if h._spawned_at is None else f"{h._name} ({h._spawned_at})"
                    for h in left
                ),
                extra={"tether_registry": DEFAULT_NAME, "tether_task": None},
            )

    def __del__(self) -> None:
        # Nobody opened it, so nobody is warned to close it: its tasks' end is
        # reported at the end of the run instead.
        pass


def running_library() -> str | None:
    """``"asyncio"`` or ``"trio"``: the event loop running in this thread, if any.

    Asked of the loops themselves: anyio asks sniffio, which on asyncio knows the
    loop only inside a task, not in a loop callback such as ``call_soon``'s or a
    Protocol's ``data_received``.
    """
    if "trio" in sys.modules:
        import trio

        if trio.lowlevel.in_trio_run():
            return "trio"
    if "asyncio" in sys.modules:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        return "asyncio"
    return None


def registry_required() -> bool:
    """Whether a spawn with no registry bound must fail (the strict mode)."""
    if _required is not None:
        return _required
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def default_registry(library: str) -> TaskRegistry:
    """The default registry of the running event loop's run, opened if needed.

    ``library`` is what :func:`running_library` returned (not ``None``).
    """
    return _seen_by_anyio(library, _current_or_new)


def _current_or_new() -> DefaultRegistry:
    holder = _holders.get(None)
    if holder is None:
        holder = _Holder()
        _holders.set(holder)
    registry = holder.registry
    if registry is None:
        registry = DefaultRegistry(
            holder,
            debug=sys.flags.dev_mode or bool(os.environ.get("PYTHONASYNCIODEBUG")),
        )
        registry._open_now()
        registry._opener = None  # the run's, not the spawning task's: a root in dump()
        holder.registry = registry
    return registry


def quiet(registry: TaskRegistry, handle: Handle[Any]) -> None:
    """A daemon task of the default registry: not named when the run ends."""
    if isinstance(registry, DefaultRegistry):
        registry._quiet.add(handle)


def let_go_if_idle(registry: TaskRegistry) -> None:
    """A spawn into the default registry was refused: if it holds nothing, it
    must not stay (it would keep its event loop alive)."""
    if isinstance(registry, DefaultRegistry):
        registry._notify_if_idle()


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
    library = running_library()
    if library is None:
        return []

    def current() -> DefaultRegistry | None:
        holder = _holders.get(None)
        return None if holder is None else holder.registry

    registry = _seen_by_anyio(library, current)
    return [] if registry is None else list(registry._live.items())


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
