"""The logger ``"tether"``, defined once: every record tether writes goes to it.

Each record carries two extra fields, ``tether_registry`` and ``tether_task`` (the
names, or ``None``), so a handler or a filter can route by them.

``logging`` is imported on the first use of :data:`logger`, not with tether: with
what it imports (``traceback``, ``string``, ``textwrap``) it was a fifth of
``import tether``, and a program that nothing goes wrong in may never need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import logging

__all__ = ["DEBUG", "INFO", "logger"]

#: logging's levels, so that asking whether one is enabled imports nothing.
DEBUG = 10
INFO = 20


class _Logger:
    """``logging.getLogger("tether")``, looked up when first used. Its methods are
    kept once looked up (the logger they are bound to never changes); other
    attributes (``level``, ``propagate``...) are read from the logger each time,
    and written to it."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(_real(), name)
        if callable(value):
            self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value: object) -> None:
        self.__dict__.pop(name, None)  # a method kept here must not shadow it
        setattr(_real(), name, value)


def _real() -> logging.Logger:
    import logging

    return logging.getLogger("tether")


logger = cast("logging.Logger", _Logger())
