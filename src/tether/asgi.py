"""A task registry for Starlette, FastAPI and any other ASGI application.

Web servers run the ASGI lifespan in a task of its own, apart from the tasks that
serve requests, so a registry opened in the lifespan is not ambient in handlers by
itself. :class:`TaskRegistryMiddleware` owns one registry across the lifespan and
binds it for every request::

    app.add_middleware(TaskRegistryMiddleware, shutdown_timeout=10)

It is a pure ASGI middleware: it never wraps a handler in a task of its own, so
the background work of a request is the registry's alone (Starlette's
``BaseHTTPMiddleware`` runs handlers in a task group of its own, which broke
background work: encode/starlette#1438). It imports no framework.
"""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ._exceptions import NoRegistry
from ._log import logger
from ._registry import RegistryState, TaskRegistry
from ._spawn import current_registry
from ._web import AppRegistry, StopServer, registry_options, stopper

if TYPE_CHECKING:
    from typing import Literal

    from ._hooks import Hooks
    from ._policy import OnError

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "TaskRegistryMiddleware"]

#: The ASGI types, structurally the same as Starlette's ``starlette.types``.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NO_LIFESPAN = """\
TaskRegistryMiddleware has no open registry for this {kind} request: the ASGI \
lifespan has not started (or has ended), and no registry is bound around the app.

The middleware opens its registry at lifespan.startup. Run the lifespan:
  - Starlette/FastAPI TestClient: `with TestClient(app) as client:` (a TestClient
    used without `with` skips the lifespan);
  - httpx.ASGITransport, which never runs the lifespan: open a registry around the
    requests, `async with tether.TaskRegistry():` (or the `tether_registry`
    fixture of tether.testing), and the app spawns into it;
  - uvicorn: do not pass `--lifespan off`.
