"""TaskRegistry: the owner that holds every task it spawns until the task ends.

The hot path (spawn, run, finish, await) is written for speed: one handle, one
backend task and one cancel scope per task, no done-callbacks, no per-task events
until somebody waits on an unfinished task. The backend is detected in
``__aenter__``: a raw asyncio task in its own ``anyio.CancelScope`` on asyncio, a
nursery task in its own shielded ``trio.CancelScope`` on trio. Lifecycle and error
policy live in :mod:`tether._lifecycle`.
"""

from __future__ import annotations

import sys
from collections import deque
from contextvars import Context, copy_context
from dataclasses import dataclass
from threading import get_ident
from types import FunctionType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, overload

from typing_extensions import Self, TypeVarTuple, Unpack

from ._calls import close_if_coroutine, coroutine_from, name_of, spawn_site
from ._control import Control
from ._exceptions import RegistryFull
from ._handle import CANCELLED, CANCELLING, FAILED, FINISHED, QUEUED, RUNNING, Handle
from ._lifecycle import NEW, OPEN, RegistryState, SlotWaiter, lineage

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

__all__ = ["OnError", "RegistryStatistics", "TaskRegistry"]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")

OnError: TypeAlias = (
    "Literal['raise', 'log'] | Callable[[Handle[Any], Exception], None]"
)

_new_handle = object.__new__
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect


