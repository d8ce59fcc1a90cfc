"""A registry in the shape of a nursery, for libraries that take one.

trio's ``serve_tcp``/``serve_listeners`` take a ``handler_nursery=`` and call only
its ``start_soon`` (libraries built on them, such as trio-websocket's
``serve_websocket``, pass it on; some libraries call ``start`` too).
:func:`as_nursery` gives them a registry's spawn behind those two names, so each
connection's handler becomes a registry task, with the registry's ``on_error``,
limits, hooks and shutdown.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, cast, final

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVarTuple, Unpack

from ._calls import name_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._registry import TaskRegistry

__all__ = ["RegistryNursery", "as_nursery"]

PosArgsT = TypeVarTuple("PosArgsT")


def as_nursery(registry: TaskRegistry) -> RegistryNursery:
    """Return an object with a nursery's ``start_soon`` and ``start`` that spawn
    into ``registry``: pass it where a library takes a nursery.

    ::

        async with tether.TaskRegistry(name="connections") as tasks:
            nursery = tether.as_nursery(tasks)
            await trio.serve_tcp(handler, 8000, handler_nursery=nursery)

    The object holds nothing but the registry: make it where it is needed. What
    it starts is an ordinary registry task, so the registry's rules apply, not a
    nursery's: a failing handler goes to ``on_error`` (logged, by default) instead
    of cancelling its siblings and the server; the tasks do not inherit the
    deadlines of the code that calls ``start_soon``; they are waited for (or
    cancelled) when the registry closes.

    Args:
        registry: the registry to spawn into; it may be opened later, but must be
            open when ``start_soon`` or ``start`` is called.

    Raises:
        TypeError: ``registry`` is not a :class:`~tether.TaskRegistry`.

    .. versionadded:: 0.3
    """
    from ._registry import TaskRegistry

    if not isinstance(registry, TaskRegistry):
        raise TypeError(
            f"as_nursery(registry={registry!r}): pass a tether.TaskRegistry, as in "
            "tether.as_nursery(tasks) inside `async with tether.TaskRegistry() as "
            "tasks:`"
        )
    return RegistryNursery(registry)


@final
class RegistryNursery:
    """A :class:`~tether.TaskRegistry` behind a nursery's ``start_soon`` and
    ``start`` (see :func:`tether.as_nursery`, which makes it).

    .. versionadded:: 0.3
    """

    __slots__ = ("_registry",)

    def __init__(self, registry: TaskRegistry) -> None:
        self._registry = registry

    @property
    def registry(self) -> TaskRegistry:
        """The registry its tasks are spawned into."""
        return self._registry

    def start_soon(
        self,
        async_fn: Callable[[Unpack[PosArgsT]], Awaitable[object]],
        *args: Unpack[PosArgsT],
        name: object = None,
    ) -> None:
        """Spawn ``async_fn(*args)`` into the registry, as ``nursery.start_soon``
        does into a nursery. Sync; never blocks; the handle is not returned (a
        nursery returns nothing), so a failure goes to the registry's
        ``on_error``.

        Args:
            async_fn: an async function.
            *args: its positional arguments.
            name: the task's name (trio accepts any object: a string is used as
                it is, anything else by its ``__qualname__``); default
                ``async_fn.__qualname__``.

        Raises:
            TypeError: as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
            RegistryClosed: the registry does not take work.
            RegistryFull: as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
        """
        # A nursery takes any callable returning an awaitable; spawn checks it.
        spawn = cast("Callable[..., object]", self._registry.spawn)
        spawn(async_fn, *args, name=_name(name))

    async def start(
        self,
        async_fn: Callable[..., Awaitable[object]],
        *args: object,
        name: object = None,
    ) -> Any:
        """Spawn ``async_fn(*args, task_status=...)`` into the registry and wait
        until it calls ``task_status.started(value)``; return ``value``, as
        ``nursery.start`` does. A checkpoint.

        Typed as trio's ``Nursery.start`` (the value is ``Any``); for the value's
        own type, call :meth:`TaskRegistry.start <tether.TaskRegistry.start>`.

        Raises:
            Exception: the task's own failure, if it fails before it is ready.
            RuntimeError: the task returned before it called ``started()``.
            TaskCancelled: the task was cancelled before it was ready.
            TypeError: as :meth:`TaskRegistry.start <tether.TaskRegistry.start>`.
            RegistryClosed: the registry does not take work.
        """
        start = cast("Callable[..., Awaitable[Any]]", self._registry.start)
        return await start(async_fn, *args, name=_name(name))

    def __repr__(self) -> str:
        return f"<tether.RegistryNursery of {self._registry!r}>"


def _name(name: object) -> str | None:
    if name is None or isinstance(name, str):
        return name
    return name_of(name)
