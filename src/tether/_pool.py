"""Pool: a limit for one kind of work inside a registry.

A registry's ``limit`` counts every task spawned into it, follow-up work included:
with ``limit=2``, the notifications two running jobs spawn wait behind the queued
jobs. A pool (``registry.pool("jobs", limit=2)``) gives one kind of work its own
slots and queue, while its tasks stay the registry's in every other way: they
drain and are cancelled with it, their failures go to its ``on_error``, its
hooks see them, ``statistics()`` and ``dump()`` count them, and a pool task's
:func:`tether.spawn` goes to the registry, so its follow-ups never wait for the
pool's slots.

The pool owns a :class:`~tether._slots.Slots` and the set of its running tasks;
the registry spawns, launches and ends the tasks. A pool task carries the pool in
its :class:`~tether._handle.Annex`, and a done-callback, first among its
callbacks, hands the freed slot to the next in the pool's line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, overload

from typing_extensions import TypeVarTuple, Unpack, final

from ._handle import FAILED, FINISHED, Handle
from ._slots import Slots

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator
    from contextvars import Context

    from ._registry import RegistryStatistics, Stop, TaskRegistry

__all__ = ["Pool"]

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")


@final
class Pool:
    """A limit for one kind of work inside a :class:`~tether.TaskRegistry`: at most
    ``limit`` of its tasks run at once, the rest wait in its own FIFO queue (at
    most ``max_pending`` of them).

    Made by :meth:`TaskRegistry.pool() <tether.TaskRegistry.pool>`; not constructed
    by users. A pool has no lifetime of its own: its tasks are the registry's
    tasks in every other way. They drain and are cancelled when the registry
    closes (queued ones too), their failures go to the registry's ``on_error``,
    the registry's hooks see them, and the registry's ``statistics()``,
    ``len()``, iteration and ``dump()`` count them. A pool task's
    :func:`tether.spawn` spawns into the registry, not the pool, so the
    follow-up work of a job never waits for the pool's slots.

    .. versionadded:: 0.3
    """

    __slots__ = (
        "_cancelled",
        "_failed",
        "_name",
        "_registry",
        "_running",
        "_slots",
        "_spawned",
        "_succeeded",
    )

    def __init__(
        self,
        registry: TaskRegistry,
        name: str,
        limit: int,
        max_pending: int | None,
    ) -> None:
        self._registry = registry
        self._name = name
        self._slots = Slots(limit, max_pending, name)
        self._running: set[Handle[Any]] = set()
        self._spawned = self._succeeded = self._failed = self._cancelled = 0

    # -- spawning ------------------------------------------------------------------

    @overload
    def spawn(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    def spawn(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Start a task of the pool now, or queue it if all the pool's slots are
        busy; return its handle. Sync; never blocks.

        As :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`, with the
        pool's slots and queue in place of the registry's.

        Raises:
            TypeError: as :meth:`TaskRegistry.spawn <tether.TaskRegistry.spawn>`.
            RegistryClosed: the registry is not open (see its lifecycle).
            RegistryFull: every slot of the pool is busy and its queue is at
                ``max_pending``.
            RuntimeError: called from a thread other than the event loop's.
        """
        return self._registry._spawn_pooled(
            self, "spawn", fn, args, kwargs, name, context, daemon, stop, timeout
        )

    @overload
    async def spawn_when_free(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_free(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    async def spawn_when_free(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until one of the pool's slots is free, then spawn into it.

        As :meth:`TaskRegistry.spawn_when_free
        <tether.TaskRegistry.spawn_when_free>`, with the pool's slots: a
        checkpoint; callers wait FIFO in one line with the pool's queued tasks.
        """
        return await self._registry._spawn_when_free(
            self,
            "spawn_when_free",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    @overload
    async def spawn_when_room(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_room(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
    ) -> Handle[T]: ...
    async def spawn_when_room(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
        daemon: bool = False,
        stop: Stop | None = None,
        timeout: float | None = None,
        **kwargs: object,  # only to refuse them with a lesson
    ) -> Handle[Any]:
        """Wait until the task can start or wait in the pool's queue, then spawn
        it: aiojobs' ``spawn``, which waits while the pending queue is full.

        As :meth:`TaskRegistry.spawn_when_room
        <tether.TaskRegistry.spawn_when_room>`, with the pool's queue.
        """
        return await self._registry._spawn_when_room(
            self,
            "spawn_when_room",
            fn,
            args,
            kwargs,
            name,
            context,
            daemon,
            stop,
            timeout,
        )

    # -- what the registry asks of its pool ------------------------------------------

    def _admit(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context | None,
        copy: Callable[[], Context],
    ) -> None:
        """Start a new task of the pool, or queue it (or refuse it, closing
        ``coro``, if the queue is full). ``copy`` makes the context a queued task
        starts in when ``context`` is None."""
        slots = self._slots
        if slots.free(len(self._running)):
            self._registry._launch(
                handle, coro, None if context is None else context.copy()
            )
            self._running.add(handle)
        else:
            slots.enqueue(
                handle,
                coro,
                copy() if context is None else context.copy(),
                self._registry.name,
            )
        self._spawned += 1

    def _task_ended(self, handle: Handle[Any]) -> None:
        """The done-callback of every task of the pool, first of its callbacks."""
        status = handle._status
        if status is FINISHED:
            self._succeeded += 1
        elif status is FAILED:
            self._failed += 1
        else:  # CANCELLED: every task ends in one of the three
            self._cancelled += 1
        if handle in self._running:
            self._running.discard(handle)
            self._slot_freed()

    def _slot_freed(self) -> None:
        """Hand a free slot to the next in the pool's line, or let the registry
        note that it may be idle."""
        entry = self._slots.next_in_line()
        if type(entry) is Handle:
            coro, context = entry._value
            entry._value = None
            self._registry._launch(entry, coro, context)
            self._running.add(entry)
        elif entry is None:
            self._registry._notify_if_idle()

    def _busy(self) -> bool:
        """Whether anything waits in the pool's queue or holds a reserved place."""
        slots = self._slots
        return bool(slots.queued or slots.reserved or slots.room_reserved)

    # -- introspection ----------------------------------------------------------------

    def statistics(self) -> RegistryStatistics:
        """Return a frozen snapshot of the pool's own counters (never blocks);
        its tasks are in the registry's counters too. ``restarts`` is always 0:
        services are not spawned into pools."""
        from ._registry import RegistryStatistics

        return RegistryStatistics(
            spawned=self._spawned,
            queued=self._slots.queued,
            running=len(self._running),
            succeeded=self._succeeded,
            failed=self._failed,
            cancelled=self._cancelled,
        )

    def __len__(self) -> int:
        """The number of the pool's live tasks: running plus queued."""
        return len(self._running) + self._slots.queued

    def __iter__(self) -> Iterator[Handle[Any]]:
        """Iterate over a snapshot of the pool's live handles: running first, then
        queued."""
        return iter([*self._running, *self._slots.queued_handles()])

    @property
    def name(self) -> str:
        """The pool's name, unique in its registry."""
        return self._name

    @property
    def limit(self) -> int:
        """The most tasks of the pool that run at once."""
        return self._slots.limit

    @property
    def max_pending(self) -> int | None:
        """The most tasks that wait in the pool's queue, or ``None``."""
        return self._slots.max_pending

    @property
    def registry(self) -> TaskRegistry:
        """The registry the pool's tasks belong to."""
        return self._registry

    def _label(self) -> str:
        """The pool as ``dump()`` names it under its registry."""
        return (
            f"pool {self._name!r}: {len(self._running)} running, "
            f"{self._slots.queued} queued (limit {self._slots.limit})"
        )

    def __repr__(self) -> str:
        return (
            f"<tether.Pool {self._name!r} of {self._registry.name!r} "
            f"running={len(self._running)} queued={self._slots.queued} "
            f"limit={self._slots.limit}>"
        )
