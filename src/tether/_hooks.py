"""Hooks: what a registry tells an observer about each task's life.

A registry made with ``hooks=`` calls them at three moments: a task is spawned (in
the spawner's context), starts (in the task's own context, before its first step)
and ends (as it ends, before anyone awaiting it wakes up). Tracing, metrics and
structured logging build on these. A registry without hooks pays nothing for them
on its hot path: the calls ride on the rare path that timeouts and done-callbacks
already take (:class:`tether._handle.Annex`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._handle import Handle

__all__ = ["Hooks", "check_hooks"]

_MOMENTS = ("spawned", "started", "ended")


class Hooks:
    """The observer of a registry's tasks: subclass it and override what you need.

    Give an instance to ``TaskRegistry(hooks=...)``. Each method is called with the
    task's :class:`~tether.Handle`, synchronously; it must be quick and must not
    block. An exception it raises is logged on logger ``"tether"`` and changes
    nothing else; a ``KeyboardInterrupt`` or ``SystemExit`` cancels every task and
    is re-raised bare from the block, as from a task. Any object with some of
    these methods works as well; subclassing only makes the names checkable.

    .. versionadded:: 0.2
    """

    def spawned(self, handle: Handle[Any], /) -> None:
        """The task was spawned: called in the spawner's context, once the handle is
        made (the task may be ``QUEUED`` or ``RUNNING``, and has not run yet)."""

    def started(self, handle: Handle[Any], /) -> None:
        """The task starts: called in the task's own context, before its first
        step. Not called for a task cancelled before it started."""

    def ended(self, handle: Handle[Any], /) -> None:
        """The task ended; its outcome is on the handle (``status``,
        ``exception()``). Called once for every task spawned, started or not,
        before its done-callbacks and its awaiters: in the task's context, or for
        a task dropped before it started, in the context of whoever dropped it."""


def check_hooks(hooks: object) -> None:
    """Refuse a ``hooks`` object the registry could not call, naming the fix."""
    from ._calls import describe, is_async_callable

    found = False
    for moment in _MOMENTS:
        method = getattr(hooks, moment, None)
        if method is None:
            continue
        if not callable(method):
            raise TypeError(
                f"TaskRegistry(hooks={describe(hooks)}): hooks.{moment} must be a "
                f"method taking the handle, got {type(method).__name__}"
            )
        if is_async_callable(method):
            raise TypeError(
                f"TaskRegistry(hooks={describe(hooks)}): hooks.{moment} is called "
                "synchronously, so it must be a plain `def`, not an `async def`. "
                "To do async work, spawn it from the hook"
            )
        found = True
    if not found:
        raise TypeError(
            f"TaskRegistry(hooks={describe(hooks)}): hooks needs at least one of the "
            "methods spawned(handle), started(handle), ended(handle); subclass "
            "tether.Hooks and override the ones you need"
        )
