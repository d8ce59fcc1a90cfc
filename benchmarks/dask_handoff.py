"""The Dask hand-off recipe's overhead against calling the Dask client directly.

    python benchmarks/dask_handoff.py [--n 500] [--limit 16] [--repeat 5]

One ``LocalCluster`` (one worker, two threads, no processes), the same ``n`` calls
of a function, measured in one run, the cases interleaved, median of ``repeat``:

- ``dask map+gather``: ``client.gather(client.map(fn, items))``, every future
  submitted at once (no bound);
- ``dask window``: at most ``limit`` futures in flight, by hand with
  ``distributed.as_completed`` (submit the next as each one completes);
- ``tether amap``: the recipe's ``amap(on_dask(client, fn), items, limit=limit)``
  on asyncio, and on trio;
- ``tether run_all``: ``run_all(*(partial(remote, x) ...), limit=limit)`` on asyncio.

Two functions: ``square`` (nothing to compute: the cost is all hand-off) and the
recipe's ``simulate`` (a 1,000-step random walk). Prints a table of medians and of
ratios to ``dask window``, the direct call with the same bound.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import tether

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from recipes.dask_handoff import on_dask, simulate

if TYPE_CHECKING:
    from collections.abc import Callable

    from distributed import Client


def square(x: int) -> int:
    return x * x


def dask_map(client: Client, fn: Callable[[int], Any], n: int, limit: int) -> None:
    client.gather(client.map(fn, range(n), pure=False))


def dask_window(client: Client, fn: Callable[[int], Any], n: int, limit: int) -> None:
    from distributed import as_completed

    items = iter(range(n))
    window = as_completed(
        [client.submit(fn, x, pure=False) for x in islice(items, limit)]
    )
    for future in window:
        future.result()
        for x in items:
            window.add(client.submit(fn, x, pure=False))
            break


async def _amap(client: Client, fn: Callable[[int], Any], n: int, limit: int) -> None:
    async with tether.amap(on_dask(client, fn), range(n), limit=limit) as done:
        async for _ in done:
            pass


async def _run_all(
    client: Client, fn: Callable[[int], Any], n: int, limit: int
) -> None:
    remote = on_dask(client, fn)
    await tether.run_all(*(partial(remote, x) for x in range(n)), limit=limit)


def tether_amap(client: Client, fn: Callable[[int], Any], n: int, limit: int) -> None:
    anyio.run(_amap, client, fn, n, limit)


def tether_amap_trio(
    client: Client, fn: Callable[[int], Any], n: int, limit: int
) -> None:
    anyio.run(_amap, client, fn, n, limit, backend="trio")


def tether_run_all(
    client: Client, fn: Callable[[int], Any], n: int, limit: int
) -> None:
    anyio.run(_run_all, client, fn, n, limit)


CASES = {
    "dask map+gather": dask_map,
    "dask window": dask_window,
    "tether amap (asyncio)": tether_amap,
    "tether amap (trio)": tether_amap_trio,
    "tether run_all (asyncio)": tether_run_all,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        for fn in (square, simulate):
            times: dict[str, list[float]] = {name: [] for name in CASES}
            CASES["dask window"](client, fn, options.limit, options.limit)  # warm up
            for _ in range(options.repeat):
                for name, case in CASES.items():
                    start = time.perf_counter()
                    case(client, fn, options.n, options.limit)
                    times[name].append(time.perf_counter() - start)
            base = statistics.median(times["dask window"])
            print(
                f"\n{fn.__name__}: n={options.n}, limit={options.limit}, "
                f"median of {options.repeat}"
            )
            print(f"{'case':26} {'ms':>8} {'per call':>9} {'/ window':>9}")
            for name, values in times.items():
                median = statistics.median(values)
                print(
                    f"{name:26} {median * 1e3:8.1f} {median / options.n * 1e6:7.0f}us"
                    f" {median / base:8.2f}x"
                )


if __name__ == "__main__":
    main()
