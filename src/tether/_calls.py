"""Turning what users pass to a spawn into a coroutine, or a clear error.

Shared by every spawn and by the gather family. The checks run before anything is
started, and never call a function that is not known to be async: a sync function
passed by mistake must fail at the spawn without running (``time.sleep`` would
block the loop).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import weakref
from collections.abc import Coroutine
from types import CoroutineType, FunctionType, MethodType
from typing import Any, cast

from ._checks import check_flag, check_name, check_seconds

__all__ = [
    "CO_COROUTINE",
    "arguments_misfit",
    "check_callable_with",
    "check_spawn_options",
    "checked_coroutine",
    "close_if_coroutine",
    "coroutine_from",
    "describe",
    "has_run",
    "is_async_callable",
    "name_of",
    "refuse_ambiguous_options",
    "refuse_if_coroutine",
    "refuse_keywords",
    "spawn_site",
]

#: inspect.CO_COROUTINE, without importing inspect (it is imported only when needed)
CO_COROUTINE = 0x80
_PACKAGE_DIR = os.path.dirname(__file__) + os.sep


def describe(obj: object) -> str:
    """A short, readable name of ``obj`` for error messages."""
    name = getattr(obj, "__qualname__", None)
    if isinstance(name, str):
        return name
    return repr(obj) if len(repr(obj)) < 60 else type(obj).__qualname__


def name_of(obj: object) -> str:
    """The default task name: the function's (or coroutine's) ``__qualname__``."""
    while True:
        name = getattr(obj, "__qualname__", None)
        if isinstance(name, str):
            return name
        inner = getattr(obj, "func", None)  # functools.partial
        if inner is None:
            return type(obj).__qualname__
        obj = inner


def close_if_coroutine(obj: object) -> None:
    """Close ``obj`` if it is a coroutine object, so refusing it leaks no warning."""
    if isinstance(obj, CoroutineType | Coroutine):
        obj.close()


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine, known without calling it."""
    import functools
    import inspect

    while isinstance(fn, functools.partial):
        fn = fn.func

    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - the type's __call__
    return call is not None and inspect.iscoroutinefunction(call)


def coroutine_from(
    fn: Any, args: tuple[Any, ...], api: str
) -> Coroutine[Any, Any, Any]:
    """Return the coroutine ``fn(*args)``, or ``fn`` itself if it is a coroutine object.

    Raises ``TypeError`` naming ``api`` and showing the fix for: a coroutine object
    given arguments, a sync function, a non-callable, and arguments that do not fit
    an async function.
    """
    if type(fn) is FunctionType:  # the common case, checked without inspect
        is_async = bool(fn.__code__.co_flags & CO_COROUTINE)
    elif isinstance(fn, CoroutineType | Coroutine):
        if args:
            close_if_coroutine(fn)  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(
                f"{api}() got a coroutine object "
                f"({describe(fn)}) and arguments "  # pyright: ignore[reportUnknownArgumentType]
                f"{args!r}: a coroutine object already has its arguments. Pass "
                f"either {api}(fn, *args) or {api}(fn(*args))"
            )
        if isinstance(fn, CoroutineType) and has_run(
            fn  # pyright: ignore[reportUnknownArgumentType]
        ):
            close_if_coroutine(fn)  # pyright: ignore[reportUnknownArgumentType]
            what = name_of(fn)  # pyright: ignore[reportUnknownArgumentType]
            raise TypeError(
                f"{api}() got a coroutine ({what}) that has already run: a "
                "coroutine runs only once. Call the async function again for a "
                f"fresh one: {api}({what}(...))"
            )
        return fn  # pyright: ignore[reportUnknownVariableType]
    elif not callable(fn):
        raise TypeError(
            f"{api}() takes an async function or a coroutine object, got "
            f"{type(fn).__name__} {describe(fn)}"
            + (
                ": to wait for an awaitable, await it inside an async function"
                if hasattr(fn, "__await__")
                else ""
            )
        )
    else:
        is_async = is_async_callable(fn)
    if not is_async:
        import inspect

        if inspect.isasyncgenfunction(fn):
            raise TypeError(
                f"{api}() takes an async function, but {describe(fn)} is an async "
                "generator function: a task returns a result, it does not yield. "
                "Consume it in an async function and spawn that: "
                "`async def drain(): async for item in agen(): ...`"
            )
        raise TypeError(
            f"{api}() takes an async function, but {describe(fn)} is a sync function "
            f"and was not called. Make it `async def`, or run it in a worker thread "
            f"with anyio.to_thread.run_sync. If it returns a coroutine, call it "
            f"yourself: {api}({describe(fn)}(...))"
        )
    try:
        coro = fn(*args)
    except TypeError as exc:
        # Calling an async function only binds its arguments; a TypeError here is
        # always a signature mismatch, never an error from the function's body.
        raise arguments_misfit(api, fn, exc) from None
    return checked_coroutine(api, fn, coro)