@dataclass(frozen=True, slots=True)
class RegistryStatistics:
    """A snapshot of a registry's counters; ``spawned`` is always the sum of the
    other five.

    .. versionadded:: 0.1
    """

    spawned: int
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class TaskRegistry(Control):
    """The owner of background tasks: it holds every task until the task ends.

    ``async with TaskRegistry() as tasks:`` opens it and binds it as the ambient
    registry for :func:`tether.spawn`; leaving the block waits for the tasks (up to
    ``shutdown_timeout``), then cancels what is left, so no task outlives it. The
    full lifecycle, error policies and limits are described in the semantics page.

    Entering does not block. Leaving blocks until every task has ended.

    Args:
        name: shown in ``repr``, log records and error messages.
        on_error: what a failing task does: ``"log"`` (the default) isolates it, and
            reports the failure once on logger ``"tether"`` unless an awaiter
            receives it; ``"raise"`` cancels everything and raises an
            ``ExceptionGroup`` from the ``async with``, like a task group; a callable
            ``(handle, exception) -> None`` isolates and reports to the callable.
        limit: at most this many tasks run at once; the rest wait FIFO in a queue.
        max_pending: bound on that queue (needs ``limit``); a spawn beyond it raises
            :exc:`~tether.RegistryFull`.
        shutdown_timeout: seconds the registry waits for its tasks once the body
            has ended normally, before it cancels them (``None``: no limit).
        debug: record in each handle where it was spawned (``handle.spawned_at``).

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_debug",
        "_limit",
        "_live",
        "_max_pending",
        "_queue",
        "_queued",
    )

    def __init__(
        self,
        *,
        name: str = "registry",
        on_error: OnError = "log",
        limit: int | None = None,
        max_pending: int | None = None,
        shutdown_timeout: float | None = None,
        debug: bool = False,
    ) -> None:
        Control.__init__(self, name, on_error, shutdown_timeout)
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ValueError(
                f"TaskRegistry(limit={limit!r}): limit must be a whole number >= 1, or "
                "None for no limit"
            )
        if max_pending is not None:
            if limit is None:
                raise ValueError(
                    f"TaskRegistry(max_pending={max_pending!r}) needs a limit: "
                    f"TaskRegistry(limit=10, max_pending={max_pending!r})"
                )
            if (
                not isinstance(max_pending, int)
                or isinstance(max_pending, bool)
                or max_pending < 0
            ):
                raise ValueError(
                    f"TaskRegistry(max_pending={max_pending!r}): max_pending must be "
                    "a whole number >= 0, or None for an unbounded queue"
                )
        self._limit = limit
        self._max_pending = max_pending
        self._debug = debug
        # Live (running or cancelling) handles, each with its asyncio task: the
        # strong reference that keeps the task from being garbage-collected.
        self._live: dict[Handle[Any], object] = {}
        self._queue: deque[Handle[Any] | SlotWaiter] = deque()
        self._queued = 0

    # -- spawning ------------------------------------------------------------------

    @overload
    def spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[T]: ...
    @overload
    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[T]: ...
    def spawn(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[Any]:
        """Start a task now and return its handle. Sync; never blocks.

        ``spawn(fn, *args)`` calls the async function ``fn`` here, which only creates
        its coroutine, so a wrong argument fails at this call; keyword arguments go
        through :func:`functools.partial`. ``spawn(coro)`` takes a coroutine object.
        The task first runs at the caller's next checkpoint, never inside ``spawn``
        (even under asyncio's ``eager_task_factory``), in a copy of the caller's
        context, or of ``context``. With a ``limit`` and no free slot the task is
        queued (``status`` is ``QUEUED``) and starts, FIFO, when a slot frees.

        Args:
            fn: an async function, or a coroutine object.
            *args: positional arguments for ``fn``.
            name: the task's name; default ``fn.__qualname__``.
            context: run the task in a copy of this context instead.

        Raises:
            TypeError: ``fn`` is not an async function or coroutine object, or the
                arguments do not fit it. A coroutine object given is closed.
            RegistryClosed: the registry is not open (see its lifecycle).
            RegistryFull: every slot is busy and the queue is at ``max_pending``.
            RuntimeError: called from a thread other than the event loop's.
        """
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        if get_ident() != self._thread:
            self._refuse_thread(fn)
        # The common case, an async function, is checked inline: this is the
        # per-task hot path, and coroutine_from handles everything else.
        if type(fn) is FunctionType and fn.__code__.co_flags & _CO_COROUTINE:
            try:
                coro = fn(*args)
            except TypeError:
                coro = coroutine_from(fn, args, "spawn")  # raises the teaching error
            if name is None:
                name = fn.__qualname__
        else:
            coro = coroutine_from(fn, args, "spawn")
            if name is None:
                name = name_of(fn)
        handle = self._make_handle(name)
        self._submit(handle, coro, context)
        return handle

    def _make_handle(self, name: str) -> Handle[Any]:
        handle: Handle[Any] = _new_handle(Handle)
        handle._registry = self
        handle._name = name
        handle._scope = None
        handle._event = None
        handle._spawned_at = spawn_site() if self._debug else None
        return handle

    def _refuse_thread(self, fn: object) -> None:
        close_if_coroutine(fn)
        raise RuntimeError(
            f"TaskRegistry.spawn() of registry {self._name!r} was called outside its "
            "event loop's thread. From another thread, use "
            "registry.spawn_threadsafe(fn, *args)"
        )

    def _submit(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
    ) -> None:
        limit = self._limit
        if limit is not None and len(self._live) + self._reserved >= limit:
            if self._max_pending is not None and self._queued >= self._max_pending:
                coro.close()
                raise RegistryFull(
                    f"TaskRegistry {self._name!r} has all {limit} slots busy and "
                    f"{self._queued} tasks queued (max_pending={self._max_pending}); "
                    f"task {handle._name!r} was not spawned. Wait for room with "
                    "`await registry.spawn_when_free(fn, *args)`, or raise max_pending"
                )
            handle._status = QUEUED
            handle._coro = coro
            handle._context = copy_context() if context is None else context.copy()
            self._queue.append(handle)
            self._queued += 1
            self._spawned += 1
            return
        self._spawned += 1
        if context is None and not self._trio:
            handle._status = RUNNING
            self._live[handle] = self._create_task(
                self._run(handle, coro), name=handle._name
            )
        else:
            self._launch(handle, coro, context)

    def _launch(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
    ) -> None:
        handle._status = RUNNING
        name = handle._name
        if self._trio:
            self._live[handle] = None
            if context is None:
                self._spawn_soon(self._run, handle, coro, name=name)
            else:
                context.run(self._spawn_soon, self._run, handle, coro, name=name)
        elif context is None:
            self._live[handle] = self._create_task(self._run(handle, coro), name=name)
        elif sys.version_info >= (3, 11):
            self._live[handle] = self._create_task(
                self._run(handle, coro), name=name, context=context.copy()
            )
        else:  # pragma: no cover - 3.10's create_task has no context argument
            self._live[handle] = context.run(
                self._create_task, self._run(handle, coro), name=name
            )

    async def _run(self, handle: Handle[Any], coro: Coroutine[Any, Any, Any]) -> None:
        if handle._status is CANCELLING:
            # Cancelled before its first step: it never runs.
            coro.close()
            handle._status = CANCELLED
            handle._exc = None
            self._cancelled += 1
            self._release(handle)
            return
        owners = lineage.get()
        if self not in owners:
            lineage.set((*owners, self))
        scope = handle._scope = self._scope_factory()
        try:
            with scope:
                handle._value = await coro
        except BaseException as exc:
            self._task_raised(handle, exc)
            if isinstance(exc, GeneratorExit):
                raise
            return
        # Only our own cancel() can make the scope catch a cancellation, and it
        # sets CANCELLING first: the cheap test goes first. (pyright keeps the
        # narrowing from the first-step test above across the await.)
        if (
            handle._status is CANCELLING  # pyright: ignore[reportUnnecessaryComparison]
            and scope.cancelled_caught
        ):
            handle._status = CANCELLED
            handle._exc = None
            self._cancelled += 1
        else:
            handle._status = FINISHED
            self._succeeded += 1
        # _release(handle), inlined: this is every task's last step.
        del self._live[handle]
        if handle._event is not None:
            handle._event.set()
        if self._queue or not self._live:
            self._slot_freed()

    def _task_raised(self, handle: Handle[Any], exc: BaseException) -> None:
        if isinstance(exc, Exception):
            handle._exc = exc
            handle._delivered = False
            handle._status = FAILED
            self._failed += 1
            self._release(handle)
            self._task_failed(handle, exc)
            return
        handle._status = CANCELLED
        handle._exc = None
        self._cancelled += 1
        if not isinstance(exc, self._cancelled_exc | GeneratorExit):
            # KeyboardInterrupt, SystemExit: never an on_error matter.
            handle._exc = exc
            self._release(handle)
            self._base_exception(exc)
            return
        self._release(handle)

    def _release(self, handle: Handle[Any]) -> None:
        """Bookkeeping once a running task has ended: free its slot, wake waiters."""
        del self._live[handle]
        if handle._event is not None:
            handle._event.set()
        if self._queue or not self._live:  # else: no slot to hand on, not idle
            self._slot_freed()

    def _slot_freed(self) -> None:
        if self._queue and self._hand_off_slot():
            return
        self._maybe_idle()

    def _hand_off_slot(self) -> bool:
        """Give a freed slot to the oldest queued task or ``spawn_when_free`` caller."""
        queue = self._queue
        while queue:
            entry = queue.popleft()
            if type(entry) is Handle:
                if entry._status is QUEUED:
                    self._queued -= 1
                    coro, context = entry._coro, entry._context
                    entry._coro = entry._context = None
                    assert coro is not None
                    self._launch(entry, coro, context)
                    return True
            elif isinstance(entry, SlotWaiter) and entry.grant():
                self._reserved += 1
                return True
        return False

    def _cancel_task(self, handle: Handle[Any]) -> None:
        if handle._status is QUEUED:
            self._drop_queued(handle)
        elif handle._status is RUNNING:
            handle._status = CANCELLING
            if handle._scope is not None:
                handle._scope.cancel()

    def _drop_queued(self, handle: Handle[Any]) -> None:
        coro = handle._coro
        handle._coro = handle._context = None
        handle._status = CANCELLED
        handle._exc = None
        self._queued -= 1
        self._cancelled += 1
        if coro is not None:
            coro.close()
        if handle._event is not None:
            handle._event.set()
        self._maybe_idle()

    # -- introspection ----------------------------------------------------------------

    def statistics(self) -> RegistryStatistics:
        """Return a frozen snapshot of the counters (never blocks)."""
        return RegistryStatistics(
            spawned=self._spawned,
            queued=self._queued,
            running=len(self._live),
            succeeded=self._succeeded,
            failed=self._failed,
            cancelled=self._cancelled,
        )

    def __len__(self) -> int:
        """The number of live tasks: running (or cancelling) plus queued."""
        return len(self._live) + self._queued

    def __iter__(self) -> Iterator[Handle[Any]]:
        """Iterate over a snapshot of the live handles: running first, then queued."""
        queued = [e for e in self._queue if type(e) is Handle and e._status is QUEUED]
        return iter([*self._live, *queued])

    @property
    def name(self) -> str:
        """The registry's name."""
        return self._name

    @property
    def state(self) -> RegistryState:
        """The registry's lifecycle state."""
        return self._state

    @property
    def limit(self) -> int | None:
        """The most tasks that run at once, or ``None``."""
        return self._limit

    def __repr__(self) -> str:
        limit = "" if self._limit is None else f" limit={self._limit}"
        return (
            f"<tether.TaskRegistry {self._name!r} {self._state.name} "
            f"running={len(self._live)} queued={self._queued}{limit}>"
        )

    # -- entering and leaving -------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Open the registry and bind it as the ambient registry for the body.

        Not a checkpoint on asyncio. Raises :exc:`~tether.RegistryClosed` if the
        registry was entered before (registries are single-use).
        """
        if self._state is not NEW:
            self._raise_closed(
                f"{self._state.name} and was entered again: a TaskRegistry is "
                "single-use, make a new one"
            )
        self._thread = get_ident()
        await self._enter_backend()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Close the registry: wait for the tasks (drain), cancel what is left, and
        raise as ``on_error`` says. Blocks until every task has ended."""
        return await self._exit(exc)
