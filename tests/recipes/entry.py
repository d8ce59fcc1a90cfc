"""A registry around ``main``, the same code run by ``asyncio.run`` or ``trio.run``."""

from __future__ import annotations

import asyncio

import anyio.lowlevel

import tether


async def refresh_cache(log: list[str]) -> None:
    await anyio.lowlevel.checkpoint()  # stands for real I/O
    log.append("cache refreshed")


async def main(log: list[str]) -> None:
    async with tether.TaskRegistry(name="app", shutdown_timeout=10) as tasks:
        tasks.spawn(refresh_cache, log)  # runs while main goes on
        log.append("main goes on")
    # leaving the block waited for refresh_cache (10 s at most, then cancelled it)
    log.append("every task has ended")


def run_on_asyncio(log: list[str]) -> None:
    asyncio.run(main(log))


def run_on_trio(log: list[str]) -> None:
    import trio

    trio.run(main, log)