def arguments_misfit(api: str, fn: object, exc: TypeError) -> TypeError:
    """The error for arguments that do not fit ``fn``, showing how to pass them."""
    return TypeError(
        f"{api}({describe(fn)}, ...): {exc}. Pass positional arguments after the "
        f"function, {api}(fn, arg1, arg2), and keyword arguments through "
        f"functools.partial: {api}(functools.partial(fn, key=value))"
    )


def checked_coroutine(api: str, fn: object, coro: object) -> Coroutine[Any, Any, Any]:
    """``coro``, which calling ``fn`` returned, if it is a coroutine."""
    if not isinstance(coro, CoroutineType | Coroutine):
        raise TypeError(
            f"{api}() expected {describe(fn)}(...) to return a coroutine, got "
            f"{type(coro).__name__}"
        )
    return coro  # pyright: ignore[reportUnknownVariableType]


def check_callable_with(fn: Any, args: tuple[Any, ...], api: str) -> None:
    """Refuse, as :func:`coroutine_from` would, an ``fn`` that is not an async
    function or whose signature ``args`` do not fit, without calling it: for an
    API that calls ``fn`` later, and maybe many times."""
    import inspect

    if not is_async_callable(fn):
        coroutine_from(fn, args, api).close()  # raises the teaching error
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to check: the call will tell
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        raise arguments_misfit(api, fn, exc) from None


def has_run(coro: object) -> bool:
    """Whether ``coro`` is a native coroutine object that has started (or finished,
    or was closed): one that can never run from its start again."""
    if type(coro) is not CoroutineType:
        return False
    import inspect

    state = inspect.getcoroutinestate(cast("Coroutine[Any, Any, Any]", coro))
    return state != inspect.CORO_CREATED


def spawn_site() -> str:
    """``"file:line"`` of the innermost caller outside tether itself."""
    # CPython's own accessor (inspect.currentframe() wraps it in one call more).
    frame = sys._getframe(1)  # pyright: ignore[reportPrivateUsage]
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _PACKAGE_DIR
    ):
        frame = frame.f_back
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def refuse_if_coroutine(fn: object, api: str, why: str) -> None:
    """Refuse a coroutine object where a function to call is needed (closing it),
    saying ``why``."""
    if isinstance(fn, CoroutineType | Coroutine):
        close_if_coroutine(fn)  # pyright: ignore[reportUnknownArgumentType]
        raise TypeError(
            f"{api}() got a coroutine object ({describe(fn)}): {why}. "  # pyright: ignore[reportUnknownArgumentType]
            f"Pass the async function and its arguments: {api}(fn, *args)"
        )


def refuse_keywords(fn: object, kwargs: dict[str, object], api: str) -> None:
    """Refuse keyword arguments meant for ``fn``, showing ``functools.partial``."""
    close_if_coroutine(fn)
    given = ", ".join(f"{key}=..." for key in kwargs)
    raise TypeError(
        f"{api}() got keyword arguments ({given}) it does not take. Arguments for "
        f"the function go through functools.partial: "
        f"{api}(functools.partial({describe(fn)}, {given}))"
    )


