"""Results as they complete: as_completed and amap.

Both are async context managers rather than async generators: an async generator
that holds tasks breaks when its consumer leaves the loop early, while a context
manager always gets to cancel and wait for its children on the way out.

Both run on the gather family's one engine (:mod:`tether._engine`) in its stream
mode: a driver task takes the next input straight from the iterator only when
there is room (nothing is read ahead), and a started input counts against
``limit`` until the consumer has taken its result. So at most ``limit`` inputs are
in flight and at most ``limit`` results are buffered, however long the input is.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, Callable, Coroutine, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - typing_extensions costs import time where typing has it
    from typing_extensions import Self

from ._calls import close_if_coroutine, describe, is_async_callable
from ._checks import check_count, check_flag
from ._engine import Engine, Mode
from ._handle import Handle
from ._inputs import (
    check_item_timeout,
    close_inputs,
    input_coroutine,
    prepare,
    validate_options,
)
from ._loop import current_backend

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

    from ._backend import Host
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
        "_api",
        "_engine",
        "_host",
        "_item_timeout",
        "_items",
        "_keep_going",
        "_limit",
        "_make",
        "_owned",
    )

    def __init__(
        self,
        make: Callable[[Any], tuple[K, Coroutine[Any, Any, R]]],
        items: Iterable[Any] | AsyncIterable[Any],
        limit: int,
        owned: list[Any] | None = None,
        *,
        api: str = "as_completed",
        item_timeout: float | None = None,
        keep_going: bool = False,
    ) -> None:
        self._api = api
        self._item_timeout = item_timeout
        self._keep_going = keep_going
        self._make = make
        self._items = items
        self._limit = limit
        self._owned = owned
        self._engine: Engine | None = None
        self._host: Host | None = None

    async def __aenter__(self) -> Self:
        """Start the inputs (up to ``limit`` at once) and return the iterator.

        Not a checkpoint: it starts a driver task that feeds the inputs in (or,
        for coroutines and handles that all fit ``limit``, their tasks directly),
        and returns at once.
        """
        backend = current_backend()
        engine = self._engine = Engine(
            backend,
            Mode.STREAM,
            self._limit,
            item_timeout=self._item_timeout,
            keep_going=self._keep_going,
            api=self._api,
        )
        open_host = backend.open_host
        if open_host is not None:
            # trio: the children (and the driver) are the caller's nursery
            # children while the block runs, each in a shielded scope of its own:
            # under the caller in trio's task tree, outside its scopes (#26).
            host = self._host = await open_host()
            engine.create_task, engine.new_scope = host.create_task, host.new_scope
        owned = self._owned
        if owned is not None:
            if len(owned) <= self._limit and not any(map(callable, owned)):
                # as_completed of coroutines and handles that all fit: start them
                # here, as the driver would at its first step, and need no driver.
                # (A callable input is left to the driver: its call is user code,
                # which must not run in, nor change the context of, the caller.)
                engine.start_listed(owned)
                return self
            # The driver starts each from the coroutine its `make` gives: the
            # handles among them are told to the engine here, by position.
            handles: dict[Any, Handle[Any]] = {
                index: item[1]
                for index, item in enumerate(owned)
                if type(item) is tuple and isinstance(item[1], Handle)
            }
            if handles:
                engine.handles = handles
        items = self._items
        try:
            iterator: Any = (
                aiter(items) if isinstance(items, AsyncIterable) else iter(items)
            )
        except Exception as exc:  # items could not even be iterated
            engine.first = exc
            engine.driver_done = True
            return self
        engine.start_stream(iterator, self._make)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Cancel what still runs and wait for it; an exception from the block
        propagates bare."""
        engine = self._engine
        assert engine is not None
        try:
            if (
                engine.in_flight
                or engine.tasks
                or engine.lost
                or (engine.first is not None and not engine.first_seen)
            ):
                await engine.close_stream()
            # else every input has ended and been read: nothing to stop or report
        finally:
            engine.left()
            # Inputs we were given as coroutine objects and never started.
            for item in self._owned or ():
                if item is not None:  # else it started: the child owns it
                    close_if_coroutine(item)
            if self._host is not None:  # every child has ended
                await self._host.close()
        if engine.base_exc is not None and exc is None:
            raise engine.base_exc
        return False

    def __aiter__(self) -> Self:
        return self

    def __anext__(self) -> Coroutine[Any, Any, tuple[K, R]]:
        """Wait for the next ``(key, result)``; raise the first failure, bare.

        A checkpoint. (The engine's own coroutine, returned to be awaited: one
        layer fewer per item, issue #27 item 4.)"""
        assert self._engine is not None
        return self._engine.next_result()


