"""The inputs of the gather family: checking them, and turning one into a coroutine.

Everything is checked before anything starts, and a refusal closes every coroutine
object it was given, so bad input never leaves a "coroutine was never awaited"
warning behind. Handles and futures are wrapped so that waiting on them can stop
without cancelling them: the gather family cancels only what it started.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from types import CoroutineType, FunctionType, GeneratorType
from typing import Any, cast

from ._calls import (
    CO_COROUTINE,
    close_if_coroutine,
    describe,
    has_run,
    name_of,
)
from ._checks import check_count, check_rate, check_seconds
from ._exceptions import TaskCancelled
from ._handle import Handle

__all__ = [
    "check_item_timeout",
    "close_inputs",
    "foreign_cancellation",
    "input_coroutine",
    "prepare",
    "validate_options",
]


def validate_options(
    api: str,
    limit: int | None,
    per_second: float | None = None,
    burst: int = 1,
    timeout: float | None = None,
) -> None:
    """Check the shared keyword options, naming the argument and the fix."""
    if limit is not None:
        check_count(
            api,
            "limit",
            limit,
            1,
            " (the most inputs running at once), or None for no limit",
        )
    check_rate(
        api,
        "per_second",
        per_second,
        " (the most starts per second), or None for no rate limit",
    )
    check_count(
        api,
        "burst",
        burst,
        1,
        " (how many starts may happen at once before per_second spacing applies)",
    )
    check_seconds(api, "timeout", timeout, ", or None for no timeout")


def check_item_timeout(api: str, item_timeout: object) -> None:
    """Refuse an ``item_timeout`` that is not ``None`` or a number of seconds > 0
    (an item that may not run at all is a mistake, not a policy)."""
    check_seconds(
        api,
        "item_timeout",
        item_timeout,
        " (how long each input may run, counted from its own start), e.g. "
        "item_timeout=3.5, or None for no per-item timeout",
        positive=True,
    )


async def await_handle(handle: Handle[Any]) -> Any:
    return await handle


async def _await_future(future: Any) -> Any:
    # Waiting on a future we did not start must not cancel it when we stop waiting.
    import asyncio

    return await asyncio.shield(future)


async def _await_other(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def foreign_cancellation(what: str, cause: BaseException) -> TaskCancelled:
    """The outcome of an input cancelled by something other than the gather: it
    awaited a cancelled future or task, or raised the backend's cancellation itself.

    The backend's cancellation exception must not cross into the caller, where it
    would read as the caller's own cancellation.
    """
    exc = TaskCancelled(
        f"{what} was cancelled from outside (it awaited a cancelled future "
        "or task, or raised CancelledError itself)"
    )
    exc.__cause__ = cause
    return exc


def _bad_input(api: str, position: int, item: object, why: str) -> TypeError:
    return TypeError(
        f"{api}() argument {position + 1} ({describe(item)}) {why}. Pass coroutine "
        f"objects, tether handles, futures, or zero-argument async callables: "
        f"{api}(fetch(url), functools.partial(fetch, url))"
    )


def _check_callable(api: str, position: int, fn: Any) -> None:
    # Any zero-argument callable is an input: an async function, a partial of one,
    # or a sync callable that returns an awaitable (`lambda: fetch(url)`, as
    # aiometer takes them). Only what needs arguments is refused here, where it is
    # known without calling it; a result that is not awaitable fails at its start.
    if type(fn) is FunctionType:
        code = fn.__code__
        required = code.co_argcount - len(fn.__defaults__ or ())
        kw_defaults = fn.__kwdefaults__ or {}
        missing_kw = [
            k
            for k in code.co_varnames[
                code.co_argcount : code.co_argcount + code.co_kwonlyargcount
            ]
            if k not in kw_defaults
        ]
        if required > 0 or missing_kw:
            kind = "an async" if code.co_flags & CO_COROUTINE else "a"
            raise _bad_input(
                api,
                position,
                fn,
                f"is {kind} function that needs arguments, passed uncalled; call "
                f"it, {describe(fn)}(...), or bind them with functools.partial",
            )


def prepare(api: str, work: tuple[Any, ...]) -> list[Any]:
    """Validate every input before anything starts; close coroutines on refusal.

    Returns the inputs as the engine takes them: coroutine objects and zero-argument
    async callables as given, handles and other awaitables wrapped in a coroutine
    function that awaits them.
    """
    prepared: list[Any] = []
    try:
        for position, item in enumerate(work):
            if type(item) is CoroutineType and not has_run(item):  # pyright: ignore[reportUnknownArgumentType]
                prepared.append(item)  # the common input, checked first
            elif isinstance(item, Handle):  # the next most common, before an ABC
                prepared.append((await_handle, item))
            elif isinstance(item, CoroutineType | Coroutine):
                if has_run(item):  # pyright: ignore[reportUnknownArgumentType]
                    what = name_of(item)  # pyright: ignore[reportUnknownArgumentType]
                    raise TypeError(
                        f"{api}() argument {position + 1} is a coroutine ({what}) "
                        "that has already run: a coroutine runs only once. Call the "
                        f"async function again for a fresh one: {api}({what}(...))"
                    )
                prepared.append(item)
            elif _is_asyncio_future(item):
                prepared.append((_await_future, item))
            elif hasattr(item, "__await__"):
                prepared.append((_await_other, item))
            elif isinstance(item, list | tuple | set | frozenset | GeneratorType):
                kind = type(cast("object", item)).__name__
                raise TypeError(
                    f"{api}() argument {position + 1} is a {kind}, not an input: "
                    f"pass the inputs themselves, {api}(*items)"
                )
            elif callable(item):
                _check_callable(api, position, item)
                prepared.append(item)
            else:
                raise _bad_input(api, position, item, "is not awaitable")
    except BaseException:
        close_inputs(work)
        raise
    return prepared


def close_inputs(work: Iterable[object]) -> None:
    """Close the coroutines of refused inputs, those of a list passed by mistake
    too, so that refusing them leaks no "never awaited" warning."""
    for item in work:
        if not has_run(item):  # one another task awaits is not ours to close
            close_if_coroutine(item)
        if isinstance(item, list | tuple | set | frozenset):
            for inner in cast("Iterable[object]", item):
                close_if_coroutine(inner)


def input_coroutine(item: Any) -> Coroutine[Any, Any, Any]:
    """The coroutine for a prepared input: as given, wrapped, or called now."""
    if type(item) is CoroutineType:
        return item  # pyright: ignore[reportUnknownVariableType]
    if type(item) is tuple:
        wrapper, target = cast(
            "tuple[Callable[[Any], Coroutine[Any, Any, Any]], Any]", item
        )
        return wrapper(target)
    if isinstance(item, Coroutine):
        return item  # pyright: ignore[reportUnknownVariableType]
    result = item()
    if isinstance(result, Coroutine):
        return result  # pyright: ignore[reportUnknownVariableType]
    if hasattr(result, "__await__"):
        return _await_other(cast("Awaitable[Any]", result))
    raise TypeError(
        f"{name_of(item)}() returned {type(result).__name__}, not an awaitable: a "
        "callable input is called when its slot frees and what it returns is "
        "awaited, as with `lambda: fetch(url)` or functools.partial(fetch, url)"
    )


def _is_asyncio_future(item: object) -> bool:
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio.isfuture(item)
