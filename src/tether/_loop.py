"""Choosing the backend of the running event loop, once per registry or gather.

Apart from :mod:`tether._backend` (the interface) so that the two backend modules,
which implement it, and this chooser, which imports them, make no import circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["current_backend"]


def current_backend() -> Backend:
    """The backend of the running event loop (asyncio, uvloop or trio)."""
    if anyio.get_cancelled_exc_class().__module__.partition(".")[0] == "trio":
        from ._trio import TrioBackend

        return TrioBackend()
    from ._asyncio import AsyncioBackend

    return AsyncioBackend()
