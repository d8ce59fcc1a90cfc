"""Results as they complete: as_completed and amap.

Both are async context managers rather than async generators: an async generator
that holds a task group breaks when its consumer leaves the loop early, while a
context manager always gets to cancel and wait for its workers on the way out.

Inside, ``limit`` workers each take the next input straight from the shared
iterator (nothing is read ahead) and send results into a stream that buffers at
most ``limit`` of them; a full buffer makes the workers wait. So at most ``limit``
inputs are in flight and at most ``limit`` results are buffered, however long the
input is.
"""

from __future__ import annotations

import math
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from typing_extensions import Self

from ._calls import close_if_coroutine, describe, is_async_callable
from ._inputs import foreign_cancellation, prepare, start, validate_options

if TYPE_CHECKING:  # imported on first use, to keep `import tether` fast
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

    from anyio.abc import TaskGroup
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from ._gather import Work

__all__ = ["Completions", "amap", "as_completed"]

T = TypeVar("T")
K = TypeVar("K")
R = TypeVar("R")


class Completions(Generic[K, R]):
    """The async iterator of :func:`tether.as_completed` and :func:`tether.amap`:
    ``(key, result)`` pairs in completion order.

    Returned by entering their ``async with`` block; not constructed by users.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "_failure",
        "_fn",
        "_inner",
        "_items",
        "_limit",
        "_outer",
        "_owned",
        "_receive",
        "_send",
    )

    def __init__(
        self,
        fn: Callable[[Any], Coroutine[Any, Any, tuple[K, R]]],
        items: Iterable[Any] | AsyncIterable[Any],
        limit: int,
        owned: list[Any] | None = None,
    ) -> None:
        self._fn = fn
        self._owned = owned
        self._items = items
        self._limit = limit
        self._failure: BaseException | None = None
        self._outer: TaskGroup | None = None
        self._inner: TaskGroup | None = None
        self._send: MemoryObjectSendStream[tuple[K, R]]
        self._receive: MemoryObjectReceiveStream[tuple[K, R]]

    async def __aenter__(self) -> Self:
        self._send, self._receive = anyio.create_memory_object_stream[tuple[K, R]](
            self._limit
        )
        self._outer = anyio.create_task_group()
        await self._outer.__aenter__()
        self._outer.start_soon(self._supervise)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._outer is not None
        self._outer.cancel_scope.cancel()
        self._receive.close()
        cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
        try:
            # Hand the task group only a cancellation, which its own scope may
            # swallow; any other exception from the body propagates bare instead
            # of being wrapped in an ExceptionGroup.
            if cancelled:
                return bool(await self._outer.__aexit__(exc_type, exc, tb))
            await self._outer.__aexit__(None, None, None)
            return False
        finally:
            self._close_inputs()

    def _close_inputs(self) -> None:
        # Inputs we were given as coroutine objects and never started.
        for item in self._owned or ():
            close_if_coroutine(item)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[K, R]:
        """Wait for the next ``(key, result)``; raise the first failure, bare."""
        if self._failure is not None:
            raise self._failure
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            if self._failure is not None:
                raise self._failure from None
            raise StopAsyncIteration from None

    async def _supervise(self) -> None:
        items = self._items
        try:
            if isinstance(items, AsyncIterable):
                iterator: Any = aiter(items)
                worker: Any = self._work_async
            else:
                iterator = iter(items)
                worker = self._work_sync
        except Exception as exc:  # items could not even be iterated
            self._failure = exc
            self._send.close()
            return
        try:
            async with anyio.create_task_group() as inner:
                self._inner = inner
                lock = anyio.Lock()  # one __anext__ at a time on an async iterator
                for _ in range(self._limit):
                    inner.start_soon(worker, iterator, lock)
        finally:
            self._send.close()
            # Stopped early: close an async generator now, while its event loop
            # runs, rather than leave it to the collector (trio warns then).
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        assert self._inner is not None
        self._inner.cancel_scope.cancel()

    # Each worker takes the next item straight from the shared iterator, so nothing
    # is read ahead: at most `limit` items are in flight, one per worker.

    async def _work_sync(self, iterator: Iterator[Any], _lock: anyio.Lock) -> None:
        while True:
            try:
                item = next(iterator)  # sync: no other worker can interleave
            except StopIteration:
                return
            except Exception as exc:
                self._fail(exc)
                return
            if not await self._process(item):
                return

    async def _work_async(self, iterator: AsyncIterator[Any], lock: anyio.Lock) -> None:
        while True:
            try:
                async with lock:
                    item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except Exception as exc:
                self._fail(exc)
                return
            if not await self._process(item):
                return

    async def _process(self, item: Any) -> bool:
        """Run one item and send its pair; ``False`` once the run has failed."""
        try:
            pair = await self._fn(item)
        except Exception as exc:
            self._fail(exc)
            return False
        except anyio.get_cancelled_exc_class() as exc:
            if anyio.current_effective_deadline() == -math.inf:
                raise  # our cancellation, or the caller's
            # Not ours: the input awaited a cancelled future or raised
            # CancelledError itself. The task group would swallow it and drop the
            # input silently; make it the input's failure.
            if self._owned is not None:  # as_completed: the item is the index
                what = f"input {item + 1}"
            else:
                what = f"item {item!r}"[:80]
            self._fail(foreign_cancellation(what, exc))
            return False
        await self._send.send(pair)
        return True


def amap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    limit: int,
) -> AbstractAsyncContextManager[Completions[T, R]]:
    """Apply ``fn`` to every item, ``limit`` at a time; yield ``(item, result)``
    pairs as they complete.

    ``async with tether.amap(fetch, urls, limit=10) as results:`` then
    ``async for url, page in results:``. Each result comes paired with the item it
    was computed from, so results are matched to inputs without relying on order.

    ``items`` may be a sync or an async iterable, and is read lazily: at most
    ``limit`` items are in flight and at most ``limit`` results wait in the buffer
    (workers pause while it is full), so a million items never become a million
    coroutines. An async generator given as ``items`` is closed (``aclose()``)
    when ``amap`` stops reading it early. Entering does not block. Fail-fast: the
    first failure of ``fn`` (or of iterating ``items``) cancels the rest and is
    raised, bare, from the next ``__anext__``. Leaving the block, normally or by an
    exception, cancels what is still running and waits for it; an exception from the
    block propagates bare.

    Args:
        fn: an async function of one argument.
        items: the inputs.
        limit: the most items in flight, and the most results buffered.

    .. versionadded:: 0.1
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(
            f"amap(limit={limit!r}): limit must be a whole number >= 1 (the most "
            "items in flight at once, and the most results buffered)"
        )
    if not is_async_callable(fn):
        raise TypeError(
            f"amap() takes an async function of one argument, got {describe(fn)}. "
            "Make it `async def`"
        )
    if not isinstance(items, Iterable | AsyncIterable):
        raise TypeError(
            f"amap() items must be an iterable or an async iterable, got "
            f"{type(items).__name__}"
        )

    async def pair(item: T) -> tuple[T, R]:
        return item, await fn(item)

    return Completions(pair, items, limit)


def as_completed(
    *work: Work[T], limit: int | None = None
) -> AbstractAsyncContextManager[Completions[int, T]]:
    """Run the inputs and yield ``(index, result)`` pairs as they complete.

    ``async with tether.as_completed(fetch(a), fetch(b)) as done:`` then
    ``async for index, result in done:``; ``index`` is the input's position, which
    matches each result to its input. Inputs are as for :func:`tether.run_all`;
    nothing starts before the block is entered, and a callable input is called only
    when its slot frees. At most ``limit`` inputs run at once (default: all).
    Fail-fast: the first failure cancels the rest and is raised, bare, from the
    next ``__anext__``. Leaving the block cancels what is still running, waits for
    it, and closes every coroutine that never started.

    .. versionadded:: 0.1
    """
    try:
        validate_options("as_completed", limit)
    except ValueError:
        for item in work:  # refused: nothing will ever await them
            close_if_coroutine(item)
        raise
    inputs = prepare("as_completed", work)

    async def run_one(index: int) -> tuple[int, T]:
        item = inputs[index]
        inputs[index] = None
        result: T = await start(item)
        return index, result

    return Completions(
        run_one, range(len(inputs)), limit or max(len(inputs), 1), inputs
    )
