"""tether's own cancel scope on asyncio: native cancellation that honours anyio shields.

The one module of tether that reads another library's private state (the design's
"anyio's internals: one guarded exception"; the semantics page, section "tether's
scope on asyncio", says the same for users).

Why. On asyncio a task's cancel scope was the largest per-task cost tether paid:
anyio's public ``CancelScope`` makes a task record, a weak reference, a callback for
when the task dies and two sets for every task, and delivers every cancellation
twice. A task needs three things from its scope: to be cancelled by its owner,
level-triggered; to tell that cancellation from a foreign one when it ends; and to
honour the ``anyio.CancelScope(shield=True)`` blocks its body enters. asyncio gives
the first two (``Task.cancel(msg)``, and on 3.11+ ``cancelling()`` / ``uncancel()``
to take tether's requests back). The third needs a fact anyio keeps to itself:
whether a task is inside a shielded anyio scope right now. A native
``Task.cancel()`` goes straight through an anyio shield, so without that fact
shielded cleanup would be cut short at shutdown.

What is read, never written:

- anyio: ``anyio._backends._asyncio._task_states`` (task to its record; iterated
  once for a large batch of cancellations, see ``_shielded_tasks``), the record's
  ``cancel_scope`` (the task's innermost anyio scope), and each scope's
  ``_parent_scope`` and ``shield`` (and its public ``cancel_called`` and
  ``deadline``, for :func:`current_effective_deadline`);
- asyncio: ``Task._fut_waiter`` (the future a task is parked on) and
  ``Task._must_cancel`` (a cancellation is on its way), which anyio reads for the
  same reasons.

What guards it. :func:`native_scopes_usable` runs once per process, the first time
an asyncio backend is made: it enters real anyio scopes in the running task and
checks that the reader sees each shield, and that asyncio's task has the fields read.
If anything is missing or answers wrong (a new anyio moved its state), tether uses
anyio's public ``CancelScope`` instead, as before, and says so at DEBUG on logger
``"tether"``. The environment variable ``TETHER_ASYNCIO_SCOPE=anyio`` forces that
fallback (for tests: CI runs the suite once on each path).

Tasks with a deadline (``spawn(..., timeout=)``) keep anyio's scope on either path,
so that ``anyio.current_effective_deadline()`` in them shows their deadline: the
backend makes those with ``new_deadline_scope``, never a :class:`NativeScope`.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import anyio

from ._log import logger

if TYPE_CHECKING:
    from collections.abc import Container
    from types import TracebackType
    from weakref import WeakKeyDictionary

    from ._backend import Event, Scope

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "FORCE_VARIABLE",
    "NativeScope",
    "cancel_many",
    "checkpoint_if_cancelled",
    "current_effective_deadline",
    "force",
    "late_scope",
    "native_scopes_usable",
]

#: The environment variable that forces anyio's public scope (read once, for tests).
FORCE_VARIABLE = "TETHER_ASYNCIO_SCOPE"
_VALUES = ("native", "anyio")

#: The message of every cancellation tether's scope requests. On 3.10, which has no
#: count of requests, it is what tells tether's cancellation from a foreign one.
MESSAGE = "tether: cancelled by the task's owner"

#: Whether asyncio counts the requests to cancel a task (3.11+: ``cancelling()``,
#: ``uncancel()``), read once: a version check costs more than a constant on every
#: task's exit.
_COUNTED = sys.version_info >= (3, 11)

#: Per process: whether the native scope is used (None: not decided yet).
_usable: bool | None = None
#: anyio's task records (``task -> TaskState``), once found.
_task_states: Any = None


# -- the guard ------------------------------------------------------------------------


def native_scopes_usable() -> bool:
    """Whether this process uses tether's native scope (decided on the first call,
    which must run in an asyncio task); otherwise anyio's public ``CancelScope``."""
    global _usable
    if _usable is None:
        why = _why_not()
        if why is None:
            _usable = True
        else:
            # Not kept when there is no task to test in: the next backend tries again.
            if asyncio.current_task() is not None:
                _usable = False
            logger.debug(
                "tether's asyncio tasks use anyio's public CancelScope: %s",
                why,
                extra={"tether_registry": None, "tether_task": None},
            )
            return False
    return _usable


