"""A program whose main awaits a task that sleeps 60 s, and whose Ctrl+C handler,
installed with ``signal.signal``, cancels that task: run by tests/test_handle.py in
a subprocess, which sends SIGINT once this prints ``ready``.

Usage: ``python tests/cancel_on_signal.py BACKEND HOW``, BACKEND one of asyncio,
uvloop, trio; HOW one of handle (``handle.cancel()``) or registry
(``tasks.cancel_all()``), or helper (``tether.cancel_on_signal(handle)``, run by
tests/test_signals.py). Prints ``cancelled`` (``cancelled SIGINT`` for helper) and
exits 0 once the cancellation lands; with nothing to wake the sleeping loop, it
would sleep the full 60 s.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import anyio

import tether

if TYPE_CHECKING:
    from types import FrameType


async def nap() -> None:
    print("ready", flush=True)
    await anyio.sleep(60)


async def main(how: str) -> None:
    async with tether.TaskRegistry(name="cli") as tasks:
        handle = tasks.spawn(nap)
        if how == "helper":
            with tether.cancel_on_signal(handle, signal.SIGINT) as cancelling:
                try:
                    await handle
                except tether.TaskCancelled:
                    assert cancelling.received is not None
                    print(f"cancelled {cancelling.received.name}", flush=True)
            return

        def on_ctrl_c(signum: int, frame: FrameType | None) -> None:
            if how == "handle":
                handle.cancel()
            else:
                tasks.cancel_all()

        signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            await handle
        except tether.TaskCancelled:
            print("cancelled", flush=True)


if __name__ == "__main__":
    backend, how = sys.argv[1:]
    if backend == "trio":
        import trio

        trio.run(main, how)
    elif backend == "uvloop":
        import uvloop

        uvloop.run(main(how))
    else:
        import asyncio

        asyncio.run(main(how))