def check_spawn_options(
    fn: object,
    api: str,
    name: object,
    context: object,
    daemon: object,
    timeout: object = None,
    args: tuple[object, ...] | None = None,
) -> None:
    """Refuse spawn options of the wrong type, naming the option (``fn`` is closed
    if it is a coroutine, so nothing leaks); with ``args``, also an option that
    names a keyword parameter of ``fn`` (:func:`refuse_ambiguous_options`)."""
    from contextvars import Context

    call = f"{api}(..., "
    try:
        if name is not None:
            check_name(call, "name", name, ", or None for fn.__qualname__")
        if context is not None and not isinstance(context, Context):
            raise TypeError(
                f"{call}context={describe(context)}): context must be a "
                "contextvars.Context, such as contextvars.copy_context(), or None "
                "for the caller's"
            )
        check_flag(call, "daemon", daemon)
        check_seconds(
            call,
            "timeout",
            timeout,
            " (how long the task may run before it fails with TimeoutError), or "
            "None for no timeout",
            positive=True,
        )
    except (TypeError, ValueError):
        close_if_coroutine(fn)
        raise
    if args is not None:
        given: dict[str, object] = {
            option: value
            for option, value, default in (
                ("name", name, None),
                ("context", context, None),
                ("daemon", daemon, False),
                ("timeout", timeout, None),
            )
            if value is not default
        }
        refuse_ambiguous_options(fn, args, api, given)


#: per function: its parameters that take a positional argument, in order, and
#: those a keyword can name (computed once, on the first spawn given an option)
_parameters: weakref.WeakKeyDictionary[object, tuple[tuple[str, ...], frozenset[str]]]
_parameters = weakref.WeakKeyDictionary()


def _parameters_of(fn: object) -> tuple[tuple[str, ...], frozenset[str]] | None:
    try:
        return _parameters[fn]
    except (KeyError, TypeError):  # TypeError: not weakly referenceable
        pass
    import inspect

    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # no signature to read: nothing to misread
        return None
    kind = inspect.Parameter
    positional = tuple(
        p.name
        for p in signature.parameters.values()
        if p.kind in (kind.POSITIONAL_ONLY, kind.POSITIONAL_OR_KEYWORD)
    )
    keywords = frozenset(
        p.name
        for p in signature.parameters.values()
        if p.kind in (kind.POSITIONAL_OR_KEYWORD, kind.KEYWORD_ONLY)
    )
    found = positional, keywords
    with contextlib.suppress(TypeError):
        _parameters[fn] = found
    return found


def refuse_ambiguous_options(
    fn: object, args: tuple[object, ...], api: str, options: dict[str, object]
) -> None:
    """Refuse an option of ``api`` (given, not its default) that also names a
    keyword parameter of ``fn`` left unbound by ``args``: which of the two was meant
    cannot be told, and reading it as the option silently leaves the function its
    default (a ``timeout`` an HTTP function takes, say). Called only when an option
    is given; the signature is read once per function."""
    if type(fn) is FunctionType and "__wrapped__" not in fn.__dict__:
        # The common case, read from the code object: most calls end here.
        code = fn.__code__
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if not any(option in names for option in options):
            return
    elif not callable(fn):
        return  # a coroutine object: its arguments are bound already
    given = len(args)
    bound: set[str] = set()
    inner: object = fn
    while True:  # see through partials and bound methods to the function
        if isinstance(inner, functools.partial):
            given += len(inner.args)
            bound.update(inner.keywords)
            inner = inner.func
        elif isinstance(inner, MethodType):
            given += 1
            inner = inner.__func__
        else:
            break
    parameters = _parameters_of(inner)
    if parameters is None:
        return
    positional, keywords = parameters
    for option, value in options.items():
        if (
            option in keywords
            and option not in bound
            and option not in positional[:given]
        ):
            close_if_coroutine(fn)
            what = describe(fn)
            raise TypeError(
                f"{api}({what}, ..., {option}={value!r}): {option!r} is both an "
                f"option of {api}() and a parameter of {what}, so which one was "
                f"meant cannot be told. For {what}'s own {option}, bind it: "
                f"{api}(functools.partial({what}, {option}={value!r}), ...). For "
                f"{api}()'s {option}, bind {what}'s {option} first (its default "
                f"or a value): {api}(functools.partial({what}, {option}=...), "
                f"..., {option}={value!r})"
                + (
                    f", or pass a coroutine object: {api}({what}(...), "
                    f"{option}={value!r})"
                    if api in ("spawn", "spawn_when_free", "spawn_threadsafe")
                    else ""
                )
            )
