"""Ambient spawning: the registry bound in the current context.

The binding is a :class:`~contextvars.ContextVar`, so it follows the code: a task
runs in a copy of its spawner's context and finds the same registry, and a request
handler finds the one bound for it with ``registry.bind()``. Where none is bound,
:func:`spawn` uses the default registry of the running event loop's run
(:mod:`tether._default`), unless the program asked for the strict mode;
:func:`current_registry` never does: it answers only with a bound registry.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING, Any, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:  # pragma: no cover - typing_extensions costs import time where typing has them
    from typing_extensions import TypeVarTuple, Unpack

from ._calls import close_if_coroutine, refuse_keywords
from ._context import bound
from ._default import (
    REQUIRE_ENV,
    default_registry,
    let_go_if_idle,
    quiet,
    registry_required,
    running_loop,
)
from ._exceptions import NoRegistry
from ._registry import RegistryState, TaskRegistry, open_registries

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from ._handle import Handle
    from ._registry import Stop

__all__ = ["current_registry", "spawn"]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")

_NO_REGISTRY = """\
tether.{what}() found no TaskRegistry bound in this context.{why}

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

_WHY_CURRENT = """
(tether.spawn() works without one, in the default registry of the event loop's
run; current_registry() answers only with a registry that was bound.)"""

_WHY_STRICT = """
(Without one, tether.spawn() would use the default registry of the event loop's
run, but the program asked for a bound registry: {how}.)"""

_NO_LOOP = """\
tether.spawn() was called in thread {thread!r}, which runs no event loop{open}. \
tether.spawn() works only on an event loop's thread. From another thread, use \
registry.spawn_threadsafe(fn, *args) (it returns a concurrent.futures.Future of the \
handle), or anyio.from_thread.run_sync(tether.spawn, fn, *args) from a thread that \
anyio started"""


def current_registry() -> TaskRegistry:
    """Return the registry bound in the current context.

    Raises:
        NoRegistry: no registry is bound here; the message shows how to open or bind
            one.

    .. versionadded:: 0.1
    """
    registry = bound.get()[0]
    if not isinstance(registry, TaskRegistry):  # None: only registries are bound
        raise NoRegistry(_NO_REGISTRY.format(what="current_registry", why=_WHY_CURRENT))
    return registry


@overload
def spawn(
    fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
    /,
    *args: Unpack[PosArgsT],
    name: str | None = None,
    daemon: bool = False,
    stop: Stop | None = None,
    timeout: float | None = None,
) -> Handle[T]: ...
@overload
def spawn(
    coro: Coroutine[Any, Any, T],
    /,
    *,
    name: str | None = None,
    daemon: bool = False,
    stop: Stop | None = None,
    timeout: float | None = None,
) -> Handle[T]: ...
def spawn(
    fn: Any,
    /,
    *args: object,
    name: str | None = None,
    daemon: bool = False,
    stop: Stop | None = None,
    timeout: float | None = None,
    **kwargs: object,  # only to refuse them with a lesson
) -> Handle[Any]:
    """Spawn a task into the registry bound in the current context, or, where none
    is bound, into the default registry of the running event loop's run.

    The same as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>` on
    :func:`current_registry`: sync, never blocks, and the task first runs at the
    caller's next checkpoint. ``tether.spawn(coro)`` accepts a coroutine object, so
    ``asyncio.create_task(coro)`` becomes ``tether.spawn(coro)``.

    Where no registry is bound (library code, a loop callback, a Protocol's
    ``data_received``, a framework that owns the loop), the task goes to the
    default registry of the event loop's run: it is held until it ends, a failure
    nobody awaits is logged on logger ``"tether"`` with the task's name, it shows
    in :func:`tether.dump`, and if the run ends with it still running it is
    cancelled and named in a WARNING. The default registry never drains and has no
    limit: a bound registry is what gives a program a graceful shutdown.
    :func:`tether.require_registry` (or ``TETHER_REQUIRE_REGISTRY=1``) makes a
    spawn with no registry bound raise :exc:`~tether.NoRegistry` instead.

    Callbacks scheduled with ``loop.call_soon`` and signal handlers run in the
    context from when they were registered, so they see the registry bound then.

    Raises:
        NoRegistry: no registry is bound here and the program asked for one
            (:func:`tether.require_registry`); the message shows how to open one.
        RegistryClosed: the bound registry does not take work in its current state.
        RuntimeError: called in a thread that runs no event loop; the message names
            ``spawn_threadsafe``.

    .. versionadded:: 0.1
    .. versionchanged:: 0.3
       With no registry bound, spawns into the default registry of the event
       loop's run instead of raising :exc:`~tether.NoRegistry`. ``stop``, as for
       :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
    """
    registry = bound.get()[0]
    if not isinstance(registry, TaskRegistry):  # None: only registries are bound
        if kwargs:
            refuse_keywords(fn, kwargs, "spawn")
        registry = _unbound(fn)
        try:
            handle = registry.spawn(
                fn, *args, name=name, daemon=daemon, stop=stop, timeout=timeout
            )
        except BaseException:
            let_go_if_idle(registry)
            raise
        if daemon:
            quiet(registry, handle)
        return handle
    if kwargs:
        refuse_keywords(fn, kwargs, "spawn")
    return registry.spawn(
        fn, *args, name=name, daemon=daemon, stop=stop, timeout=timeout
    )


def _unbound(fn: object) -> TaskRegistry:
    """Where a spawn with no registry bound goes: the default registry, unless
    there is no event loop here or the program asked for a bound registry."""
    running = running_loop()
    if running is None:
        close_if_coroutine(fn)  # a coroutine given to us must not leak a warning
        raise RuntimeError(_no_loop_message())
    if registry_required():
        close_if_coroutine(fn)
        how = (
            "tether.require_registry() was called"
            if os.environ.get(REQUIRE_ENV) is None
            else f"tether.require_registry() or {REQUIRE_ENV}="
            f"{os.environ[REQUIRE_ENV]!r}"
        )
        raise NoRegistry(
            _NO_REGISTRY.format(what="spawn", why=_WHY_STRICT.format(how=how))
        )
    return default_registry(running)


def _no_loop_message() -> str:
    here = threading.get_ident()
    open_elsewhere = [
        r.name
        for r in list(open_registries)
        if r.thread_ != here and r.state is not RegistryState.NEW
    ]
    return _NO_LOOP.format(
        thread=threading.current_thread().name,
        open=""
        if not open_elsewhere
        else f" (TaskRegistry {open_elsewhere[0]!r} is open in its event loop's "
        "thread, but it is bound only there)",
    )
