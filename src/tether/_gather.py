"""The deferred gather: run_all, settle_all and race.

Nothing starts before the call is awaited. Inputs may be coroutine objects, tether
handles, futures of the running backend, or zero-argument async callables, mixed;
results come back in input order, typed per position for up to ten inputs.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar, overload

import anyio.lowlevel

from ._calls import close_if_coroutine
from ._engine import FAIL_FAST, MISSING, RACE, SETTLE, Engine
from ._inputs import prepare, validate_options

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

__all__ = ["Work", "race", "run_all", "settle_all"]

T = TypeVar("T")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")
T7 = TypeVar("T7")
T8 = TypeVar("T8")
T9 = TypeVar("T9")
T10 = TypeVar("T10")

#: One input of the gather family: an awaitable, or a zero-argument async callable
#: that is called only when its slot frees.
Work: TypeAlias = Awaitable[T] | Callable[[], Awaitable[T]]


@overload
async def run_all(
    w1: Work[T1],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5, T6]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5, T6, T7]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5, T6, T7, T8]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    w9: Work[T9],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5, T6, T7, T8, T9]: ...
@overload
async def run_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    w9: Work[T9],
    w10: Work[T10],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1, T2, T3, T4, T5, T6, T7, T8, T9, T10]: ...
@overload
async def run_all(
    *work: Work[T],
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T, ...]: ...
async def run_all(
    *work: Any,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[Any, ...]:
    """Run every input concurrently and return their results, in input order.

    A checkpoint. Nothing starts before this is awaited: coroutine objects start
    here, and a callable is called only when its slot frees, so ``limit`` bounds
    memory as well as concurrency. Handles and futures are only waited for: they are
    never cancelled by ``run_all``.

    Fail-fast, like :func:`asyncio.gather` without its leaks: the first failure, in
    completion order, cancels the other inputs this call started, waits for their
    cleanup, and is raised **bare** (never wrapped in an ``ExceptionGroup``), so
    ``except ConnectionError:`` works. Failures of other inputs seen before the
    cancellation took effect are attached to it as notes. Cancelling the caller
    cancels every started input, waits for them, and propagates.

    Args:
        *work: coroutine objects, tether handles, futures, or zero-argument async
            callables (use :func:`functools.partial` to bind arguments).
        limit: at most this many inputs run at once.
        per_second: starts are spaced at least ``1 / per_second`` seconds apart.
        burst: this many starts may happen at once before the spacing applies.
        timeout: seconds for the whole call, time waiting for a slot included.

    Returns:
        A tuple of the results, in input order.

    Raises:
        TimeoutError: ``timeout`` expired (the builtin; on Python 3.10 it is not
            ``asyncio.TimeoutError``). The unfinished inputs were cancelled.
        TypeError: an input is not awaitable nor a zero-argument async callable.
        ValueError: an option is out of range.
        Exception: the first input's failure, bare.

    .. versionadded:: 0.1
    """
    engine = await _run("run_all", work, FAIL_FAST, limit, per_second, burst, timeout)
    if engine is None:
        return ()
    first = engine.first
    if first is not None:
        for note in engine.notes:
            _add_note(first, note)
        raise first
    if engine.timed_out:
        raise TimeoutError(
            f"run_all() timed out after {timeout} s with "
            f"{engine.unfinished()} of {len(work)} inputs unfinished; they were "
            "cancelled"
        )
    return tuple(engine.results)


@overload
async def settle_all(
    w1: Work[T1],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1 | Exception]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1 | Exception, T2 | Exception]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1 | Exception, T2 | Exception, T3 | Exception]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T1 | Exception, T2 | Exception, T3 | Exception, T4 | Exception]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception, T2 | Exception, T3 | Exception, T4 | Exception, T5 | Exception
]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
    T7 | Exception,
]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
    T7 | Exception,
    T8 | Exception,
]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    w9: Work[T9],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
    T7 | Exception,
    T8 | Exception,
    T9 | Exception,
]: ...
@overload
async def settle_all(
    w1: Work[T1],
    w2: Work[T2],
    w3: Work[T3],
    w4: Work[T4],
    w5: Work[T5],
    w6: Work[T6],
    w7: Work[T7],
    w8: Work[T8],
    w9: Work[T9],
    w10: Work[T10],
    /,
    *,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[
    T1 | Exception,
    T2 | Exception,
    T3 | Exception,
    T4 | Exception,
    T5 | Exception,
    T6 | Exception,
    T7 | Exception,
    T8 | Exception,
    T9 | Exception,
    T10 | Exception,
]: ...
@overload
async def settle_all(
    *work: Work[T],
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[T | Exception, ...]: ...
async def settle_all(
    *work: Any,
    limit: int | None = None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> tuple[Any, ...]:
    """Run every input to its end and return each result or exception, in order.

    A checkpoint. The same inputs and options as :func:`run_all`, but never
    fail-fast: a failing input does not affect the others, and its item in the
    result is the ``Exception`` it raised. With ``timeout``, the inputs still
    unfinished are cancelled and their items are :exc:`TimeoutError` instances.
    Cancelling the caller cancels every started input and propagates, and so does
    a ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``).

    Returns:
        A tuple with, per input, its result or the ``Exception`` it raised.

    .. versionadded:: 0.1
    """
    engine = await _run("settle_all", work, SETTLE, limit, per_second, burst, timeout)
    if engine is None:
        return ()
    return tuple(
        TimeoutError(f"settle_all() input {i + 1} did not finish within {timeout} s")
        if r is MISSING
        else r
        for i, r in enumerate(engine.results)
    )


async def race(*work: Work[T]) -> T:
    """Return the first successful result; cancel the other inputs.

    A checkpoint. Inputs are as for :func:`run_all`. When one input succeeds, the
    others this call started are cancelled and their cleanup is awaited before
    ``race`` returns. A failing input does not end the race; if every input fails,
    an ``ExceptionGroup`` of every failure, in input order, is raised. Cancelling
    the caller cancels every started input and propagates.

    Raises:
        ExceptionGroup: every input failed.
        ValueError: no inputs.

    .. versionadded:: 0.1
    """
    if not work:
        raise ValueError("race() needs at least one input: race(fetch(a), fetch(b))")
    engine = await _run("race", work, RACE, None, None, 1, None)
    assert engine is not None
    if engine.winner is not MISSING:
        winner: T = engine.results[engine.winner]
        return winner
    failures = [r for r in engine.results if isinstance(r, Exception)]
    raise ExceptionGroup("every race() input failed", failures)


async def _run(
    api: str,
    work: tuple[Any, ...],
    mode: int,
    limit: int | None,
    per_second: float | None,
    burst: int,
    timeout: float | None,
) -> Engine | None:
    try:
        validate_options(api, limit, per_second, burst, timeout)
    except ValueError:
        for item in work:
            close_if_coroutine(item)
        raise
    inputs = prepare(api, work)
    if not inputs:
        await anyio.lowlevel.checkpoint()
        return None
    engine = Engine(inputs, mode, limit, per_second, burst)
    await engine.run(timeout)
    if engine.base_exc is not None:
        raise engine.base_exc
    return engine


def _add_note(exc: BaseException, note: str) -> None:
    if sys.version_info >= (3, 11):
        exc.add_note(note)
    else:  # pragma: no cover - exceptiongroup prints __notes__ on 3.10
        notes: list[str] = getattr(exc, "__notes__", [])
        notes.append(note)
        exc.__notes__ = notes  # type: ignore[attr-defined]
