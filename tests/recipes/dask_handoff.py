# distributed leaves many parameters unannotated: pyright sees them as Unknown.
# pyright: reportUnknownMemberType=false, reportUnknownArgumentType=false
# pyright: reportUnknownVariableType=false
"""Hand work to a Dask cluster: ``amap`` or ``run_all`` bounds the futures in flight,
the results come back typed, and a cancelled caller cancels its futures."""

from __future__ import annotations

import random
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

import tether

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable

    from distributed import Client

A = TypeVar("A")
R = TypeVar("R")


def on_dask(
    client: Client, fn: Callable[[A], R]
) -> Callable[[A], Coroutine[Any, Any, R]]:
    """``fn`` as an async function that runs ``fn(arg)`` on the cluster.

    The event loop never blocks: a thread waits for the Dask future. If the caller
    is cancelled (or leaves an ``amap`` block early), the future is cancelled: the
    scheduler drops it, and a call already running on a worker runs to its end (a
    thread cannot be interrupted) with its result thrown away.
    """

    async def run(arg: A) -> R:
        future = client.submit(fn, arg, pure=False)
        try:
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        finally:
            if not future.done():  # cancelled before the result came back
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(future.cancel)

    return run


def simulate(seed: int) -> float:
    """CPU-bound work for a Dask worker: the mean position of a seeded random walk."""
    rng = random.Random(seed)
    position = total = 0.0
    for _ in range(1000):
        position += rng.uniform(-1, 1)
        total += position
    return total / 1000


async def simulate_all(
    client: Client, seeds: Iterable[int], *, limit: int
) -> dict[int, float]:
    """Every seed's result, with at most ``limit`` futures on the cluster at once."""
    means: dict[int, float] = {}
    async with tether.amap(on_dask(client, simulate), seeds, limit=limit) as done:
        async for seed, mean in done:  # in completion order, with the input
            means[seed] = mean
    return means


async def simulate_batch(
    client: Client, seeds: list[int], *, limit: int
) -> tuple[float, ...]:
    """The same as a deferred gather: the results in input order."""
    remote = on_dask(client, simulate)
    return await tether.run_all(*(partial(remote, seed) for seed in seeds), limit=limit)


def main() -> None:
    from distributed import Client, LocalCluster

    # processes=False keeps this small and quick; CPU-bound Python work wants the
    # default, worker processes, so that the GIL does not serialise it.
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            dashboard_address="127.0.0.1:0",  # any free port, on loopback
        ) as cluster,
        Client(cluster) as client,
    ):
        means = anyio.run(partial(simulate_all, client, range(200), limit=16))
    print(f"{len(means)} walks, the first ends near {means[0]:.2f}")
