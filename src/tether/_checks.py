"""Checks of the numeric options every API shares, each naming the argument.

One function per kind of value, so that every ``limit`` and every ``timeout`` in
tether refuses bad input with the same words.
"""

from __future__ import annotations

import math

__all__ = ["check_count", "check_item_timeout", "check_rate", "check_seconds"]


def check_count(api: str, name: str, value: object, minimum: int, meaning: str) -> None:
    """Refuse ``value`` unless it is a whole number >= ``minimum`` (bools refused).

    ``meaning`` completes the sentence "must be a whole number >= N ...", e.g.
    ``" (the most inputs running at once), or None for no limit"``.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(
            f"{api}({name}={value!r}): {name} must be a whole number >= {minimum}"
            f"{meaning}"
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
    if (value is not None or required) and not (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (value > 0 if positive else value >= 0)  # NaN fails both
    ):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{api}({name}={value!r}): {name} must be a number of seconds {bound}"
            f"{meaning}"
        )


def check_rate(api: str, name: str, value: object, meaning: str) -> None:
    """Refuse ``value`` unless it is ``None`` or a finite number > 0."""
    if value is not None and not (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 < value < math.inf
    ):
        raise ValueError(
            f"{api}({name}={value!r}): {name} must be a number > 0{meaning}"
        )


def check_item_timeout(api: str, value: object) -> None:
    """Refuse an ``item_timeout`` that is not ``None`` or a number of seconds > 0:
    a wrong type is a TypeError, a wrong number (0, negative, NaN) a ValueError."""
    if value is None:
        return
    fix = "e.g. item_timeout=3.5, or None for no per-item timeout"
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(
            f"{api}(item_timeout={value!r}): item_timeout must be a number of "
            f"seconds, not {type(value).__name__}; {fix}"
        )
    if not value > 0:  # NaN fails it too
        raise ValueError(
            f"{api}(item_timeout={value!r}): item_timeout must be a number of "
            f"seconds > 0 (how long each input may run, counted from its start); "
            f"{fix}"
        )
