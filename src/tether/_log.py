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
    attributes (``level``...) are read from the logger each time."""

    def __getattr__(self, name: str) -> Any:
        import logging

        value = getattr(logging.getLogger("tether"), name)
        if callable(value):
            setattr(self, name, value)
        return value


logger = cast("logging.Logger", _Logger())