def _why_not() -> str | None:
    """Why the native scope cannot be used here, or None."""
    global _task_states
    forced = os.environ.get(FORCE_VARIABLE, "") or "native"
    if forced not in _VALUES:
        raise ValueError(
            f"environment variable {FORCE_VARIABLE}={forced!r} is not understood: "
            f"use {FORCE_VARIABLE}=anyio to force anyio's public CancelScope on "
            "asyncio (for tests), or leave it unset"
        )
    if forced == "anyio":
        return f"forced by {FORCE_VARIABLE}=anyio"
    task = asyncio.current_task()
    if task is None:
        return "no asyncio task to test in"
    try:
        _load()
        return _self_test(task)
    except Exception as exc:  # any surprise at all: the public scope
        _task_states = None
        return f"anyio's task state could not be read ({exc!r})"


def _load() -> None:
    global _task_states
    from anyio._backends import _asyncio as anyio_asyncio

    _task_states = vars(anyio_asyncio)["_task_states"]


def force(native: bool | None) -> bool | None:
    """For tests: use the native scope (True) or anyio's (False) in the backends
    made from now on, whatever the environment says; None decides afresh. Returns
    the setting it replaces, to be put back with ``force()`` again."""
    global _usable
    replaced = _usable
    if native:
        _load()
    _usable = native
    return replaced


def _self_test(task: asyncio.Task[Any]) -> str | None:
    """Prove, with real anyio scopes entered in ``task``, that a shield is seen."""
    for name in ("_fut_waiter", "_must_cancel"):  # read by deliver()
        if not hasattr(task, name):
            return f"asyncio's Task has no {name}"
    before = _shielded(task)
    follows: list[bool] = []  # the record follows the scopes entered and left
    seen: list[bool] = []  # and each answer is right
    # Scopes entered for what they record, not to cancel anything: no await inside.
    with anyio.CancelScope() as plain:  # noqa: ASYNC100
        seen.append(_shielded(task) == before)
        with anyio.CancelScope(shield=True) as shield:  # noqa: ASYNC100
            seen.append(_shielded(task))
            with anyio.CancelScope() as inner:  # noqa: ASYNC100
                seen.append(_shielded(task))
                follows.append(_innermost(task) is inner)
                follows.append(_parent(inner) is shield)
            follows.append(_innermost(task) is shield)
        follows.append(_innermost(task) is plain)
    seen.append(_shielded(task) == before)
    if follows != [True] * 4:
        return "anyio's task record does not follow the scopes a task enters"
    if seen != [True] * 4:
        return "a shielded anyio scope is not seen as one"
    return None


def _innermost(task: asyncio.Task[Any]) -> Any:
    state = _task_states.get(task)
    return None if state is None else state.cancel_scope


def _parent(scope: Any) -> Any:
    return scope._parent_scope


