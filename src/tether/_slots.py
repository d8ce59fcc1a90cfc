"""A registry's slots: ``limit``, the FIFO queue, ``spawn_when_free`` and
``spawn_when_room`` waiters.

:class:`Slots` exists only for a registry made with a ``limit``, and for each of
its pools: without one every spawn starts at once and none of this runs. It owns
the queue and its counters and decides who gets a freed slot, or a freed place in
a queue bounded by ``max_pending``; the registry starts what it is handed.

Entries that leave the queue early (a queued task cancelled, a waiter that gave up)
are not searched for: they are marked dead and skipped when they reach the front,
and the queue is rebuilt without them once they are the larger part of it, so a
program that keeps cancelling queued work holds memory for its live entries only.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ._exceptions import RegistryFull
from ._handle import QUEUED, Handle

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator
    from contextvars import Context

    from ._backend import Event

__all__ = ["SlotWaiter", "Slots"]

# Rebuild the queue once this many dead entries make up more than half of it.
_COMPACT_AFTER = 64


class SlotWaiter:
    """A ``spawn_when_free`` caller waiting in the queue for a slot, or a
    ``spawn_when_room`` caller waiting for a place in a full queue."""

    __slots__ = ("closed", "event", "gone", "granted")

    def __init__(self, event: Event) -> None:
        self.event: Event = event
        self.granted: bool = False  # a slot was reserved for it
        self.closed: bool = False  # the registry closed while it waited
        self.gone: bool = False  # the caller stopped waiting (cancelled)


class Slots:
    """At most ``limit`` tasks run at once; the rest wait here, first in first out.

    ``reserved`` counts slots granted to ``spawn_when_free`` callers that have not
    spawned yet: they count as taken, so a plain spawn cannot steal them.
    ``room_reserved`` does the same for places in the queue granted to
    ``spawn_when_room`` callers, who wait apart, FIFO, in ``_room``.
    """

    __slots__ = (
        "_dead",
        "_queue",
        "_room",
        "limit",
        "max_pending",
        "pool",
        "queued",
        "reserved",
        "room_reserved",
    )

    def __init__(
        self, limit: int, max_pending: int | None, pool: str | None = None
    ) -> None:
        self.limit: int = limit
        self.max_pending: int | None = max_pending
        self.pool: str | None = pool  # a pool's name, for RegistryFull
        self.queued: int = 0
        self.reserved: int = 0
        self.room_reserved: int = 0
        self._queue: deque[Handle[Any] | SlotWaiter] = deque()
        self._room: deque[SlotWaiter] = deque()
        self._dead = 0

    def free(self, running: int) -> bool:
        """Whether a spawn may start now, with ``running`` tasks running."""
        return running + self.reserved < self.limit

    def waiting(self) -> bool:
        """Whether anything waits for a slot (dead entries included)."""
        return bool(self._queue)

    def enqueue(
        self,
        handle: Handle[Any],
        coro: Coroutine[Any, Any, Any],
        context: Context,
        registry: str,
    ) -> None:
        """Queue a task to start when a slot frees, or refuse it if the queue is
        full (closing ``coro``)."""
        if not self.has_room():
            coro.close()
            owner, spawner = (
                (f"TaskRegistry {registry!r}", "registry")
                if self.pool is None
                else (f"pool {self.pool!r} of TaskRegistry {registry!r}", "pool")
            )
            raise RegistryFull(
                f"{owner} has all {self.limit} slots busy and "
                f"{self.queued} tasks queued (max_pending={self.max_pending}); "
                f"task {handle.name_!r} was not spawned. Wait for a slot with "
                f"`await {spawner}.spawn_when_free(fn, *args)`, or for room in "
                f"the queue with `await {spawner}.spawn_when_room(fn, *args)`, "
                "or raise max_pending"
            )
        handle.status_ = QUEUED
        handle.value_ = (coro, context)
        self._queue.append(handle)
        self.queued += 1

    def has_room(self) -> bool:
        """Whether a spawn that finds no free slot may wait in the queue."""
        return (
            self.max_pending is None
            or self.queued + self.room_reserved < self.max_pending
        )

    def wait_for_room(self, event: Event) -> SlotWaiter:
        """Queue a ``spawn_when_room`` caller; ``event`` is set when it is granted
        a place in the queue or the registry closes."""
        waiter = SlotWaiter(event)
        self._room.append(waiter)
        return waiter

    def claim_room(self) -> None:
        """A granted room waiter spawns: its place becomes a queued task (or a
        running one, if a slot is free by then)."""
        self.room_reserved -= 1

    def gave_up_room(self, waiter: SlotWaiter) -> None:
        """A room waiter stopped waiting (cancelled, or the registry refused its
        spawn); gives its place to the next if it had one."""
        waiter.gone = True
        if waiter.granted:
            self.room_reserved -= 1
            self.grant_room()
        elif not waiter.closed:  # a closed one has left the line already
            self._room.remove(waiter)

    def grant_room(self) -> None:
        """Places in the queue freed: grant them to the oldest room waiters."""
        room = self._room
        while room and self.has_room():
            waiter = room.popleft()
            waiter.granted = True
            self.room_reserved += 1
            waiter.event.set()

    def unqueued(self) -> None:
        """A handle taken by :meth:`take_queued` is closed: one fewer queued."""
        self.queued -= 1
        if self._room:
            self.grant_room()

    def wait_for_slot(self, event: Event) -> SlotWaiter:
        """Queue a ``spawn_when_free`` caller; ``event`` is set when it is granted
        a slot or the registry closes."""
        waiter = SlotWaiter(event)
        self._queue.append(waiter)
        return waiter

    def next_in_line(self) -> Handle[Any] | SlotWaiter | None:
        """Take the oldest live entry for a freed slot: a queued handle (status
        still QUEUED, its ``_value`` the coroutine and context), or a waiter now
        granted its reservation. ``None`` if nothing waits."""
        queue = self._queue
        while queue:
            entry = queue.popleft()
            if type(entry) is Handle:
                if entry.status_ is QUEUED:
                    self.queued -= 1
                    if self._room:
                        self.grant_room()
                    return entry
                self._dead -= 1
            elif isinstance(entry, SlotWaiter):
                if not entry.gone:
                    entry.granted = True
                    self.reserved += 1
                    entry.event.set()
                    return entry
                self._dead -= 1
        return None

    def dropped(self) -> None:
        """A queued handle was cancelled where it stands (its status is no longer
        QUEUED, and :meth:`next_in_line` will skip it)."""
        self.queued -= 1
        self._one_dead()
        if self._room:
            self.grant_room()

    def gave_up(self, waiter: SlotWaiter) -> None:
        """A waiter stopped waiting; returns its reservation if it had one."""
        waiter.gone = True
        if waiter.granted:
            self.reserved -= 1
        else:
            self._one_dead()

    def _one_dead(self) -> None:
        self._dead += 1
        if self._dead > _COMPACT_AFTER and 2 * self._dead > len(self._queue):
            self._queue = deque(e for e in self._queue if _alive(e))
            self._dead = 0

    def take_queued(self, *, closing: bool) -> tuple[list[Handle[Any]], list[Event]]:
        """Empty the queue of its tasks and return them, for the registry to cancel
        (and count down ``queued`` for each).

        With ``closing``, waiters leave the queue too, marked closed, and their
        events are returned for the registry to set once it has cancelled its
        tasks (a waiter may be one of them); room waiters with them. Otherwise
        (``cancel_all``) waiters keep their places, and room waiters are granted
        the places as :meth:`unqueued` frees them.
        """
        handles: list[Handle[Any]] = []
        wake: list[Event] = []
        waiters: deque[Handle[Any] | SlotWaiter] = deque()
        for entry in self._queue:
            if type(entry) is Handle:
                if entry.status_ is QUEUED:
                    handles.append(entry)
            elif isinstance(entry, SlotWaiter) and not entry.gone:
                if closing:
                    entry.closed = True
                    wake.append(entry.event)
                else:
                    waiters.append(entry)
        self._queue = waiters
        self._dead = 0
        if closing:
            for waiter in self._room:
                waiter.closed = True
                wake.append(waiter.event)
            self._room.clear()
        # `queued` still counts them: the registry counts each down as it closes
        # it, so that statistics() adds up inside the hooks it calls meanwhile.
        return handles, wake

    def claim(self) -> None:
        """A granted waiter spawns: its reservation becomes a running task."""
        self.reserved -= 1

    def queued_handles(self) -> Iterator[Handle[Any]]:
        """The queued handles, oldest first."""
        return (e for e in self._queue if type(e) is Handle and e.status_ is QUEUED)


def _alive(entry: Handle[Any] | SlotWaiter) -> bool:
    if type(entry) is Handle:
        return entry.status_ is QUEUED
    assert isinstance(entry, SlotWaiter)
    return not entry.gone and not entry.granted
