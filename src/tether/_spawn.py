"""Ambient spawning: the registry bound in the current context.

The binding is a :class:`~contextvars.ContextVar`, so it follows the code: a task
runs in a copy of its spawner's context and finds the same registry, and a request
handler finds the one bound for it with ``registry.bind()``. There is deliberately
no hidden global registry to fall back on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from typing_extensions import TypeVarTuple, Unpack

from ._calls import close_if_coroutine, refuse_keywords
from ._context import ambient
from ._exceptions import NoRegistry
from ._registry import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._handle import Handle

__all__ = ["current_registry", "spawn"]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")

_NO_REGISTRY = """\
tether.{what}() found no TaskRegistry bound in this context.

Open one around your program, which binds it for everything inside:

    async with tether.TaskRegistry(name="app"):
        ...  # tether.spawn(...) works here and in every task spawned from here

In a web app, let the integration open one for the app and bind it for every
request: app.add_middleware(tether.asgi.TaskRegistryMiddleware, shutdown_timeout=10)
for Starlette and FastAPI, tether.aiohttp.setup(app) for aiohttp. Or bind one
yourself around the code that spawns:

    with registry.bind():
        tether.spawn(send_email, user_id)
"""


def current_registry() -> TaskRegistry:
    """Return the registry bound in the current context.

    Raises:
        NoRegistry: no registry is bound here; the message shows how to open or bind
            one.

    .. versionadded:: 0.1
    """
    registry = ambient.get()
    if not isinstance(registry, TaskRegistry):  # None: only registries are bound
        raise NoRegistry(_NO_REGISTRY.format(what="current_registry"))
    return registry


@overload
def spawn(
    fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
    /,
    *args: Unpack[PosArgsT],
    name: str | None = None,
    daemon: bool = False,
    timeout: float | None = None,
) -> Handle[T]: ...
@overload
def spawn(
    coro: Coroutine[Any, Any, T],
    /,
    *,
    name: str | None = None,
    daemon: bool = False,
    timeout: float | None = None,
) -> Handle[T]: ...
def spawn(
    fn: Any,
    /,
    *args: object,
    name: str | None = None,
    daemon: bool = False,
    timeout: float | None = None,
    **kwargs: object,  # only to refuse them with a lesson
) -> Handle[Any]:
    """Spawn a task into the registry bound in the current context.

    The same as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>` on
    :func:`current_registry`: sync, never blocks, and the task first runs at the
    caller's next checkpoint. ``tether.spawn(coro)`` accepts a coroutine object, so
    ``asyncio.create_task(coro)`` becomes ``tether.spawn(coro)``.

    Callbacks scheduled with ``loop.call_soon`` and signal handlers run in the
    context from when they were registered, so they see the registry bound then.

    Raises:
        NoRegistry: no registry is bound here; the message shows how to open one.
        RegistryClosed: the bound registry does not take work in its current state.

    .. versionadded:: 0.1
    """
    registry = ambient.get()
    if not isinstance(registry, TaskRegistry):  # None: only registries are bound
        close_if_coroutine(fn)  # a coroutine given to us must not leak a warning
        raise NoRegistry(_NO_REGISTRY.format(what="spawn"))
    if kwargs:
        refuse_keywords(fn, kwargs, "spawn")
    return registry.spawn(fn, *args, name=name, daemon=daemon, timeout=timeout)
