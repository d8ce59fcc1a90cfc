"""Long-running work: services that restart, and tasks that report they are ready.

A service (:meth:`TaskRegistry.spawn_service <tether.TaskRegistry.spawn_service>`)
is one registry task that calls its function again after it fails, as a
supervisor would: :class:`RestartPlan` holds the validated options and the
backoff, :func:`supervise` is the loop the task runs. Readiness
(:meth:`TaskRegistry.start <tether.TaskRegistry.start>`) is :class:`TaskStatus`:
the object a started task reports through, and the wait of the starter.

The option names follow systemd's ``Restart=`` (the words say *when* a service is
restarted: ``"on-failure"``, ``"always"``) and Erlang/OTP's restart intensity
(``max_restarts`` within ``restart_window`` seconds, past which a supervisor gives
up); the semantics page says why.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, cast, overload

import anyio
from typing_extensions import TypeVar

from ._calls import describe, is_async_callable
from ._checks import check_choice, check_count, check_seconds
from ._log import logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._backend import Event
    from ._handle import Annex, Handle

__all__ = [
    "GiveUp",
    "Restart",
    "RestartPlan",
    "TaskStatus",
    "supervise",
]

T_contra = TypeVar("T_contra", contravariant=True)

Restart: TypeAlias = Literal["on-failure", "always"]
#: What a service does when it stops for good on its own (see ``spawn_service``).
GiveUp: TypeAlias = 'Literal["raise"] | Callable[[Handle[Any]], object] | None'


class RestartPlan:
    """A service's restart options, checked, and the delay before each restart."""

    __slots__ = (
        "always",
        "backoff",
        "give_up",
        "max_backoff",
        "max_restarts",
        "restart_on",
        "timeout",
        "window",
    )

    def __init__(
        self,
        restart: object,
        max_restarts: object,
        restart_window: object,
        backoff: object,
        max_backoff: object,
        timeout: object,
        restart_on: object = Exception,
        on_give_up: object = None,
    ) -> None:
        api = "spawn_service"
        self.restart_on = _restart_on(restart_on)
        self.give_up = _on_give_up(on_give_up)
        check_choice(
            f"{api}(..., ",
            "restart",
            restart,
            ("on-failure", "always"),
            "use 'on-failure' (restart after the function raises) or 'always' "
            "(after it returns, too)",
        )
        if max_restarts is not None:
            check_count(
                api,
                "max_restarts",
                max_restarts,
                1,
                " (restarts allowed within restart_window before the service gives "
                "up), or None to restart without limit",
            )
        for option, value in (
            ("restart_window", restart_window),
            ("backoff", backoff),
            ("max_backoff", max_backoff),
            ("timeout", timeout),
        ):
            check_seconds(
                api,
                option,
                value,
                _MEANING[option],
                positive=True,
                required=option != "timeout",
            )
        assert isinstance(backoff, int | float)
        assert isinstance(max_backoff, int | float)
        assert isinstance(restart_window, int | float)
        if max_backoff < backoff:
            raise ValueError(
                f"{api}(..., backoff={backoff!r}, max_backoff={max_backoff!r}): "
                "max_backoff is the longest delay between restarts and must be >= "
                "backoff, the first one"
            )
        self.always = restart == "always"
        self.max_restarts: int | None = max_restarts  # type: ignore[assignment]
        self.window = float(restart_window)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.timeout: float | None = timeout  # type: ignore[assignment]

    def gave_up(self, annex: Annex, handle: Handle[Any] | None) -> None:
        """The service stops for good on its own: escalate as ``on_give_up`` says,
        before its task ends (so that its end is told as the option asks)."""
        give_up = self.give_up
        if give_up is None:
            return
        if isinstance(give_up, str):  # "raise"
            annex.fatal = True
        else:
            assert handle is not None  # the task runs: its spawn has returned
            handle.add_done_callback(give_up)

    def delay(self, recent: int) -> float:
        """The delay before a restart, after ``recent`` restarts within the window:
        ``backoff`` doubled per recent restart up to ``max_backoff``, then scaled by
        a random factor in [0.5, 1] ("equal jitter"), so that services that failed
        together do not all come back at the same moment."""
        ceiling = min(self.max_backoff, self.backoff * 2.0 ** min(recent, 64))
        return ceiling * random.uniform(0.5, 1.0)