def _shielded(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is inside a shielded anyio scope right now."""
    state = _task_states.get(task)
    if state is None:  # the task never entered an anyio scope
        return False
    return _within_shield(state.cancel_scope)


def _within_shield(scope: Any) -> bool:
    """Whether ``scope`` (a task's innermost anyio scope) or one around it is
    shielded."""
    while scope is not None:
        if scope.shield:
            return True
        scope = _parent(scope)
    return False


# -- the scope ------------------------------------------------------------------------

#: ``NativeScope.state`` before any ``cancel()``; from ``cancel()`` on, the number of
#: requests made on the task and not yet taken back (0 or more); after a caught exit:
_NOT_CANCELLED = -1
_CAUGHT = -2


class NativeScope:
    """A task's own cancel scope, entered by hand around its coroutine, in the
    task's first step (or, for a registry block's body, made at its first need:
    ``late_scope``).

    ``cancel()`` cancels the task natively (``Task.cancel(MESSAGE)``) wherever it is
    parked outside anyio shields, and again at every checkpoint until the task
    leaves the scope (level-triggered). ``__exit__`` takes back every request it
    made and claims the cancellation only if no other request is still counted
    (3.11+: any other is foreign, since nothing encloses this scope) or if it
    carries tether's message (3.10).

    It has no deadline: a task with one gets anyio's scope (the backend's
    ``new_deadline_scope``), so that anyio-aware code in the task sees it.

    Two slots: every parked task holds one.
    """

    __slots__ = ("state", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None  # while entered
        self.state = _NOT_CANCELLED

    @property
    def cancelled_caught(self) -> bool:
        return self.state == _CAUGHT

    @property
    def deadline(self) -> float:
        return math.inf

    @deadline.setter
    def deadline(self, value: float, /) -> None:
        raise TypeError(
            "a NativeScope has no deadline: make the scope with the backend's "
            "new_deadline_scope(deadline=...)"
        )

    def cancel(self) -> None:
        if self.state == _NOT_CANCELLED:
            self.state = 0
            if self.task is not None:
                deliver([self])

    def __enter__(self) -> NativeScope:
        task = self.task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a task's scope is entered in an asyncio task")
        if self.state != _NOT_CANCELLED:
            deliver([self])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool:
        # Any: uncancel() and cancelling() are 3.11's (_COUNTED).
        task: Any = self.task
        self.task = None  # left: no further request is made
        requests = self.state
        if requests == _NOT_CANCELLED:
            return False
        self.state = 0
        if _COUNTED:
            while requests > 1:
                task.uncancel()
                requests -= 1
            # The requests left once ours are taken back (the last uncancel()
            # says how many, without a call more).
            if task.uncancel() if requests else task.cancelling():
                # Someone else asked too (the event loop ending, say): not ours to
                # swallow. asyncio may have folded both requests into one error
                # carrying either message, so only the count can tell.
                return False
        if isinstance(exc, asyncio.CancelledError):
            # 3.11+: the count has said it is ours (no call: every task that
            # tether cancels ends here).
            caught = _COUNTED or _ours(exc)
        elif isinstance(exc, BaseExceptionGroup):
            caught = self._claim_group(cast("BaseExceptionGroup[BaseException]", exc))
        else:
            caught = False
        if caught:
            self.state = _CAUGHT
        return caught

    def _claim_group(self, group: BaseExceptionGroup[BaseException]) -> bool:
        """Swallow tether's cancellations in ``group``; re-raise the rest."""
        ours, rest = group.split(
            lambda e: isinstance(e, asyncio.CancelledError) and _ours(e)
        )
        if ours is None:
            return False
        if rest is None:
            return True
        self.state = _CAUGHT
        context = rest.__context__
        try:
            raise rest
        finally:
            rest.__context__ = context  # as raised in the task, not from here
            del context


def current_effective_deadline() -> float:
    """``anyio.current_effective_deadline()`` in the running task (``-inf`` once
    cancelled), read from the same records as the shields: one lookup of the task,
    where anyio's own pays for a ``KeyError`` in a task that never entered an
    anyio scope, a tenth of a short-lived registry's time (issue #27 item 4)."""
    task = asyncio.current_task()
    state = None if task is None else _task_states.get(task)
    if state is None:
        return math.inf
    deadline = math.inf
    scope = state.cancel_scope
    while scope is not None:
        if scope.cancel_called:
            return -math.inf
        deadline = min(deadline, scope.deadline)
        if scope.shield:
            break
        scope = _parent(scope)
    return deadline


async def checkpoint_if_cancelled() -> None:
    """``anyio.lowlevel.checkpoint_if_cancelled()``: a checkpoint only if a scope
    around the running task (up to a shield) is cancelled, where anyio then
    delivers the cancellation."""
    if current_effective_deadline() == -math.inf:
        await asyncio.sleep(0)


def late_scope(task: object) -> NativeScope:
    """A scope for code already running in ``task``, as if it had been entered
    there: a native scope keeps no stack and reads the task's anyio shields when
    it delivers, so entering it late changes nothing it does (the backend's
    ``late_scope``)."""
    scope = NativeScope()
    scope.task = cast("asyncio.Task[Any]", task)
    return scope


