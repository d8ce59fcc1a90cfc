"""The registry's controls beyond ``spawn``: backpressure, other threads, idleness,
cancelling everything, and binding.

:class:`Control` sits between :class:`~tether._lifecycle.Lifecycle` (state, entering
and leaving, error policy) and :class:`~tether.TaskRegistry` (the per-task hot path).
None of it is on the hot path.
"""

from __future__ import annotations

from contextvars import Context, Token, copy_context
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import anyio.lowlevel
from typing_extensions import Self, TypeVarTuple, Unpack

from ._calls import close_if_coroutine, coroutine_from, name_of
from ._exceptions import RegistryClosed
from ._lifecycle import _WHY_CLOSED, CLOSED, NEW, OPEN, Lifecycle, SlotWaiter
from ._spawn import ambient

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Coroutine
    from types import TracebackType

    from ._handle import Handle

__all__ = ["Control"]

T = TypeVar("T")
R = TypeVar("R")
PosArgsT = TypeVarTuple("PosArgsT")


class _Binding(Generic[R]):
    """The context manager returned by ``registry.bind()``."""

    __slots__ = ("_registry", "_token")

    def __init__(self, registry: R) -> None:
        self._registry = registry

    def __enter__(self) -> R:
        self._token: Token[Any] = ambient.set(self._registry)  # type: ignore[arg-type]  # R is always a TaskRegistry
        return self._registry

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ambient.reset(self._token)


class Control(Lifecycle):
    """Waiting for room or idleness, spawning from threads, cancel_all and bind."""

    __slots__ = ()

    # Implemented by TaskRegistry.
    def spawn(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[Any]:
        """Start a task now and return its handle (see :meth:`TaskRegistry.spawn`)."""
        raise NotImplementedError

    async def wait_idle(self) -> None:
        """Wait until no task is running or queued, without closing the registry.

        A checkpoint. Returns at the first moment the registry is idle; a task
        spawned after that is not waited for. Cancelling the waiter cancels no task.
        """
        if self._is_idle():
            await anyio.lowlevel.checkpoint()
            return
        await self._wait_until_idle()

    def cancel_all(self) -> None:
        """Cancel every running task and drop every queued one; the registry stays
        open and takes new work. Never blocks."""
        self._cancel_everything(shutdown=False)

    def bind(self) -> _Binding[Self]:
        """Return a sync context manager that makes this registry the ambient one
        (for :func:`tether.spawn`) inside its block, and yields the registry.

        For code that does not run inside the ``async with``, such as a request
        handler of a web app whose registry was opened in the lifespan.
        """
        return _Binding(self)

    @overload
    async def spawn_when_free(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[T]: ...
    @overload
    async def spawn_when_free(
        self,
        coro: Coroutine[Any, Any, T],
        /,
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[T]: ...
    async def spawn_when_free(
        self,
        fn: Any,
        /,
        *args: object,  # not Any: mypy 2.4 then rejects the overloads
        name: str | None = None,
        context: Context | None = None,
    ) -> Handle[Any]:
        """Wait until a slot is free, then spawn; the backpressure form of ``spawn``.

        A checkpoint. Callers wait FIFO, in one queue with tasks queued by
        :meth:`spawn`; the slot is claimed and the task spawned atomically, so the
        task never waits in the queue. Without a ``limit`` it spawns at once.
        If the caller is cancelled while waiting, nothing is spawned and the
        coroutine is closed.

        Raises:
            TypeError: as :meth:`spawn`.
            RegistryClosed: the registry does not take work, now or when the slot
                comes.
        """
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            close_if_coroutine(fn)
            raise
        if self._state is not OPEN:
            self._check_may_spawn(fn)
        coro = coroutine_from(fn, args, "spawn_when_free")
        handle = self._make_handle(name_of(fn) if name is None else name)
        limit = self._limit
        if limit is None or len(self._live) + self._reserved < limit:
            self._submit(handle, coro, context)
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return handle
        waiter = SlotWaiter(self._event_cls())
        self._queue.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            coro.close()
            waiter.gone = True
            if waiter.granted:
                self._reserved -= 1
                self._slot_freed()
            raise
        if waiter.closed:
            coro.close()
            self._raise_closed(_WHY_CLOSED[self._state])
        self._reserved -= 1
        if self._state is not OPEN:
            try:
                self._check_may_spawn(coro)
            except RegistryClosed:
                self._slot_freed()
                raise
        self._submit(handle, coro, context)
        return handle

    @overload
    def spawn_threadsafe(
        self,
        fn: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T]],
        /,
        *args: Unpack[PosArgsT],
        name: str | None = None,
    ) -> concurrent.futures.Future[Handle[T]]: ...
    @overload
    def spawn_threadsafe(
        self, coro: Coroutine[Any, Any, T], /, *, name: str | None = None
    ) -> concurrent.futures.Future[Handle[T]]: ...
    def spawn_threadsafe(
        self,
        fn: Any,
        /,
        *args: object,
        name: str | None = None,
    ) -> concurrent.futures.Future[Handle[Any]]:
        """Spawn from another thread; return a future of the handle. Never blocks.

        The spawn itself happens on the registry's event loop thread, soon, in a
        copy of the calling thread's context, exactly as :meth:`spawn` would do it
        there. The returned :class:`concurrent.futures.Future` resolves to the
        handle, or to the exception the spawn raised (``RegistryClosed``,
        ``RegistryFull``). Arguments are checked here, at once.

        Raises:
            TypeError: as :meth:`spawn`.
            RuntimeError: called on the event loop's own thread (use :meth:`spawn`),
                or the event loop is closed.
            RegistryClosed: the registry was never entered, or has closed.
        """
        if get_ident() == self._thread:
            close_if_coroutine(fn)
            raise RuntimeError(
                "TaskRegistry.spawn_threadsafe() was called on the event loop's "
                "own thread: use registry.spawn(fn, *args) there"
            )
        if self._state is NEW or self._state is CLOSED:
            self._check_may_spawn(fn)
        coro = coroutine_from(fn, args, "spawn_threadsafe")
        task_name = name_of(fn) if name is None else name
        import concurrent.futures

        future: concurrent.futures.Future[Handle[Any]] = concurrent.futures.Future()
        context = copy_context()

        def on_loop() -> None:
            if not future.set_running_or_notify_cancel():
                coro.close()  # the caller cancelled the future before we got here
                return
            try:
                future.set_result(self.spawn(coro, name=task_name, context=context))
            except Exception as exc:
                future.set_exception(exc)

        try:
            self._backend.call_soon_threadsafe(on_loop)
        except BaseException:
            coro.close()
            raise
        return future
