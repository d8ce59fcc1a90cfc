"""Cancelling on a signal: Ctrl+C for a command-line program.

A ``signal.signal`` handler runs in the main thread between two bytecodes, outside
every task, while the event loop may sleep in its selector. A cancellation
requested there wakes the loop (``Handle.cancel`` and ``TaskRegistry.cancel_all``
see to it), so the handler only has to ask for it. What this module adds is the
rest of a correct handler: the previous handlers put back when the block ends, and
after the first signal, so that a second Ctrl+C does what it did before (asyncio's
and trio's ``KeyboardInterrupt``): the way out when a cleanup hangs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from ._handle import Handle
from ._registry import TaskRegistry

if TYPE_CHECKING:
    import signal
    from types import FrameType, TracebackType

    from typing_extensions import Self

__all__ = ["CancelOnSignal", "cancel_on_signal"]

_Handler = Any  # what signal.signal returns: a callable, an int or None


@final
class CancelOnSignal:
    """The context manager of :func:`tether.cancel_on_signal`.

    .. versionadded:: 0.3
    """

    __slots__ = ("_previous", "_received", "_signals", "_target")

    def __init__(
        self, target: Handle[Any] | TaskRegistry, signals: tuple[signal.Signals, ...]
    ) -> None:
        self._target = target
        self._signals = signals
        self._previous: dict[signal.Signals, _Handler] = {}
        self._received: signal.Signals | None = None

    @property
    def received(self) -> signal.Signals | None:
        """The signal that cancelled the target, or ``None`` while none came."""
        return self._received

    def __enter__(self) -> Self:
        """Install the handlers (in the main thread only, as Python requires)."""
        if self._previous:
            raise RuntimeError(
                "cancel_on_signal(): this block is already entered; make one per `with`"
            )
        import signal  # here: `import tether` does not pay for it

        try:
            for sig in self._signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        except ValueError as exc:  # not the main thread
            self._restore()
            raise RuntimeError(
                f"cancel_on_signal() installs signal handlers, which Python allows "
                f"only in the main thread ({exc}). Enter it where the event loop "
                "runs in the main thread (a command-line program's), or in a server "
                "use TaskRegistryMiddleware(signals=...)"
            ) from None
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Put back the handlers that were installed before."""
        self._restore()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # The first signal is ours; the next goes to the handler we replaced.
        import signal

        self._received = signal.Signals(signum)
        self._restore()
        target = self._target
        if isinstance(target, Handle):
            target.cancel()
        else:
            target.cancel_all()

    def _restore(self) -> None:
        import signal

        previous, self._previous = self._previous, {}
        for sig, handler in previous.items():
            if signal.getsignal(sig) == self._on_signal:  # not replaced since
                signal.signal(sig, handler)


def cancel_on_signal(
    target: Handle[Any] | TaskRegistry, /, *signals: signal.Signals
) -> CancelOnSignal:
    """Cancel ``target`` when one of ``signals`` arrives, while the block runs.

    ``with tether.cancel_on_signal(handle):`` then ``await handle``: Ctrl+C (or
    SIGTERM) cancels the task, which lands at once even while the event loop
    sleeps, and ``await handle`` raises :exc:`~tether.TaskCancelled`. A registry
    as the target has :meth:`~tether.TaskRegistry.cancel_all` called: every task
    is cancelled and the registry stays open.

    The first signal also puts back the handlers that were there before, so a
    second Ctrl+C does what it did before (``KeyboardInterrupt`` on asyncio and
    trio): the way out of a cleanup that hangs. Leaving the block puts them back
    too. Entering installs handlers with :func:`signal.signal`, so it must happen
    in the main thread; it does not block. :attr:`CancelOnSignal.received` says
    which signal came, if one did (a command-line program exits ``128 +`` its
    number).

    Args:
        target: the task (a handle) or the registry to cancel.
        *signals: the signals to catch; default ``SIGINT`` and ``SIGTERM``.

    Raises:
        TypeError: ``target`` is not a handle or a registry, or a signal is not
            a :class:`signal.Signals`.
        RuntimeError: entered outside the main thread.

    .. versionadded:: 0.3
    """
    if not isinstance(target, Handle | TaskRegistry):
        raise TypeError(
            f"cancel_on_signal() takes a tether handle or a TaskRegistry to cancel, "
            f"got {type(target).__name__}: cancel_on_signal(tasks.spawn(main_job)) "
            "or cancel_on_signal(tasks)"
        )
    import signal  # here: `import tether` does not pay for it

    for sig in signals:
        if not isinstance(sig, signal.Signals):
            raise TypeError(
                f"cancel_on_signal() signals must be signal.Signals, got {sig!r}: "
                "cancel_on_signal(handle, signal.SIGINT, signal.SIGTERM)"
            )
    return CancelOnSignal(target, signals or (signal.SIGINT, signal.SIGTERM))
