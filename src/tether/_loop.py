"""Choosing the backend of the running event loop, once per event-loop run.

Apart from :mod:`tether._backend` (the interface) so that the two backend modules,
which implement it, and this chooser, which imports them, make no import circle.

The backend object is made at the first registry or gather of a run and kept for
that run: every later one in the same run reuses it (making it asks anyio several
questions and was half the cost of an empty registry). It is never kept once per
process: pytest runs asyncio and trio, one loop after another, in one process, and
a new run of either gets a backend of its own.

It is kept in one slot per thread, next to the run's token (anyio's public
``current_token()``), not in an anyio ``RunVar``: a ``RunVar`` keeps its values in a
weak-key dictionary keyed by the loop, and a backend refers to its loop, so the
entry, and the loop with everything it holds, would never be freed. The slot keeps
at most the last finished run of a thread alive, until that thread's next run makes
its first registry.

In front of the slots, the last backend found in any thread, with its token: a run
that opens one registry after another finds it with one read instead of the slot's
lookups (issue #27 item 4). The token is the running loop, which belongs to one
thread, so the pair can only match in the thread whose run it is. It keeps at most
one finished run alive, until the next registry of any thread.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ["current_backend"]


class _Slot(threading.local):
    token: object = None
    backend: Backend | None = None


_slot = _Slot()
#: (token, backend) of the last backend found, in any thread.
_last: tuple[object, Backend | None] = (None, None)


def current_backend() -> Backend:
    """The backend of the running event loop (asyncio, uvloop or trio)."""
    global _last
    modules = sys.modules
    try:  # _native_token(), its common case inline
        token = (
            modules["asyncio"].get_running_loop()
            if "trio" not in modules
            else _native_token()
        )
    except Exception:  # no event loop: _native_token() raises anyio's own error
        token = _native_token()
    last = _last
    if last[0] is token and last[1] is not None:
        return last[1]
    slot = _slot
    backend = slot.backend
    if backend is None or slot.token is not token:
        backend = _new_backend()
        slot.token, slot.backend = token, backend
    _last = (token, backend)
    return backend


def _new_backend() -> Backend:
    if anyio.get_cancelled_exc_class().__module__.partition(".")[0] == "trio":
        from ._trio import TrioBackend

        return TrioBackend()
    from ._asyncio import AsyncioBackend

    return AsyncioBackend()


def _native_token() -> object:
    """``current_token().native_token``, the running loop on asyncio, without
    anyio's dispatch, which cost a short-lived registry a sixth of its time
    (issue #27 item 4). anyio answers the same question through sniffio, or
    assumes asyncio without it; anything unexpected goes to anyio itself, which
    raises what it raises outside an event loop."""
    modules = sys.modules
    try:
        # Without trio imported, no trio run can be under way: no need to ask.
        # (trio imports sniffio, what anyio itself asks: without it, anyio.)
        if "trio" not in modules:
            return modules["asyncio"].get_running_loop()
        sniffio = modules.get("sniffio")
        if sniffio is not None and sniffio.current_async_library() == "asyncio":
            return modules["asyncio"].get_running_loop()
    except Exception:  # no event loop: anyio's own error
        pass
    from anyio.lowlevel import current_token  # rare: imported when first needed

    return current_token().native_token
