"""The one engine under the gather family: run_all, settle_all, race,
as_completed and amap.

Every started input is a child task of tether's own, started through the backend
seam, held by a strong reference in :attr:`Engine.tasks` until it ends, and run in
its own cancel scope. The variations are data (:class:`Mode`), not code:

- ``FAIL_FAST`` (run_all): the first failure stops the run and is raised;
- ``SETTLE`` (settle_all): every outcome is kept;
- ``RACE`` (race): the first success stops the run;
- ``STREAM`` (as_completed, amap): outcomes go to a bounded buffer that the
  consumer reads; the first failure stops the run and is raised to it (or,
  with ``keep_going``, is delivered in place as the item's result).

With ``item_timeout``, each child's own scope gets a deadline when the child first
runs (after its slot freed): a child that its scope cancels while the run is not
stopping has outlived it, and its outcome is a ``TimeoutError``.

One rule tells the engine's own cancellations from foreign ones, on every backend:
the backend seam's :func:`~tether._backend.leave_scope`, which a registry's tasks
follow too. The engine cancels a child only through the child's scope, so a
cancellation that scope catches is the engine's, and one that escapes it is the
input's own outcome (it awaited a cancelled future, or raised the backend's
cancellation itself).
Children never inherit the caller's cancel scopes or deadlines; the engine cancels
them when the caller is cancelled, times out or leaves, and waits for them.

Nothing starts before the caller awaits (or enters); a callable input is called
only when its slot frees, and every coroutine that never started is closed.
"""

from __future__ import annotations

import enum
import functools
import math
import reprlib
import sys
from collections import deque
from types import CoroutineType
from typing import TYPE_CHECKING, Any, cast

import anyio

from ._backend import Ending, ki_protected, leave_scope
from ._calls import close_if_coroutine
from ._dump import (
    Node,
    await_chain,
    enter_gather,
    gathers_under,
    leave_gather,
    snapshot,
)
from ._handle import CANCELLED, FAILED, FINISHED, Handle
from ._inputs import await_handle, foreign_cancellation, input_coroutine
from ._log import logger

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator

    # At run time anyio.lowlevel is read as an attribute of anyio, which imports it
    # on first use (anyio 4.16; earlier ones import it with the package).
    import anyio.lowlevel  # noqa: TC004

    from ._backend import Backend, Scope, Waker

__all__ = ["MISSING", "Engine", "Mode", "add_note"]


class Missing(enum.Enum):
    """The type of :data:`MISSING`: a sentinel with a type of its own."""

    MISSING = "missing"


#: A result slot not filled (yet), and a race not won (yet).
MISSING = Missing.MISSING

_DRIVER = -1  # the child id of a stream's driver task


class Mode(enum.Enum):
    """What the engine does with each outcome."""

    FAIL_FAST = "run_all"
    SETTLE = "settle_all"
    RACE = "race"
    STREAM = "stream"


# The modes whose success is a result in place, looked up once for _child().
_FAIL_FAST = Mode.FAIL_FAST
_SETTLE = Mode.SETTLE


