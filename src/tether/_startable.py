"""What :meth:`TaskRegistry.start <tether.TaskRegistry.start>` runs: an async
function taking its positional arguments and a ``task_status`` through which it
reports a value, typed so that the value's type flows to the caller.

One protocol per arity, because mypy cannot yet solve a TypeVarTuple and a TypeVar
in one protocol; ``start()`` has an overload for each. anyio's and trio's
``TaskStatus`` are two protocols of the same shape, but type checkers solve ``T``
only against the one the function names (with anyio's alone, a function annotated
``task_status: trio.TaskStatus[int]``, as ``trio.serve_tcp`` is, solved ``T`` as
``Never``: #26 item 5). So each arity has three protocols, tried in this order:
one taking either (pyright stops at the first protocol that fits, with ``T``
unsolved unless the function's own is in it), then anyio's, then trio's (mypy
solves ``T`` only against the one the function names).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from anyio.abc import TaskStatus as AnyioTaskStatus
    from trio import TaskStatus as TrioTaskStatus  # the trio extra; Any without it

__all__ = [
    "A1",
    "A2",
    "A3",
    "A4",
    "A5",
    "EitherStartable0",
    "EitherStartable1",
    "EitherStartable2",
    "EitherStartable3",
    "EitherStartable4",
    "EitherStartable5",
    "Startable0",
    "Startable1",
    "Startable2",
    "Startable3",
    "Startable4",
    "Startable5",
    "TrioStartable0",
    "TrioStartable1",
    "TrioStartable2",
    "TrioStartable3",
    "TrioStartable4",
    "TrioStartable5",
]

T_co = TypeVar("T_co", covariant=True)
A1 = TypeVar("A1", contravariant=True)
A2 = TypeVar("A2", contravariant=True)
A3 = TypeVar("A3", contravariant=True)
A4 = TypeVar("A4", contravariant=True)
A5 = TypeVar("A5", contravariant=True)


class Startable0(Protocol[T_co]):
    """An async function of 0 positional argument(s) and ``task_status``."""

    def __call__(self, *, task_status: AnyioTaskStatus[T_co]) -> Awaitable[object]: ...


class Startable1(Protocol[T_co, A1]):
    """An async function of 1 positional argument(s) and ``task_status``."""

    def __call__(
        self, a1: A1, /, *, task_status: AnyioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class Startable2(Protocol[T_co, A1, A2]):
    """An async function of 2 positional argument(s) and ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, /, *, task_status: AnyioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class Startable3(Protocol[T_co, A1, A2, A3]):
    """An async function of 3 positional argument(s) and ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, a3: A3, /, *, task_status: AnyioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class Startable4(Protocol[T_co, A1, A2, A3, A4]):
    """An async function of 4 positional argument(s) and ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, a3: A3, a4: A4, /, *, task_status: AnyioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class Startable5(Protocol[T_co, A1, A2, A3, A4, A5]):
    """An async function of 5 positional argument(s) and ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        task_status: AnyioTaskStatus[T_co],
    ) -> Awaitable[object]: ...


class TrioStartable0(Protocol[T_co]):
    """An async function of 0 positional argument(s) and trio's
    ``task_status``."""

    def __call__(self, *, task_status: TrioTaskStatus[T_co]) -> Awaitable[object]: ...


class TrioStartable1(Protocol[T_co, A1]):
    """An async function of 1 positional argument(s) and trio's
    ``task_status``."""

    def __call__(
        self, a1: A1, /, *, task_status: TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class TrioStartable2(Protocol[T_co, A1, A2]):
    """An async function of 2 positional argument(s) and trio's
    ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, /, *, task_status: TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class TrioStartable3(Protocol[T_co, A1, A2, A3]):
    """An async function of 3 positional argument(s) and trio's
    ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, a3: A3, /, *, task_status: TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class TrioStartable4(Protocol[T_co, A1, A2, A3, A4]):
    """An async function of 4 positional argument(s) and trio's
    ``task_status``."""

    def __call__(
        self, a1: A1, a2: A2, a3: A3, a4: A4, /, *, task_status: TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class TrioStartable5(Protocol[T_co, A1, A2, A3, A4, A5]):
    """An async function of 5 positional argument(s) and trio's
    ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        task_status: TrioTaskStatus[T_co],
    ) -> Awaitable[object]: ...


class EitherStartable0(Protocol[T_co]):
    """An async function of 0 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self, *, task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class EitherStartable1(Protocol[T_co, A1]):
    """An async function of 1 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self, a1: A1, /, *, task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co]
    ) -> Awaitable[object]: ...


class EitherStartable2(Protocol[T_co, A1, A2]):
    """An async function of 2 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        /,
        *,
        task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co],
    ) -> Awaitable[object]: ...


class EitherStartable3(Protocol[T_co, A1, A2, A3]):
    """An async function of 3 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        a3: A3,
        /,
        *,
        task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co],
    ) -> Awaitable[object]: ...


class EitherStartable4(Protocol[T_co, A1, A2, A3, A4]):
    """An async function of 4 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        /,
        *,
        task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co],
    ) -> Awaitable[object]: ...


class EitherStartable5(Protocol[T_co, A1, A2, A3, A4, A5]):
    """An async function of 5 positional argument(s) and anyio's or
    trio's ``task_status``."""

    def __call__(
        self,
        a1: A1,
        a2: A2,
        a3: A3,
        a4: A4,
        a5: A5,
        /,
        *,
        task_status: AnyioTaskStatus[T_co] | TrioTaskStatus[T_co],
    ) -> Awaitable[object]: ...
