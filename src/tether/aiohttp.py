"""A task registry for aiohttp applications.

``setup(app)`` gives the application one registry for its lifetime (opened first
thing at startup, closed by ``app.cleanup_ctx``) and a middleware that binds it for
every request,
so handlers can call :func:`tether.spawn` and :func:`tether.current_registry`.
The same convention as ``aiohttp_session.setup(app, storage)``.

aiohttp stops in this order (``AppRunner.cleanup()``): it stops listening, calls
``on_shutdown``, waits for the open handlers for at most the runner's
``shutdown_timeout`` (60 s in ``web.run_app``), then runs ``on_cleanup`` and the
cleanup contexts. The registry drains in its cleanup context; its deadline
counts from there by default, or from ``on_shutdown`` with
``drain="on-shutdown"``, so that the wait for handlers and the drain overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Any, Literal

import anyio
from aiohttp import web

from ._checks import check_choice
from ._context import Bound, bound
from ._exceptions import NoRegistry
from ._registry import TaskRegistry
from ._web import (
    AppRegistry,
    StopServer,
    announce,
    close_by,
    registry_options,
    stopper,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextvars import Token

    from aiohttp.typedefs import Handler

    from ._hooks import Hooks
    from ._policy import OnError

__all__ = ["REGISTRY", "setup"]

#: The key of the application's registry: ``app[tether.aiohttp.REGISTRY]`` (or
#: ``request.config_dict[REGISTRY]`` from a sub-application), set while the
#: application runs.
REGISTRY = web.AppKey("tether.registry", TaskRegistry)

_NOT_RUNNING = """\
The TaskRegistry of tether.aiohttp.setup() is not open: the application's \
cleanup_ctx has not started it. Serve the application through aiohttp (web.run_app, \
web.AppRunner, or the aiohttp_client test fixture), which runs app.cleanup_ctx, \
and call tether.aiohttp.setup(app) on the application that handles the request, \
or on one above it.
"""

_FROZEN = """\
tether.aiohttp.setup() was given an application that aiohttp has frozen: \
app.add_subapp() (and app.add_domain()) freezes a sub-application, and every \
application is frozen once it starts. Call tether.aiohttp.setup(subapp) before \
app.add_subapp(prefix, subapp), or call it once on the main application: its \
registry is bound for the requests of every sub-application too \
(request.config_dict[tether.aiohttp.REGISTRY]).\
"""

_TWICE = """\
tether.aiohttp.setup() was already called on this application: it has one \
registry, app[tether.aiohttp.REGISTRY]. Pass all the options in one call.\
"""


def setup(
    app: web.Application,
    *,
    name: str = "app",
    on_error: OnError = "log",
    limit: int | None = None,
    max_pending: int | None = None,
    shutdown_timeout: float | None = None,
    debug: bool = False,
    ambient: bool = True,
    hooks: Hooks | None = None,
    context: Literal["spawner", "registry"] = "spawner",
    drain: Literal["on-cleanup", "on-shutdown"] = "on-cleanup",
    stop_server: StopServer = signal.SIGTERM,
) -> None:
    """Give ``app`` a :class:`~tether.TaskRegistry` for its lifetime, bound for
    every request it handles.

    The registry opens first thing when the application starts (in a cleanup
    context put before every other) and closes in a cleanup context added where
    ``setup`` is called: it drains for at most
    ``shutdown_timeout`` seconds, then cancels what is left and logs it (logger
    ``"tether"``). Contexts in ``app.cleanup_ctx`` close in reverse order, so call
    ``setup`` after adding the contexts the background work needs (a database
    pool): the registry then drains before they close. While the application
    runs, the registry is ``app[tether.aiohttp.REGISTRY]``.

    The registry is also bound in the task that starts the application (unless
    one is bound there already), so ``tether.spawn`` works in every cleanup
    context and in ``on_startup``, ``on_shutdown`` and ``on_cleanup`` handlers.

    Args:
        app: the application; not yet started, and not yet added to another
            with ``add_subapp``.
        name, on_error, limit, max_pending, shutdown_timeout: the options of the
            registry, as for :class:`~tether.TaskRegistry`; checked here, so a bad
            one fails at once with the registry's own error. A finite
            ``shutdown_timeout`` is recommended.
        debug, ambient, hooks, context: the other options of the registry, the
            same way.
        drain: when the registry's ``shutdown_timeout`` starts to count.
            ``"on-cleanup"`` (the default): in its cleanup context, once aiohttp
            has waited for the open handlers, so the worst case is the runner's
            ``shutdown_timeout`` plus the registry's. ``"on-shutdown"``: at
            ``on_shutdown``, before aiohttp waits for the open handlers; the tasks
            go on meanwhile (and open handlers may still spawn), and the drain at
            cleanup gets what is left of the time, so the worst case is the
            larger of the two. The drain's INFO record states that remainder
            (or, once it is spent, that the tasks are cancelled at once).
        stop_server: what happens when the registry starts cancelling on its own
            while the application runs: a task raised ``SystemExit`` or
            ``KeyboardInterrupt``, failed with ``on_error="raise"`` (any
            task: its failure ends the whole app), or was a service that gave
            up with ``on_give_up="raise"``. With a
            signal (the default, ``SIGTERM``), a ``SystemExit`` or
            ``KeyboardInterrupt`` goes out of the event loop as asyncio does with
            one from a task of its own: ``web.run_app`` stops the application,
            runs its whole cleanup and raises it (``sys.exit(3)`` in a task ends
            the program with status 3); a failure raises the signal in this
            process, so that ``web.run_app`` stops as it does on that signal, if
            a handler for it is installed (else it is only logged), and the
            ``ExceptionGroup`` is raised from the registry's close. A callable is
            called with the exception instead, and must stop the server. ``None``
            keeps serving, and every spawn fails with
            :exc:`~tether.RegistryClosed`.

    Raises:
        RuntimeError: ``app`` is frozen (started, or added to another with
            ``add_subapp``), or ``setup`` was already called on it.
        TypeError, ValueError: an option is of the wrong type or value
            (``drain``, ``stop_server``, or the registry's own), before anything
            is added to ``app``.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       Every option of the registry; ``drain`` and ``stop_server``; the registry
       is bound at startup and cleanup; clear errors on a frozen application or a
       second call. With ``drain="on-shutdown"``, the drain's INFO record states
       the time left, not the whole ``shutdown_timeout``.
    """
    if app.pre_frozen:
        raise RuntimeError(_FROZEN)
    if _bind_registry in app.middlewares:
        raise RuntimeError(_TWICE)
    check_choice(
        "setup",
        "drain",
        drain,
        ("on-cleanup", "on-shutdown"),
        "use 'on-cleanup' (the registry drains once aiohttp has waited for the open "
        "handlers) or 'on-shutdown' (it drains while aiohttp waits for them)",
    )
    lifetime = _Lifetime(
        registry_options(
            name=name,
            on_error=on_error,
            limit=limit,
            max_pending=max_pending,
            shutdown_timeout=shutdown_timeout,
            debug=debug,
            ambient=ambient,
            hooks=hooks,
            context=context,
        ),
        stopper("setup", stop_server),
        drain,
        exit_natively=isinstance(stop_server, signal.Signals),
    )
    app.cleanup_ctx.insert(0, lifetime.outer)
    app.cleanup_ctx.append(lifetime.context)
    app.on_shutdown.append(lifetime.on_shutdown)
    app.middlewares.append(_bind_registry)


class _Lifetime:
    """The registry of one application across its runs: opened by the cleanup
    context, told by ``on_shutdown`` that the server stops."""

    __slots__ = (
        "_deadline",
        "_drain",
        "_exit_natively",
        "_options",
        "_raised",
        "_registry",
        "_stop",
        "_token",
    )

    def __init__(
        self,
        options: dict[str, Any],
        stop: Callable[[TaskRegistry, BaseException], None] | None,
        drain: str,
        *,
        exit_natively: bool,
    ) -> None:
        self._options = options
        self._stop = stop
        self._drain = drain
        self._exit_natively = exit_natively
        self._registry: AppRegistry | None = None
        self._token: Token[Bound] | None = None  # the binding in the startup task
        # With drain="on-shutdown": when the drain must end, set by on_shutdown.
        self._deadline: float | None = None
        # The SystemExit or KeyboardInterrupt sent out of the event loop.
        self._raised: BaseException | None = None

    def _stop_server(self, registry: TaskRegistry, cause: BaseException) -> None:
        assert self._stop is not None
        if isinstance(cause, Exception) or not self._exit_natively:
            self._stop(registry, cause)  # a signal, or the user's callable
            return
        # A SystemExit or KeyboardInterrupt: out of the event loop, as asyncio
        # does with one from a task of its own. web.run_app (or asyncio.run)
        # then stops the app, runs its whole cleanup and raises it.
        announce(registry, cause, "raising it out of the event loop")
        self._raised = cause
        asyncio.get_running_loop().call_soon(_raise, cause)

    async def outer(self, app: web.Application) -> AsyncIterator[None]:
        """The first cleanup context: the registry opens before every other, so
        that the contexts added before ``setup`` may spawn too. It closes the
        registry if a startup that failed never entered :meth:`context`."""
        await self._open(app)
        yield
        await self._end()

    async def _open(self, app: web.Application) -> None:
        # Single-use: one registry per run.
        stop = None if self._stop is None else self._stop_server
        registry = AppRegistry(stop, self._options)
        self._registry, self._deadline, self._raised = registry, None, None
        await registry.open()
        app[REGISTRY] = registry
        # Bound for the rest of startup and for cleanup, which run in this task.
        ambient, lineage = bound.get()
        self._token = bound.set((registry, lineage)) if ambient is None else None

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """Where ``setup`` was called among the cleanup contexts: the registry
        closes before the contexts added before it."""
        yield
        await self._end()

    async def _end(self) -> None:
        """Close the registry, unless done already."""
        registry, token = self._registry, self._token
        if registry is None:
            return
        self._registry = self._token = None
        try:
            await self._close(registry)
        finally:
            if token is not None:
                with contextlib.suppress(ValueError):  # cleanup in another context
                    bound.reset(token)

    async def on_shutdown(self, app: web.Application) -> None:
        registry = self._registry
        if registry is None:  # pragma: no cover - startup failed before us
            return
        registry.stop = None  # the server is stopping already
        timeout = self._options["shutdown_timeout"]
        if self._drain == "on-shutdown" and timeout is not None:
            # The tasks go on while aiohttp waits for the open handlers (which may
            # still spawn); the drain at cleanup gets what is left of the time.
            self._deadline = anyio.current_time() + timeout

    async def _close(self, registry: AppRegistry) -> None:
        registry.stop = None
        try:
            await close_by(registry, self._deadline)
        except BaseException as exc:
            if exc is not self._raised:  # not already on its way out
                raise


def _raise(exc: BaseException) -> None:
    raise exc


@web.middleware
async def _bind_registry(request: web.Request, handler: Handler) -> web.StreamResponse:
    registry = request.config_dict.get(REGISTRY)
    if registry is None:
        raise NoRegistry(_NOT_RUNNING)
    with registry.bind():
        return await handler(request)
