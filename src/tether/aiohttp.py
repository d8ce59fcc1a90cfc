"""A task registry for aiohttp applications.

``setup(app)`` gives the application one registry for its lifetime (opened and
closed by ``app.cleanup_ctx``) and a middleware that binds it for every request,
so handlers can call :func:`tether.spawn` and :func:`tether.current_registry`.
The same convention as ``aiohttp_session.setup(app, storage)``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from ._exceptions import NoRegistry
from ._registry import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from aiohttp.typedefs import Handler

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


def setup(
    app: web.Application,
    *,
    name: str = "app",
    on_error: OnError = "log",
    limit: int | None = None,
    max_pending: int | None = None,
    shutdown_timeout: float | None = None,
    debug: bool = False,
) -> None:
    """Give ``app`` a :class:`~tether.TaskRegistry` for its lifetime, bound for
    every request it handles.

    The registry opens when the application starts (``app.cleanup_ctx``) and, when
    it stops, drains for at most ``shutdown_timeout`` seconds, then cancels what
    is left and logs it (logger ``"tether"``). Contexts in ``app.cleanup_ctx``
    close in reverse order, so call ``setup`` after adding the contexts the
    background work needs (a database pool): the registry then drains first.
    While the application runs, the registry is ``app[tether.aiohttp.REGISTRY]``.

    Args:
        app: the application; not yet started.
        name, on_error, limit, max_pending, shutdown_timeout, debug: the options of
            the registry, as for :class:`~tether.TaskRegistry`; checked here, so a
            bad one fails at once with the registry's own error. A finite
            ``shutdown_timeout`` is recommended.

    .. versionadded:: 0.2
    """
    new_registry = partial(
        TaskRegistry,
        name=name,
        on_error=on_error,
        limit=limit,
        max_pending=max_pending,
        shutdown_timeout=shutdown_timeout,
        debug=debug,
    )
    new_registry()  # checks the options now, not when the application starts
    app.cleanup_ctx.append(partial(_registry_context, new_registry))
    app.middlewares.append(_bind_registry)


async def _registry_context(
    new_registry: Callable[[], TaskRegistry], app: web.Application
) -> AsyncIterator[None]:
    registry = new_registry()  # registries are single-use: one per run
    await registry.open()
    app[REGISTRY] = registry
    try:
        yield
    finally:
        await registry.aclose()


@web.middleware
async def _bind_registry(request: web.Request, handler: Handler) -> web.StreamResponse:
    registry = request.config_dict.get(REGISTRY)
    if registry is None:
        raise NoRegistry(_NOT_RUNNING)
    with registry.bind():
        return await handler(request)
