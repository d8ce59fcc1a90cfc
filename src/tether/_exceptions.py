"""Every exception tether raises, noun-named, under one base class.

Where anyio has an exception of the same meaning, ours subclasses it too, so code
written against anyio's task handles keeps catching what it caught before.
"""

from __future__ import annotations

import anyio

__all__ = [
    "NoRegistry",
    "RegistryClosed",
    "RegistryFull",
    "TaskCancelled",
    "TaskNotFinished",
    "TetherError",
]


class TetherError(Exception):
    """Base class of every exception defined by tether.

    .. versionadded:: 0.1
    """


class RegistryClosed(TetherError):
    """A :class:`~tether.TaskRegistry` refused work because of its state.

    Raised by a spawn before the registry is entered, after it has started to close
    (except follow-up work from its own tasks while it drains), or on re-entry. The
    message names the registry and its state.

    .. versionadded:: 0.1
    """


class RegistryFull(TetherError):
    """A spawn found every slot busy and the queue at ``max_pending``.

    The coroutine given to the spawn has been closed, so nothing leaks. Use
    :meth:`~tether.TaskRegistry.spawn_when_free` to wait for room instead.

    .. versionadded:: 0.1
    """


class NoRegistry(TetherError):
    """:func:`tether.spawn` was called with no registry bound in the current context.

    .. versionadded:: 0.1
    """


class TaskCancelled(TetherError, anyio.TaskCancelled):
    """The task behind a handle was cancelled before it produced a result.

    Raised by awaiting the handle, :meth:`~tether.Handle.result` and
    :meth:`~tether.Handle.exception`. It is never the backend's own cancellation
    exception, which must not cross from one task into another.

    Also an :class:`anyio.TaskCancelled`, and so an :class:`anyio.TaskFailed`.

    .. versionadded:: 0.1
    """


class TaskNotFinished(TetherError, anyio.TaskNotFinished):
    """:meth:`~tether.Handle.result` or :meth:`~tether.Handle.exception` was called
    before the task ended.

    Also an :class:`anyio.TaskNotFinished`.

    .. versionadded:: 0.1
    """


# Shown as tether.NoRegistry in tracebacks, where users import them from.
for _exception in (
    NoRegistry,
    RegistryClosed,
    RegistryFull,
    TaskCancelled,
    TaskNotFinished,
    TetherError,
):
    _exception.__module__ = "tether"
