"""Checks of the options every API shares, each naming the argument.

One function per kind of option, so that every ``limit``, every ``timeout`` and
every flag in tether refuses bad input with the same words and by one rule: a value
of the wrong type raises :exc:`TypeError`, a value of the right type out of range
raises :exc:`ValueError`. A bool is never taken for a number.

Each message starts with the call as the user wrote it: ``api`` is the function's
name (``"TaskRegistry"`` gives ``TaskRegistry(limit=0)``), or the start of the
call when the option follows other arguments (``"spawn(..., "`` gives
``spawn(..., timeout=0)``).
"""

from __future__ import annotations

import math

__all__ = [
    "check_choice",
    "check_count",
    "check_flag",
    "check_name",
    "check_rate",
    "check_seconds",
]


def _call(api: str, name: str, value: object) -> str:
    """``api(name=value)``, as the message starts (see the module's docstring)."""
    if api.endswith(" "):
        return f"{api}{name}={value!r})"
    return f"{api}({name}={value!r})"


def _number(value: object) -> float | None:
    """``value`` if it is an int or a float (not a bool), else ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def check_count(api: str, name: str, value: object, minimum: int, meaning: str) -> None:
    """Refuse ``value`` unless it is a whole number (an ``int``) >= ``minimum``;
    a ``float``, even ``3.0``, is of the wrong type.

    ``meaning`` completes the sentence "must be a whole number >= N ...", e.g.
    ``" (the most inputs running at once), or None for no limit"``.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return
    whole = isinstance(value, int) and not isinstance(value, bool)
    error = ValueError if whole else TypeError
    raise error(
        f"{_call(api, name, value)}: {name} must be a whole number >= {minimum}"
        + meaning
    )


def check_seconds(
    api: str,
    name: str,
    value: object,
    meaning: str,
    *,
    positive: bool = False,
    required: bool = False,
) -> None:
    """Refuse ``value`` unless it is a number of seconds >= 0 (> 0 with
    ``positive``), or ``None`` (unless ``required``)."""
    if value is None and not required:
        return
    seconds = _number(value)
    if seconds is None:
        error: type[Exception] = TypeError
    elif seconds > 0 if positive else seconds >= 0:  # NaN fails both
        return
    else:
        error = ValueError
    bound = "> 0" if positive else ">= 0"
    raise error(
        f"{_call(api, name, value)}: {name} must be a number of seconds {bound}"
        + meaning
    )


def check_rate(api: str, name: str, value: object, meaning: str) -> None:
    """Refuse ``value`` unless it is ``None`` or a finite number > 0."""
    if value is None:
        return
    rate = _number(value)
    if rate is not None and 0 < rate < math.inf:
        return
    error = TypeError if rate is None else ValueError
    raise error(f"{_call(api, name, value)}: {name} must be a number > 0{meaning}")


def check_flag(api: str, name: str, value: object) -> None:
    """Refuse ``value`` unless it is ``True`` or ``False``."""
    if value is not True and value is not False:
        raise TypeError(f"{_call(api, name, value)}: {name} must be True or False")


def check_name(api: str, name: str, value: object, meaning: str = "") -> None:
    """Refuse ``value`` unless it is a str."""
    if not isinstance(value, str):
        raise TypeError(f"{_call(api, name, value)}: {name} must be a str{meaning}")


def check_choice(
    api: str, name: str, value: object, choices: tuple[str, ...], lesson: str
) -> None:
    """Refuse ``value`` unless it is one of the words ``choices``: another str is
    a wrong value, anything else a wrong type. ``lesson`` says what each means."""
    if isinstance(value, str) and value in choices:
        return
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"{_call(api, name, value)}: {lesson}")
