"""Bounded fan-out over a large input: ``amap`` reads the input lazily and keeps at
most ``limit`` inputs in flight and ``limit`` results buffered."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.lowlevel

import tether

if TYPE_CHECKING:
    from collections.abc import Iterable


async def size_of(path: str) -> int:
    await anyio.lowlevel.checkpoint()  # stands for reading the file
    return len(path)


async def total_size(paths: Iterable[str]) -> int:
    total = 0
    async with tether.amap(size_of, paths, limit=10) as results:
        async for _path, size in results:  # in completion order, with the input
            total += size
    return total


def every_path() -> Iterable[str]:
    return (f"data/{n:07}.bin" for n in range(1_000_000))  # made as amap reads it