def _restart_on(value: object) -> tuple[type[Exception], ...]:
    """Check ``restart_on``: an ``Exception`` subclass or a non-empty tuple of them."""
    kinds = cast("tuple[object, ...]", value if isinstance(value, tuple) else (value,))
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, Exception)):
            raise TypeError(
                f"spawn_service(..., restart_on={value!r}): pass the Exception "
                "subclasses that restart the service, e.g. "
                "restart_on=(ConnectionError, TimeoutError); any other failure "
                "fails it at once. A cancellation or KeyboardInterrupt never "
                "restarts it"
            )
    if not kinds:
        raise ValueError(
            "spawn_service(..., restart_on=()): an empty tuple restarts on no "
            "failure; name at least one Exception subclass, or use spawn() for a task "
            "that is never restarted"
        )
    return cast("tuple[type[Exception], ...]", kinds)


def _on_give_up(value: object) -> GiveUp:
    """Check ``on_give_up``: None, ``"raise"`` or a plain callable (handle)."""
    if value is None or value == "raise":
        return cast("GiveUp", value)
    if isinstance(value, str):
        raise ValueError(
            f"spawn_service(..., on_give_up={value!r}): use 'raise' (the service's "
            "giving up fails the registry as on_error='raise' does: every task is "
            "cancelled, the block raises, and a web app's server stops), a "
            "callable (handle) -> None called once the service has given up, or "
            "None (the default: its last failure goes to on_error)"
        )
    if not callable(value):
        raise TypeError(
            f"spawn_service(..., on_give_up={value!r}): on_give_up must be 'raise', "
            "a callable (handle) -> None called once the service has given up, or "
            "None"
        )
    if is_async_callable(value):
        raise TypeError(
            f"spawn_service(..., on_give_up={describe(value)}): on_give_up is "
            "called synchronously with the handle once the service has given up, "
            "as a done-callback is, so it must be a plain `def`, not an `async "
            "def`. To do async work, spawn it from the callable"
        )
    _check_takes_the_handle(value)
    return cast("GiveUp", value)


def _check_takes_the_handle(value: object) -> None:
    """Refuse now an ``on_give_up`` that cannot take the handle, rather than in a
    done-callback's ERROR record the day the service gives up."""
    import inspect

    try:
        signature = inspect.signature(cast("Callable[..., object]", value))
    except (TypeError, ValueError):  # no signature to check: the call will tell
        return
    try:
        signature.bind(None)
    except TypeError as exc:
        raise TypeError(
            f"spawn_service(..., on_give_up={describe(value)}): on_give_up is "
            "called with one argument, the service's handle, which it cannot take "
            f"({exc}). Write def on_give_up(handle: tether.Handle[Any]) -> None"
        ) from None


_MEANING = {
    "restart_window": " (the period in which max_restarts are counted)",
    "backoff": (
        " (the delay before the first restart; a restart loop without a delay "
        "would spin)"
    ),
    "max_backoff": " (the longest delay between restarts)",
    "timeout": " (how long each run may take), or None for no timeout",
}


