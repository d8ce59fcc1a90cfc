"""What the web integrations share: an app's registry that stops the server when
it ends on its own, and the options both take.

A registry opened with ``open()`` has no body to cancel: when a task raises
``SystemExit`` or ``KeyboardInterrupt``, or fails in raise mode, it cancels its
tasks and waits to be closed, while the server goes on serving requests that can
no longer spawn. :class:`AppRegistry` notices that moment and calls the app's
``stop_server``: by default it raises a signal in this process, which a server
handles as it handles a process manager's (uvicorn, ``hypercorn.asyncio.serve``,
aiohttp's ``run_app`` and gunicorn's workers stop gracefully on ``SIGTERM``), if a
handler for it is installed.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import anyio

from ._calls import describe
from ._log import logger
from ._registry import TaskRegistry

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._hooks import Hooks
    from ._policy import OnError

__all__ = [
    "AppRegistry",
    "StopServer",
    "announce",
    "close_by",
    "registry_options",
    "stopper",
]

#: How an app's registry stops the server when it ends on its own: a signal raised
#: in this process, a callable given the exception, or None to keep serving.
StopServer: TypeAlias = "signal.Signals | Callable[[BaseException], object] | None"

#: The handlers that mean "nobody stops gracefully on this signal".
_UNHANDLED: tuple[object, ...] = (
    signal.SIG_DFL,
    signal.SIG_IGN,
    signal.default_int_handler,  # a KeyboardInterrupt wherever the code is
    None,  # a handler not installed from Python: unknown
)


class AppRegistry(TaskRegistry):
    """The registry of a web app: when it starts cancelling on its own (a
    ``KeyboardInterrupt`` or ``SystemExit`` from a task, or a failure in raise
    mode) while the app runs, it calls ``stop`` once with the exception."""

    __slots__ = ("stop",)

    def __init__(
        self,
        stop: Callable[[TaskRegistry, BaseException], None] | None,
        options: dict[str, Any],
    ) -> None:
        super().__init__(**options)
        #: Set to None once the server's own shutdown has begun.
        self.stop = stop

    def _begin_cancelling(self) -> None:
        super()._begin_cancelling()
        stop = self.stop
        if stop is None:
            return
        policy = self._policy
        cause = policy.base_exc or (policy.failures[0] if policy.failures else None)
        if cause is not None:  # not the deadline of someone's aclose()
            self.stop = None
            stop(self, cause)


def registry_options(
    *,
    name: str,
    on_error: OnError,
    limit: int | None,
    max_pending: int | None,
    shutdown_timeout: float | None,
    debug: bool,
    ambient: bool,
    hooks: Hooks | None,
    context: Literal["spawner", "registry"],
) -> dict[str, Any]:
    """The registry's options, checked now by making one, so that a bad option
    fails where it is given and not when the app starts."""
    options: dict[str, Any] = {
        "name": name,
        "on_error": on_error,
        "limit": limit,
        "max_pending": max_pending,
        "shutdown_timeout": shutdown_timeout,
        "debug": debug,
        "ambient": ambient,
        "hooks": hooks,
        "context": context,
    }
    TaskRegistry(**options)
    return options


def stopper(
    api: str, stop_server: StopServer
) -> Callable[[TaskRegistry, BaseException], None] | None:
    """Check ``stop_server`` and return what an :class:`AppRegistry` calls."""
    if stop_server is None:
        return None
    if isinstance(stop_server, signal.Signals):
        sig = stop_server
        return lambda registry, cause: _raise_signal(registry, cause, sig)
    if callable(stop_server):
        call = stop_server
        return lambda registry, cause: _call(registry, cause, call)
    raise TypeError(
        f"{api}(stop_server={stop_server!r}): stop_server must be a signal.Signals "
        "(raised in this process, for the server to stop as on a process "
        "manager's signal: signal.SIGTERM), a callable (exception) -> None that "
        "stops the server, or None to keep serving"
    )


def announce(registry: TaskRegistry, cause: BaseException, how: str) -> None:
    logger.warning(
        "TaskRegistry %r is cancelling its tasks while the app runs (%s): %s",
        registry.name,
        _why(registry, cause),
        how,
        extra={"tether_registry": registry.name, "tether_task": None},
    )


def _why(registry: TaskRegistry, cause: BaseException) -> str:
    if not isinstance(cause, Exception):
        return f"{cause!r} from a task"
    if registry.in_raise_mode_:
        return f"a task failed in raise mode: {cause!r}"
    return f"a service gave up, with on_give_up='raise': {cause!r}"


def _raise_signal(
    registry: TaskRegistry, cause: BaseException, sig: signal.Signals
) -> None:
    if signal.getsignal(sig) in _UNHANDLED:
        # Nothing would stop gracefully: SIGTERM would kill the process, SIGINT
        # raise a KeyboardInterrupt in whatever runs (a test runner, too).
        announce(
            registry,
            cause,
            f"nothing in this process handles {sig.name}, so the server was not "
            "stopped; pass stop_server= a callable that stops it",
        )
        return
    announce(registry, cause, f"stopping the server with {sig.name}")
    signal.raise_signal(sig)


def _call(
    registry: TaskRegistry,
    cause: BaseException,
    call: Callable[[BaseException], object],
) -> None:
    announce(registry, cause, f"stopping the server with {describe(call)}")
    try:
        call(cause)
    except Exception as exc:
        logger.error(
            "stop_server=%s of TaskRegistry %r raised",
            describe(call),
            registry.name,
            exc_info=exc,
            extra={"tether_registry": registry.name, "tether_task": None},
        )


async def close_by(registry: TaskRegistry, deadline: float | None) -> None:
    """Close ``registry``, its drain ending at ``deadline`` at the latest (None:
    at its own ``shutdown_timeout``). Raises what the close raises, bare.

    The drain is given what is left of the time as its own timeout, so that its
    INFO record states the drain that really happens: one with no time left
    cancels at once, and says so.
    """
    if deadline is not None:
        # Read by the close alone: the registry is past taking options here.
        registry.set_drain_timeout_(max(0.0, deadline - anyio.current_time()))
    await registry.aclose()