# BEGIN GENERATED by tools/gen_overloads.py: do not edit by hand (amap overloads)
@overload
def amap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    limit: int,
    item_timeout: float | None = None,
    return_exceptions: Literal[False] = False,
) -> AbstractAsyncContextManager[Completions[T, R]]: ...
@overload
def amap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    limit: int,
    item_timeout: float | None = None,
    return_exceptions: Literal[True],
) -> AbstractAsyncContextManager[Completions[T, R | Exception]]: ...
@overload
def amap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    limit: int,
    item_timeout: float | None = None,
    return_exceptions: bool,
) -> AbstractAsyncContextManager[Completions[T, R | Exception]]: ...
# END GENERATED by tools/gen_overloads.py (amap overloads)
def amap(
    fn: Callable[[T], Coroutine[Any, Any, R]],
    items: Iterable[T] | AsyncIterable[T],
    /,
    *,
    limit: int,
    item_timeout: float | None = None,
    return_exceptions: bool = False,
) -> AbstractAsyncContextManager[Completions[T, Any]]:
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

    With ``return_exceptions=True`` the stream keeps going past failures: an item
    whose ``fn`` raised an ``Exception`` comes as ``(item, exception)``, in place
    of its result, as in :func:`tether.settle_all`'s tuple (a failure to iterate
    ``items`` still ends the stream and is raised). With ``item_timeout``, an item
    that runs longer than that, counted from its own start (not from when it was
    read, nor while it waited for one of the ``limit`` slots), is cancelled and
    fails with :exc:`TimeoutError`: in place with ``return_exceptions=True``,
    raised like any failure without. To bound the whole loop, put the block in
    ``anyio.fail_after(...)``.

    Args:
        fn: an async function of one argument.
        items: the inputs.
        limit: the most items in flight, and the most results buffered.
        item_timeout: seconds each item may run, from its start, or None.
        return_exceptions: deliver each item's ``Exception`` as its result
            instead of raising the first one.

    Raises:
        TypeError: ``fn`` is not an async function, ``items`` not iterable, or
            ``item_timeout`` not a number.
        ValueError: ``limit`` or ``item_timeout`` is out of range.

    .. versionadded:: 0.1

    .. versionadded:: 0.3
       ``item_timeout`` and ``return_exceptions``.
    """
    _check_mapped_function(fn)
    check_count(
        "amap",
        "limit",
        limit,
        1,
        " (the most items in flight at once, and the most results buffered)",
    )
    check_item_timeout("amap", item_timeout)
    check_flag("amap", "return_exceptions", return_exceptions)
    if not isinstance(items, Iterable | AsyncIterable):
        raise TypeError(
            f"amap() items must be an iterable or an async iterable, got "
            f"{type(items).__name__}"
        )

    def make(item: T) -> tuple[T, Coroutine[Any, Any, R]]:
        return item, fn(item)

    return Completions(
        make,
        items,
        limit,
        api="amap",
        item_timeout=item_timeout,
        keep_going=return_exceptions,
    )


def _check_mapped_function(fn: object) -> None:
    """Refuse an ``fn`` that :func:`amap` cannot call per item, saying what it is
    and how to fix it; a coroutine object given is closed (it will never run)."""
    if isinstance(fn, CoroutineType | Coroutine):
        close_if_coroutine(fn)  # pyright: ignore[reportUnknownArgumentType]
        function = getattr(fn, "__name__", "fn")  # pyright: ignore[reportUnknownArgumentType]
        raise TypeError(
            f"amap() takes an async function of one argument as fn, got a coroutine "
            f"object ({describe(fn)}(...)), which runs once, not once per item. "  # pyright: ignore[reportUnknownArgumentType]
            f"Pass the async function itself: amap({function}, items, limit=...)"
        )
    if not callable(fn):
        raise TypeError(
            f"amap() takes an async function of one argument as fn, got "
            f"{type(fn).__name__} {describe(fn)}, which is not callable. Pass the "
            "async function first: amap(fn, items, limit=...)"
        )
    if not is_async_callable(fn):
        raise TypeError(
            f"amap() takes an async function of one argument as fn, but "
            f"{describe(fn)} is a sync function. Make it `async def`, or wrap a "
            "blocking call in one: "
            "`async def fn(item): return await anyio.to_thread.run_sync(work, item)`"
        )


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
    if limit is not None:  # the default needs no look (issue #27 item 4)
        try:
            validate_options("as_completed", limit)
        except (TypeError, ValueError):
            close_inputs(work)  # refused: nothing will ever await them
            raise
    inputs = prepare("as_completed", work)

    def make(index: int) -> tuple[int, Coroutine[Any, Any, T]]:
        item = inputs[index]
        inputs[index] = None
        return index, input_coroutine(item)

    return Completions(make, range(len(inputs)), limit or max(len(inputs), 1), inputs)
