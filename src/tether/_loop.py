"""Choosing the backend of the running event loop, once per event-loop run.

Apart from :mod:`tether._backend` (the interface) so that the two backend modules,
which implement it, and this chooser, which imports them, make no import circle.

The backend object is made at the first registry or gather of a run and kept in an
anyio ``RunVar``: every later one in the same run reuses it (making it asks anyio
several questions and was half the cost of an empty registry). It is never kept
once per process: pytest runs asyncio and trio, one loop after another, in one
process, and a new run of either gets a backend of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import RunVar

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["current_backend"]

_backend: RunVar[Backend] = RunVar("tether_backend")


def current_backend() -> Backend:
    """The backend of the running event loop (asyncio, uvloop or trio)."""
    try:
        return _backend.get()
    except LookupError:
        backend = _new_backend()
        _backend.set(backend)
        return backend


def _new_backend() -> Backend:
    if anyio.get_cancelled_exc_class().__module__.partition(".")[0] == "trio":
        from ._trio import TrioBackend

        return TrioBackend()
    from ._asyncio import AsyncioBackend

    return AsyncioBackend()