def _ours(exc: BaseException) -> bool:
    """Whether a cancellation error is tether's (on 3.11+ the request count has
    already said so; 3.10 reads the message, here or in an error it replaced)."""
    if sys.version_info >= (3, 11):
        return True
    else:  # pragma: no cover - 3.10
        current: BaseException | None = exc
        while isinstance(current, asyncio.CancelledError):
            if current.args and current.args[0] == MESSAGE:
                return True
            current = current.__context__
        return False


# -- delivery -------------------------------------------------------------------------
#
# A cancelled scope's task is cancelled at once when it is parked outside every
# anyio shield, and looked at again by one loop callback for the whole batch, at
# each iteration, until it leaves its scope: a task that swallowed the cancellation
# is cancelled again at its next checkpoint. A task parked inside a shield is
# looked at again only when the future it is parked on completes, so a long
# shielded cleanup costs nothing while it waits, and its first checkpoint out of
# the shield raises.


def cancel_many(scopes: list[Scope], wake: list[Event] | None) -> None:
    """Cancel every scope (a :class:`NativeScope`, or anyio's for a task with a
    deadline), then set every event (a loop callback)."""
    deliver(scopes, first=True)
    for event in wake or ():
        event.set()


def deliver(scopes: list[NativeScope] | list[Scope], first: bool = False) -> None:
    """Cancel each scope's task where it can be now; look again at the rest at the
    next iteration of the loop, with one callback.

    ``first``: the scopes' first delivery (:func:`cancel_many`), in the same pass
    (a shutdown's batch is a hundred thousand scopes): each is marked cancelled
    here, one cancelled before is left alone, and anyio's scope of a task with a
    deadline is cancelled its own way."""
    again: list[NativeScope] = []
    shielded = _shielded_tasks(len(scopes))
    scope: Any  # a NativeScope, or with ``first`` anyio's
    for scope in scopes:
        if first:
            if type(scope) is not NativeScope:
                scope.cancel()  # anyio's, of a task with a deadline
                continue
            if scope.state != _NOT_CANCELLED:
                continue  # cancelled before: its delivery is under way
            scope.state = 0
        # Any: asyncio's private fields are read below (typeshed has neither).
        task: Any = scope.task
        if task is None:
            continue  # it left its scope (or has not entered it): done
        waiter = task._fut_waiter  # the future it is parked on, if it is
        if task in shielded:
            if waiter is not None and not waiter.done():
                waiter.add_done_callback(partial(_look_again, scope))
            else:  # running or about to: look again at the next iteration
                again.append(scope)
            continue
        if not task._must_cancel and (waiter is None or not waiter.done()):
            # (A task woken with a value takes it first, as anyio and trio do.)
            task.cancel(MESSAGE)
            scope.state += 1
        again.append(scope)
    if again:
        task = again[0].task
        assert task is not None
        task.get_loop().call_soon(deliver, again)


def _shielded_tasks(batch: int) -> Container[object]:
    """The tasks inside a shielded anyio scope now, for :func:`deliver` (no task
    runs while it delivers): for a large batch (a shutdown), a set made once from
    anyio's records when there are no more of them than tasks to look at, so
    that a task is one set lookup; else anyio's records asked per task."""
    if batch >= _BATCH:
        states: WeakKeyDictionary[object, Any] = _task_states
        if len(states) <= batch:
            return {
                task
                for task, state in states.items()
                if _within_shield(state.cancel_scope)
            }
    return _ASK_EACH


#: From how many scopes on :func:`_shielded_tasks` makes a set.
_BATCH = 32


class _AskEach:
    """``task in _ASK_EACH``: whether ``task`` is inside a shield, asked of
    anyio's records (a weak reference made per lookup)."""

    __slots__ = ()

    def __contains__(self, task: object) -> bool:
        return _shielded(cast("asyncio.Task[Any]", task))


_ASK_EACH = _AskEach()


def _look_again(scope: NativeScope, _future: object) -> None:
    # The future a shielded task was parked on is done, and the task has taken its
    # step (its own callback on the future came first): is it out of the shield?
    deliver([scope])