async def supervise(
    name: str,
    annex: Annex,
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    plan: RestartPlan,
    registry: str,
    restarted: Callable[[], None],
    cancelling: Callable[[], bool],
    gave_up: Callable[[], None],
) -> Any:
    """Run ``fn(*args)``, and again as ``plan`` says, until it returns under
    ``"on-failure"``, is cancelled, or spends its restart budget.

    A cancellation is never caught here, so it never restarts the service, and it
    ends a backoff sleep as well as a run. A failure that is not one of
    ``plan.restart_on`` fails the service at once. A failure raised while the service is
    being cancelled (cleanup that turned the cancellation into an error) is the
    task's failure, as in any task: no restart is planned for it. ``cancelling``
    says whether the owner is cancelling the task (anyio cannot always tell: on
    asyncio the task's scope is tether's own). ``gave_up`` is called once the
    service stops for good on its own (its budget spent, or a failure that does
    not restart it), before its task ends.
    """
    restarts_at: deque[float] = deque()  # when each recent restart happened
    told: type[Exception] | None = None  # the failure whose traceback was logged
    while True:
        run = fn(*args)
        failure: Exception | None = None
        result: Any = None
        try:
            if plan.timeout is None:
                result = await run
            else:
                with anyio.fail_after(plan.timeout):
                    result = await run
        except Exception as exc:
            if cancelling():
                raise  # being cancelled: never a restart
            if not isinstance(exc, plan.restart_on):
                gave_up()
                raise  # not a failure that restarts: the task's failure, at once
            failure = exc
        else:
            if not plan.always:
                return result
        now = anyio.current_time()
        while restarts_at and restarts_at[0] <= now - plan.window:
            restarts_at.popleft()
        if not restarts_at:
            told = None  # up for a whole window: a new outage, told in full
        if plan.max_restarts is not None and len(restarts_at) >= plan.max_restarts:
            gave_up()
            if failure is not None:
                raise failure  # the budget is spent: this one goes to on_error
            if plan.give_up == "raise":  # a failure is asked for: say why
                raise RuntimeError(
                    f"service {name!r} of TaskRegistry {registry!r} returned after "
                    f"{len(restarts_at)} restart(s) within {plan.window:g} s and gave "
                    "up (on_give_up='raise')"
                )
            logger.warning(
                "Service %r of TaskRegistry %r returned after %d restart(s) within "
                "%g s and is not restarted again",
                name,
                registry,
                len(restarts_at),
                plan.window,
                extra={"tether_registry": registry, "tether_task": name},
            )
            return result
        delay = plan.delay(len(restarts_at))
        budget = "" if plan.max_restarts is None else f" of {plan.max_restarts}"
        # The traceback once per outage and kind of failure; then one line each.
        again = failure is not None and type(failure) is told
        logger.warning(
            "Service %r of TaskRegistry %r %s; restart %d%s within %g s, in %.2f s%s",
            name,
            registry,
            "returned" if failure is None else f"failed: {failure!r}",
            len(restarts_at) + 1,
            budget,
            plan.window,
            delay,
            " (traceback as at the first restart)" if again else "",
            exc_info=None if again else failure,
            extra={"tether_registry": registry, "tether_task": name},
        )
        if failure is not None:
            told = type(failure)
        failure = None  # not kept alive through the sleep
        await anyio.sleep(delay)
        restarts_at.append(anyio.current_time())
        annex.restarts += 1
        restarted()


# -- readiness ---------------------------------------------------------------------


class TaskStatus(Generic[T_contra]):
    """What a task started with ``start()`` receives as ``task_status``: it
    implements :class:`anyio.abc.TaskStatus`, so the same function can be started
    by anyio's ``TaskGroup.start`` and trio's ``nursery.start``."""

    __slots__ = ("_name", "event_", "is_started", "value")

    def __init__(self, event: Event, name: str) -> None:
        self.event_ = event
        self._name = name
        self.is_started = False
        self.value: Any = None

    @overload
    def started(self: TaskStatus[None]) -> None: ...
    @overload
    def started(self, value: T_contra) -> None: ...
    def started(self, value: T_contra | None = None) -> None:
        """Report that the task is ready; ``start()`` returns ``value``."""
        if self.is_started:
            raise RuntimeError(
                f"task {self._name!r} called task_status.started() twice: it reports "
                "ready once"
            )
        self.is_started = True
        self.value = value
        self.event_.set()

    def ended(self, handle: Handle[Any]) -> None:
        """The done-callback: wake the starter if the task ends before it is ready."""
        self.event_.set()

    def __repr__(self) -> str:
        state = "started" if self.is_started else "not started"
        return f"<tether task_status of {self._name!r}, {state}>"