"""


class TaskRegistryMiddleware:
    """Own a :class:`~tether.TaskRegistry` across the ASGI lifespan and bind it for
    every ``http`` and ``websocket`` request, so handlers can call
    :func:`tether.spawn` and :func:`tether.current_registry` (also as a FastAPI
    dependency: ``Depends(tether.current_registry)``).

    The registry opens at ``lifespan.startup``, before the app's own startup, and
    closes at ``lifespan.shutdown``, before the app's own shutdown: spawned work
    outlives its response and a client disconnect, and may use what the app's
    lifespan holds (a database pool) until it has drained. Closing drains for at
    most ``shutdown_timeout`` seconds, then cancels what is left and logs it
    (logger ``"tether"``). While it drains, one of ``signals`` (a second Ctrl+C)
    cancels what is left at once.

    Works whether or not the wrapped app handles the lifespan itself (FastAPI with
    its own ``lifespan``, a plain Starlette app, or a bare ASGI callable that does
    not support it). Registries are single-use, so each lifespan gets a new one.

    A request served when no lifespan ran (``TestClient`` without ``with``,
    ``httpx.ASGITransport``) uses the registry already bound around the app, if
    there is one, else raises :exc:`~tether.NoRegistry` naming the fix: a
    registry nobody closes would lose its work silently.

    When the registry's close raises (a failure in raise mode, a ``SystemExit``
    from a task), the app's own shutdown still runs, as an ``async with`` around
    a task group runs its exit: the middleware then sends
    ``lifespan.shutdown.failed`` with the traceback instead of the app's
    ``lifespan.shutdown.complete``, and raises the exception from the lifespan.

    Args:
        app: the ASGI application to wrap.
        name, on_error, limit, max_pending, shutdown_timeout: the options of the
            registry, as for :class:`~tether.TaskRegistry`; checked here, so a bad
            one fails at once with the registry's own error. A finite
            ``shutdown_timeout`` is recommended.
        debug, ambient, hooks, context: the other options of the registry, the
            same way.
        signals: while the registry drains at shutdown, receiving one of these
            cancels its remaining tasks at once. Only in the main thread; ``()``
            turns it off.
        stop_server: what happens when the registry starts cancelling on its own
            while the app runs: a task raised ``SystemExit`` or
            ``KeyboardInterrupt``, or failed with ``on_error="raise"``. A signal
            (the default, ``SIGTERM``) is raised in this process, so that the
            server (uvicorn, hypercorn, gunicorn's worker) shuts down as it does
            on that signal, lifespan included, if a handler for it is installed
            (else it is only logged); a callable is called with the exception and
            must stop the server (``server.should_exit = True`` for an embedded
            ``uvicorn.Server``); ``None`` keeps serving, and every spawn fails
            with :exc:`~tether.RegistryClosed`.

    .. versionadded:: 0.2
    .. versionchanged:: 0.3
       Every option of the registry, and ``stop_server``; the app's own shutdown
       runs when the registry's close raises.
    """

    __slots__ = ("_app", "_new_registry", "_registry", "_signals")

    def __init__(
        self,
        app: ASGIApp,
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
        signals: Collection[signal.Signals] = (signal.SIGINT, signal.SIGTERM),
        stop_server: StopServer = signal.SIGTERM,
    ) -> None:
        self._app = app
        options = registry_options(
            name=name,
            on_error=on_error,
            limit=limit,
            max_pending=max_pending,
            shutdown_timeout=shutdown_timeout,
            debug=debug,
            ambient=ambient,
            hooks=hooks,
            context=context,
        )
        self._new_registry = partial(
            AppRegistry, stopper("TaskRegistryMiddleware", stop_server), options
        )
        # Made now, so that a bad option fails here and not at startup.
        self._registry = self._new_registry()
        self._signals = _check_signals(signals)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: bind the registry for ``http`` and
        ``websocket``, run the lifespan protocol for ``lifespan``."""
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            registry = self._registry
            if registry.state is RegistryState.NEW:
                self._check_bound(kind)
                await self._app(scope, receive, send)
                return
            with registry.bind():
                await self._app(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    @staticmethod
    def _check_bound(kind: str) -> None:
        try:
            current_registry()
        except NoRegistry:
            raise NoRegistry(_NO_LIFESPAN.format(kind=kind)) from None

    # -- the lifespan ---------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        registry = self._registry
        if registry.state is not RegistryState.NEW:
            registry = self._registry = self._new_registry()
        seen: set[str] = set()  # the message types the app received or sent
        # What the registry's close raised: kept until the app's own shutdown ran.
        failed: list[BaseException] = []
        told: list[bool] = []

        async def app_receive() -> Message:
            message = await receive()
            seen.add(message["type"])
            if message["type"] == "lifespan.startup":
                await registry.open()
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._close(registry)
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException as exc:  # raised once the app's shutdown ran
                    failed.append(exc)
            return message

        async def app_send(message: Message) -> None:
            seen.add(message["type"])
            if failed and message["type"] == "lifespan.shutdown.complete":
                message = _shutdown_failed(failed[0])
                told.append(True)  # the server has the traceback now
            await send(message)

        try:
            try:
                with registry.bind():  # the app's own startup may spawn
                    await self._app(scope, app_receive, app_send)
            except Exception as exc:
                if failed and not told:
                    _log_close_failure(registry, failed[0], exc)
                if seen:
                    raise
                # The app does not speak the lifespan protocol (it refused the
                # scope before its first receive), as a bare ASGI callable does.
                seen.clear()
            if "lifespan.startup" not in seen:
                await self._serve_lifespan(registry, receive, send)
            elif (
                "lifespan.shutdown" not in seen
                and "lifespan.startup.complete" in seen
                and registry.state is RegistryState.OPEN
            ):
                # The app's lifespan returned after its startup: keep serving.
                await self._serve_shutdown(registry, receive, send)
            if failed:
                # The app's own shutdown has run: now the registry's failure.
                raise failed[0]
        finally:
            if registry.state is RegistryState.OPEN:
                # No lifespan.shutdown came (a failed startup, or the server
                # cancelled the lifespan on a forced exit): cancel, never drain.
                if isinstance(registry, AppRegistry):
                    registry.stop = None  # the server is stopping already
                await _cancel_now(registry)

    async def _serve_lifespan(
        self, registry: TaskRegistry, receive: Receive, send: Send
    ) -> None:
        """The whole protocol, for an app that does not handle it."""
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - bad server
            return
        await registry.open()
        await send({"type": "lifespan.startup.complete"})
        await self._serve_shutdown(registry, receive, send)

    async def _serve_shutdown(
        self, registry: TaskRegistry, receive: Receive, send: Send
    ) -> None:
        message = await receive()
        if message["type"] != "lifespan.shutdown":  # pragma: no cover - bad server
            return
        try:
            await self._close(registry)
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            await send(_shutdown_failed(exc))
            raise
        await send({"type": "lifespan.shutdown.complete"})

    async def _close(self, registry: TaskRegistry) -> None:
        """Drain and close; one of our signals meanwhile cancels what is left."""
        if isinstance(registry, AppRegistry):
            registry.stop = None  # the server is stopping already
        if (
            not self._signals
            or sys.platform == "win32"  # no signal receiver on asyncio there
            or threading.current_thread() is not threading.main_thread()
        ):
            await registry.aclose()
            return
        # anyio's signal receiver on asyncio puts back the default handlers when it
        # ends, not the server's own: put those back ourselves.
        previous = {sig: signal.getsignal(sig) for sig in self._signals}
        failure: BaseException | None = None
        try:
            async with anyio.create_task_group() as group:
                # Started before the drain, so that no signal slips in between.
                await group.start(_cancel_on_signal, registry, self._signals)
                try:
                    await registry.aclose()
                except anyio.get_cancelled_exc_class():
                    raise
                except BaseException as exc:  # kept bare, not grouped by the group
                    failure = exc
                group.cancel_scope.cancel()
        finally:
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)
        if failure is not None:
            raise failure


async def _cancel_on_signal(
    registry: TaskRegistry,
    signals: tuple[signal.Signals, ...],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with anyio.open_signal_receiver(*signals) as received:
        task_status.started()
        async for _ in received:
            # A second aclose() while draining cancels what is left at once.
            await registry.aclose()
            return


async def _cancel_now(registry: TaskRegistry) -> None:
    """Close ``registry`` cancelling its tasks at once (they are reported), even
    from a task that is itself being cancelled."""
    with anyio.CancelScope(shield=True), anyio.CancelScope() as scope:
        # Closing in a cancelled scope skips the drain.
        scope.cancel()
        await registry.aclose()


def _shutdown_failed(exc: BaseException) -> Message:
    """The message that tells the server the shutdown failed, and why."""
    return {
        "type": "lifespan.shutdown.failed",
        "message": "".join(traceback.format_exception(exc)).rstrip(),
    }


def _log_close_failure(
    registry: TaskRegistry, failure: BaseException, app_exc: BaseException
) -> None:
    """The registry's close raised, then the app's lifespan raised too: the app's
    exception goes on, the registry's is reported here."""
    if failure is not app_exc:
        logger.error(
            "TaskRegistry %r raised at shutdown, and the app's lifespan raised %r "
            "after it",
            registry.name,
            app_exc,
            exc_info=failure,
            extra={"tether_registry": registry.name, "tether_task": None},
        )


def _check_signals(signals: Collection[signal.Signals]) -> tuple[signal.Signals, ...]:
    """``signals`` as a tuple, or a TypeError now rather than at shutdown."""
    if isinstance(signals, Collection) and not isinstance(signals, (str, bytes)):
        checked = tuple(signals)
        if all(isinstance(sig, signal.Signals) for sig in checked):
            return checked
    raise TypeError(
        f"TaskRegistryMiddleware(signals={signals!r}): signals must be a collection "
        "of signal.Signals, such as (signal.SIGINT, signal.SIGTERM), or () for none"
    )