class Engine:
    """One run of the gather family, from start to the last child's end.

    Every field is a slot, set in ``__init__``: a field read through the class
    until a run set its own cost every child a slow attribute lookup. What only
    some runs need is made when first needed (``watching``, ``handles``,
    ``lost``), or only in the modes that use it (``results``, ``buffer``):
    containers made and freed for nothing were most of the cost of making an
    engine, itself the largest of a one-handle gather (issue #27 item 4).
    """

    __slots__ = (
        "api",
        "backend",
        "base_exc",
        "buffer",
        "burst",
        "caller",
        "create_task",
        "driver_done",
        "first",
        "first_key",
        "first_seen",
        "handles",
        "in_flight",
        "item_timeout",
        "keep_going",
        "limit",
        "lost",
        "mode",
        "new_scope",
        "next",
        "period",
        "ready",
        "results",
        "scopes",
        "stopping",
        "tasks",
        "tat",
        "timed_out",
        "wake",
        "watching",
        "winner",
    )

    def __init__(
        self,
        backend: Backend,
        mode: Mode,
        limit: int | None = None,
        per_second: float | None = None,
        burst: int = 1,
        size: int = 0,
        item_timeout: float | None = None,
        keep_going: bool = False,
        api: str | None = None,
    ) -> None:
        #: The function the user called, as messages and tether.dump() name it.
        # (``_value_``: ``value`` is a descriptor written in Python, #27.)
        self.api: str = mode._value_ if api is None else api
        self.backend = backend
        # Looked up once: they run once per child.
        self.create_task: Callable[..., object] = backend.create_task
        self.new_scope = backend.new_scope
        self.mode = mode
        self.limit = limit
        self.period = None if per_second is None else 1.0 / per_second
        self.burst = burst
        #: Seconds each child may run, from its first step (None: no limit).
        self.item_timeout = item_timeout
        #: STREAM only: a failure is delivered as its item's result, not raised.
        self.keep_going = keep_going
        #: The task that awaits the run (or reads the stream), for tether.dump().
        self.caller: object = None
        self.tat = -math.inf
        if mode is Mode.STREAM:
            #: ``(key, result)`` pairs waiting for the consumer (STREAM only).
            self.buffer: deque[tuple[Any, Any]] = deque()
        else:
            #: Results by input position (every mode but STREAM).
            self.results: list[Any] = [MISSING] * size
        #: The strong references that keep each child task alive, by child id.
        self.tasks: dict[int, object] = {}
        self.scopes: dict[int, Scope] = {}
        # Made when first needed (most runs need none of them):
        #: Handles waited for without a task of their own, by child id.
        self.watching: dict[int, tuple[Handle[Any], Callable[..., object]]] | None
        self.watching = None
        #: The handles among the inputs, by key: a failure of one that nobody will
        #: raise goes back to its registry to report, as if nobody had awaited it.
        self.handles: dict[Any, Handle[Any]] | None = None
        #: Failures nobody will raise, to report as the run ends.
        self.lost: list[tuple[Any, Exception]] | None = None
        self.next = 0
        self.in_flight = 0
        self.stopping = False
        self.driver_done = False
        self.first: BaseException | None = None
        self.first_key: Any = None
        self.first_seen = False  # raised to the caller or the consumer
        self.base_exc: BaseException | None = None
        self.winner: int | Missing = MISSING
        self.timed_out = False
        self.wake: Waker | None = None  # the driver's
        self.ready: Waker | None = None  # the consumer's

    # -- driving a list of inputs (run_all, settle_all, race) ------------------------

    def run(
        self, inputs: list[Any], timeout: float | None
    ) -> Coroutine[Any, Any, None]:
        """Run every input, stopping early as the mode says or when ``timeout``
        expires (then ``timed_out`` is set); to be awaited, which returns once
        every child has ended. (Not itself a coroutine: one layer fewer, #27.)"""
        if self.backend.holds_children:
            return self._run_held(inputs, timeout)
        return self._run(inputs, timeout)

    async def _run_held(self, inputs: list[Any], timeout: float | None) -> None:
        # trio: the children are the caller's own nursery children (#26).
        async with self.backend.children() as spawn:
            if spawn is not None:
                self.create_task = spawn
            await self._run(inputs, timeout)

    async def _run(self, inputs: list[Any], timeout: float | None) -> None:
        caller = self.caller = self.backend.current_task()
        enter_gather(caller, self)
        try:
            if timeout is None:
                await self._drive(inputs)
            else:
                with anyio.move_on_after(timeout) as scope:
                    await self._drive(inputs)
                self.timed_out = scope.cancelled_caught
        finally:
            try:
                for index in range(self.next, len(inputs)):
                    close_if_coroutine(inputs[index])
                    inputs[index] = None
                if self.in_flight or self.tasks or self.lost:
                    await self._finish()
            finally:
                leave_gather(caller, self)

    async def _drive(self, inputs: list[Any]) -> None:
        total, limit = len(inputs), self.limit
        # A caller already cancelled (or timeout=0) starts nothing, on every backend.
        await self.backend.checkpoint_if_cancelled()  # no anyio dispatch (#27)
        while True:
            while (
                self.next < total
                and not self.stopping
                and (limit is None or self.in_flight < limit)
            ):
                if self.period is not None and not await self._rate_gate():
                    break
                index = self.next
                self.next += 1
                item = inputs[index]
                inputs[index] = None  # started: the child owns it now
                self._start(index, index, item)
            if self.stopping or (self.in_flight == 0 and self.next >= total):
                return
            await self._sleep()

    async def _finish(self) -> None:
        """Stop what still runs and wait for it, whatever ended the run; log the
        failures that came after the run stopped and that nobody will see."""
        if self.in_flight or self.tasks:
            self.stop()
            with anyio.CancelScope(shield=True):
                while self.in_flight or self.tasks:
                    await self._sleep()
        lost, self.lost = self.lost, None
        for key, exc in lost or ():
            handle = self.handles.get(key) if self.handles else None
            if handle is not None and handle.value_ is exc:
                handle.redeliver_()  # its registry reports it, with its name
                continue
            logger.error(
                "%s %s failed %s: nothing else will report it",
                self.mode.value if self.mode is not Mode.STREAM else "stream",
                self._describe(key),
                "while it was being cancelled, after the run had stopped"
                if self.mode is not Mode.STREAM
                else "after the consumer had stopped reading",
                exc_info=exc,
                extra={"tether_registry": None, "tether_task": None},
            )

    async def _sleep(self) -> None:
        wake = self.wake = self.backend.new_waker()
        await wake.wait()

    async def _rate_gate(self) -> bool:
        # GCRA: `tat` is the theoretical arrival time of the next start; up to
        # `burst` starts may run ahead of it, then starts are `period` apart.
        period = self.period
        assert period is not None
        now = anyio.current_time()
        tat = max(self.tat, now)
        allowed_at = tat - (self.burst - 1) * period
        if allowed_at > now:
            # Sleep until the start is allowed, but wake when a child stops the run:
            # a failure must not wait for the next rate slot to be raised.
            with anyio.CancelScope(deadline=allowed_at):
                while not self.stopping:
                    await self._sleep()
            self.wake = None
            if self.stopping:
                return False
        else:
            await anyio.lowlevel.checkpoint()
        self.tat = tat + period
        return not self.stopping  # a child may have failed during the checkpoint

    # -- driving a stream (as_completed, amap) ----------------------------------------

    def start_stream(
        self,
        items: Iterator[Any] | AsyncIterator[Any],
        make: Callable[[Any], tuple[Any, Coroutine[Any, Any, Any]]],
    ) -> None:
        """Start the driver task that feeds ``items`` through ``make`` (item to
        ``(key, coroutine)``) into children, as room in the buffer allows."""
        self.tasks[_DRIVER] = self.create_task(
            self._feed, items, make, name="tether stream driver"
        )
        self._entered()

    def start_listed(self, inputs: list[Any]) -> None:
        """Start every input of a stream at once, with no driver task: for inputs
        that all fit the limit and run no user code to start (coroutines, handles,
        futures). The stream then ends when the last of them has."""
        for index, item in enumerate(inputs):
            inputs[index] = None  # started: the child owns it now
            self.next += 1
            self._start(index, index, item)
        self.driver_done = True
        caller = self.caller = self.backend.current_task()  # _entered(), inline
        enter_gather(caller, self)

    @ki_protected  # on trio: bookkeeping
    async def _feed(
        self,
        items: Iterator[Any] | AsyncIterator[Any],
        make: Callable[[Any], tuple[Any, Coroutine[Any, Any, Any]]],
    ) -> None:
        scope = self.scopes[_DRIVER] = self.new_scope()
        limit = self.limit
        assert limit is not None
        is_async = hasattr(items, "__anext__")
        try:
            with scope:
                while True:
                    # As if `limit` workers each ran one input and then held its
                    # result until the `limit`-deep buffer had room: at most
                    # `limit` inputs run, and results wait for the consumer in
                    # the buffer or in a worker, never more than `2 * limit`.
                    while (
                        not self.stopping
                        and self.in_flight < limit
                        and self.in_flight + len(self.buffer) < 2 * limit
                    ):
                        if self.period is not None and not await self._rate_gate():
                            break
                        try:
                            if is_async:
                                item = await cast(
                                    "AsyncIterator[Any]", items
                                ).__anext__()
                            else:
                                item = next(cast("Iterator[Any]", items))
                        except (StopIteration, StopAsyncIteration):
                            self.driver_done = True
                            break
                        try:
                            key, coro = make(item)
                        except Exception as exc:
                            self._failed(item, exc)
                            break
                        child = self.next
                        self.next += 1
                        self._start(child, key, coro)
                    if self.stopping or (self.driver_done and self.in_flight == 0):
                        return
                    await self._sleep()
        except Exception as exc:  # iterating the items failed
            self.keep_going = False  # never an item's result: it ends the stream
            self._failed("iterating the items", exc)
        finally:
            self.driver_done = True
            self.scopes.pop(_DRIVER, None)
            # Stopped early: close an async generator now, while its event loop
            # runs, rather than leave it to the collector (trio warns then).
            aclose = getattr(items, "aclose", None)
            if aclose is not None and self.stopping:
                try:
                    await aclose()
                finally:
                    self._driver_ended()
            else:
                self._driver_ended()

    def _driver_ended(self) -> None:
        self.tasks.pop(_DRIVER, None)
        self._wake_consumer()
        self._wake_driver()  # an _finish() waiting for the driver

    async def next_result(self) -> tuple[Any, Any]:
        """The next ``(key, result)`` for the consumer; raises the first failure,
        or ``StopAsyncIteration`` when everything has been delivered. A checkpoint:
        it waits for the next outcome, or, when one is there already, checkpoints
        (once per call either way: a one-item stream paid for a checkpoint it
        then waited after, issue #27 item 4)."""
        if (
            self.first is not None
            or self.buffer
            or (self.driver_done and self.in_flight == 0)
        ):
            await self.backend.checkpoint()  # no anyio dispatch (#27)
        else:
            while True:  # until there is something to deliver
                ready = self.ready = self.backend.new_waker()
                await ready.wait()
                if (
                    self.first is not None
                    or self.buffer
                    or (self.driver_done and self.in_flight == 0)
                ):
                    break
        # What is there stays there until the consumer takes it: the checkpoint
        # may have let a failure come, which goes first.
        if self.first is not None:
            self.first_seen = True
            raise self.first
        if self.buffer:
            pair = self.buffer.popleft()
            if self.wake is not None:
                self._wake_driver()  # room for one more input
            return pair
        raise StopAsyncIteration

    def _entered(self) -> None:
        self.caller = self.backend.current_task()
        enter_gather(self.caller, self)

    def left(self) -> None:
        """The consumer left the stream's block: ``tether.dump()`` stops drawing
        it (whether or not there was anything left to stop)."""
        if self.caller is not None:
            leave_gather(self.caller, self)
            self.caller = None

    async def close_stream(self) -> None:
        """The consumer left: cancel what still runs and wait for it. A failure
        the consumer never read (it left in the step the failure came) is
        reported: nothing else will raise it."""
        try:
            await self._finish()
        finally:
            first = self.first
            if isinstance(first, Exception) and not self.first_seen:
                self.first_seen = True
                self._lose(self.first_key, first)
                await self._finish()

    # -- children ---------------------------------------------------------------------

    def _start(self, child: int, key: Any, item: Any) -> None:
        pair: Any = item  # narrowed below, which leaves `item` as it is
        if (
            type(pair) is tuple
            and pair[0] is await_handle
            and self.item_timeout is None  # else a child waits, with a deadline
        ):
            # (No cast(): at run time it is a call, in the hot path, #27.)
            self._watch(child, key, pair[1])  # pyright: ignore[reportUnknownArgumentType]
            return
        if type(item) is CoroutineType:  # the common input, without a call
            coro: Coroutine[Any, Any, Any] = item  # pyright: ignore[reportUnknownVariableType]
            name: str = item.__qualname__
        else:
            if type(item) is tuple and isinstance(item[1], Handle):
                if self.handles is None:
                    self.handles = {}
                self.handles[key] = item[1]
            try:
                coro = input_coroutine(item)
            except Exception as exc:  # a callable input raised instead of returning
                self._failed(key, exc)
                return
            name = getattr(coro, "__qualname__", "input")
        self.in_flight += 1
        try:
            self.tasks[child] = self.create_task(
                self._child, child, key, coro, name=name
            )
        except BaseException:
            self.in_flight -= 1
            coro.close()
            raise

    def _watch(self, child: int, key: Any, handle: Handle[Any]) -> None:
        """Wait for a tether handle without a task: woken by a done-callback. A
        task per handle cost ``run_all(*handles)`` a second task for every task it
        waited for (#26 item 8)."""
        self.in_flight += 1
        status = handle.status_  # handle.done(), by identity: no enum hash (#27)
        if status is FINISHED or status is FAILED or status is CANCELLED:
            self._receive(key, handle)
            return
        # No awaiter count is needed: done-callbacks run as the task ends, before
        # its registry would report a failure, so the failure is received first.
        watcher = functools.partial(self._watched, child, key)
        watching = self.watching
        if watching is None:
            watching = self.watching = {}
        watching[child] = (handle, watcher)
        handle.add_callback_(watcher)  # not ended: done() said so just above

    def _watched(self, child: int, key: Any, handle: Handle[Any]) -> None:
        watching = self.watching
        if watching is None or watching.pop(child, None) is None:
            return  # the run stopped waiting first
        self._receive(key, handle)

    def _receive(self, key: Any, handle: Handle[Any]) -> None:
        """Take the outcome of a handle that has ended: the input has settled."""
        try:
            value = handle.outcome_()
        except Exception as exc:  # its failure, or TaskCancelled
            if self.handles is None:
                self.handles = {}
            self.handles[key] = handle  # if nobody raises it, its registry will
            self._failed(key, exc)
        else:
            self._succeeded(key, value)
        self._settled()

    def _unwatch(self) -> None:
        """Stop waiting for every handle still running: its failure, if it fails
        later, is its registry's to report."""
        watching, self.watching = self.watching, None
        for handle, watcher in (watching or {}).values():
            annex = handle.annex_
            if annex is not None and watcher in annex.callbacks:
                annex.callbacks.remove(watcher)
            self.in_flight -= 1

    @ki_protected  # on trio: bookkeeping
    async def _child(
        self, child: int, key: Any, coro: Coroutine[Any, Any, Any]
    ) -> None:
        if self.stopping:  # stopped before this child's first step: it never runs
            coro.close()
            self._ended(child)
            return
        scope = self.scopes[child] = (
            self.new_scope() if self.item_timeout is None else self._timed_scope()
        )
        scope.__enter__()  # by hand, as a registry's task: no bound __exit__ kept
        try:
            if self.backend.interruptible is not None:  # trio: Ctrl+C reaches it
                coro = self.backend.interruptible(coro)
            value = await coro
        except BaseException as exc:
            ending, exc = leave_scope(scope, exc, self.backend.cancelled_exc)
            del self.scopes[child]
            if ending is Ending.CANCELLED:
                # Ours: stop() (which sets `stopping` first: no outcome to keep),
                # or else the child's own deadline.
                if not self.stopping and self.item_timeout is not None:
                    self._failed(key, self._timed_out(key, exc))
            elif ending is not Ending.INTERRUPTED and self.backend.caller_cancelled():
                # The caller's cancellation reached its nursery child (trio): no
                # outcome either, and a failure has no caller left to raise to.
                if isinstance(exc, Exception):  # Ending.FAILED
                    self._lose(self._describe(key), exc)
            else:
                self._raised(key, ending, exc)
        else:
            scope.__exit__(None, None, None)
            del self.scopes[child]
            mode = self.mode
            if mode is _FAIL_FAST or mode is _SETTLE:  # _succeeded(), inline
                self.results[key] = value
            else:
                self._succeeded(key, value)
        # _ended(), inline: this is the end of every child.
        del self.tasks[child]
        in_flight = self.in_flight = self.in_flight - 1
        if in_flight == 0 or self.limit is not None or self.stopping:
            self._wake_driver()
            if in_flight == 0:
                self._wake_consumer()

    def _timed_scope(self) -> Scope:
        """A child's scope with its ``item_timeout`` deadline: a host's scope
        (trio's stream children, shielded) takes one; else the backend's scope
        with a deadline (tether's own scope on asyncio has none)."""
        assert self.item_timeout is not None
        deadline = anyio.current_time() + self.item_timeout
        if self.new_scope is self.backend.new_scope:
            return self.backend.new_deadline_scope(deadline=deadline)
        scope = self.new_scope()
        scope.deadline = deadline
        return scope

    def _timed_out(self, key: Any, cancelled: BaseException) -> TimeoutError:
        handle = self.handles.get(key) if self.handles else None
        exc = TimeoutError(
            f"{self.api}() {self._describe(key)} did not finish within "
            f"item_timeout={self.item_timeout:g} s and "
            + (
                "was cancelled"
                if handle is None
                else f"is no longer waited for (task {handle.name_!r} runs on)"
            )
        )
        exc.__context__ = cancelled  # shows where it was suspended
        return exc

    def _raised(self, key: Any, ending: Ending, exc: BaseException) -> None:
        if isinstance(exc, Exception):  # Ending.FAILED
            self._failed(key, exc)
        elif ending is Ending.CANCELLED_FROM_OUTSIDE:
            if self.backend.loop_is_ending():
                return  # the event loop's teardown cancels what is left: no failure
            self._failed(key, foreign_cancellation(self._describe(key), exc))
        else:  # KeyboardInterrupt, SystemExit: stop everything, raise it bare
            if self.base_exc is None:
                self.base_exc = exc
            self.stop()

    def _succeeded(self, key: Any, value: Any) -> None:
        if self.mode is Mode.STREAM:
            if not self.stopping:
                self.buffer.append((key, value))
                ready = self.ready  # _wake_consumer(), inline: once per item
                if ready is not None:
                    self.ready = None
                    ready.set()
            return
        self.results[key] = value
        if self.mode is Mode.RACE and self.winner is MISSING:
            self.winner = key
            self.stop()

    def _failed(self, key: Any, exc: Exception) -> None:
        mode = self.mode
        if mode is Mode.SETTLE or mode is Mode.RACE:
            self.results[key] = exc
        elif self.keep_going:  # amap(return_exceptions=True): a result in place
            self._succeeded(key, exc)
        elif self.first is None and not self.stopping:
            self.first = exc
            self.first_key = key
            self.stop()
        elif exc is not self.first:
            what = self._describe(key)
            if self.first is not None:
                add_note(self.first, f"{self.mode.value} {what} also failed: {exc!r}")
            else:  # after the caller left, was cancelled or timed out
                self._lose(key, exc)

    def _lose(self, key: Any, exc: Exception) -> None:
        """Keep a failure nobody will raise, to report as the run ends."""
        lost = self.lost
        if lost is None:
            lost = self.lost = []
        lost.append((key, exc))

    def _describe(self, key: Any) -> str:
        if isinstance(key, str):
            return key
        if self.mode is Mode.STREAM and not isinstance(key, int):
            return f"item {_SHORT.repr(key)}"
        return f"input {key + 1}"

    def _ended(self, child: int) -> None:
        del self.tasks[child]
        self._settled()

    def _settled(self) -> None:
        in_flight = self.in_flight = self.in_flight - 1
        # (The wake calls only where someone waits: this runs once per input.)
        if self.wake is not None and (
            in_flight == 0 or self.limit is not None or self.stopping
        ):
            self._wake_driver()
        if in_flight == 0 and self.ready is not None:
            self._wake_consumer()

    # -- stopping and waking ----------------------------------------------------------

    def stop(self) -> None:
        """Stop starting inputs and cancel every child (and a stream's driver)."""
        if not self.stopping:
            self.stopping = True
            if self.watching:  # handles are only waited for: stop waiting
                self._unwatch()
            if self.scopes:
                # From a callback of the loop, on every backend: an input already
                # woken in this step still takes it, so failures that coincide are
                # all seen (as notes) on trio as on asyncio. Cancelled at once,
                # trio's checkpoint() would cancel them before they could fail.
                self.backend.call_soon_threadsafe(
                    functools.partial(_cancel_each, list(self.scopes.values()))
                )
            self._wake_driver()
            self._wake_consumer()

    def _wake_driver(self) -> None:
        wake = self.wake
        if wake is not None:
            self.wake = None
            wake.set()

    def _wake_consumer(self) -> None:
        ready = self.ready
        if ready is not None:
            self.ready = None
            ready.set()

    # -- tether.dump() -----------------------------------------------------------------

    def node(self, now: float) -> Node:
        """This run as :func:`tether.dump` draws it under the task that awaits it:
        a line for the run, then each running child with its await chain and the
        gathers it awaits in turn. Reads only; may run in another thread."""
        limit = "" if self.limit is None else f" (limit {self.limit})"
        if self.mode is Mode.STREAM:
            label = (
                f"{self.api}{limit}: {self.in_flight} running, "
                f"{len(self.buffer)} result(s) waiting to be read"
            )
        else:
            total = len(self.results)
            done = total - self.results.count(MISSING)
            label = (
                f"{self.api}{limit}: {self.in_flight} running, {done} done, "
                f"{total - self.next} not started, of {total}"
            )
        node = Node(label)
        # Where a stream's driver waits for room or for its rate slot: nothing to show.
        driver_idle = (Engine._sleep.__code__, Engine._rate_gate.__code__)
        children: list[tuple[int, Node]] = []
        for task in self.backend.tasks_of(snapshot(self.tasks.values)):
            coro = self.backend.coroutine_of(task)
            if getattr(coro, "cr_code", None) is Engine._child.__code__:
                frame = getattr(coro, "cr_frame", None)
                if frame is None:
                    continue  # it ended meanwhile
                child, key = frame.f_locals["child"], frame.f_locals["key"]
                what = self._describe(key)
            else:  # a stream's driver: drawn only while it reads the next item
                waits = getattr(coro, "cr_await", None)
                if getattr(waits, "cr_code", None) in driver_idle:
                    continue
                child, what = _DRIVER, "reading the items"
                frame = getattr(coro, "cr_frame", None)
                items = None if frame is None else frame.f_locals.get("items")
                if getattr(items, "ag_frame", None) is not None:
                    coro = items  # an async generator: where it waits, not asend
            line = Node(f"{what}: suspended at {await_chain(coro)}")
            line.children = gathers_under(task, now)
            children.append((child, line))
        children.sort(key=lambda pair: pair[0])
        node.children = [line for _, line in children]
        return node


class _ShortRepr(reprlib.Repr):
    """An item as a log message shows it: short, and a function by its name."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxtuple = self.maxlist = self.maxset = self.maxdict = 4
        self.maxstring = self.maxother = 40

    def repr_function(self, x: Any, level: int) -> str:
        return f"<function {x.__qualname__}>"

    repr_method = repr_builtin_function_or_method = repr_function


_SHORT = _ShortRepr()


def _cancel_each(scopes: list[Scope]) -> None:
    for scope in scopes:
        scope.cancel()


def add_note(exc: BaseException, note: str) -> None:
    """``exc.add_note(note)``, on Python 3.10 too."""
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # pragma: no cover - exceptiongroup prints __notes__ on 3.10
        notes: list[str] = getattr(exc, "__notes__", [])
        notes.append(note)
        exc.__notes__ = notes  # type: ignore[attr-defined]
