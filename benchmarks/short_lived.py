"""Short-lived registries and one-item gathers, beside their asyncio equivalents.

    python benchmarks/short_lived.py [--rounds N] [--loop asyncio|uvloop]
                                     [--clock wall|cpu]

Issue 27, item 4: an app that opens a registry per request (a scan owning its
thumbnails) pays for opening and closing it every time, and a gather of a single
handle pays the whole machinery of a gather. Each case runs ``INNER`` times per
sample inside one running event loop, after ``gc.collect()``; the cases are
interleaved round by round, and the report gives each case's median per operation
and its ratio to the asyncio equivalent measured in the same rounds. Absolute
times mean little on a loaded machine; the ratios are the figures. With
``--clock cpu`` each sample is the process's CPU time rather than the wall clock's:
on a machine shared with other work, the time the process waits for a core
(which swung one case's asyncio reference sixfold between rounds) stays out.

* ``registry open+close, k tasks``: ``async with TaskRegistry() as t`` spawning
  ``k`` tasks that suspend once, against ``asyncio.TaskGroup`` (on 3.10,
  ``create_task`` + ``gather``) doing the same.
* ``as_completed of 1 handle``: ``async with as_completed(handle)`` over a handle
  of an open registry, against ``asyncio.wait({task})`` of a task.
* ``settle_all of 1 handle``: against ``asyncio.gather(task,
  return_exceptions=True)``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import TYPE_CHECKING, TypeAlias

import tether

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: Operations per timed sample.
INNER = 200

#: The clock a sample reads: the wall clock, or the process's CPU time.
clock = time.perf_counter_ns

#: One timed operation.
Op: TypeAlias = "Callable[[], Awaitable[None]]"


async def work() -> int:
    await asyncio.sleep(0)
    return 1


async def tether_registry(k: int) -> None:
    async with tether.TaskRegistry() as tasks:
        for _ in range(k):
            tasks.spawn(work)


async def asyncio_group(k: int) -> None:
    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            for _ in range(k):
                group.create_task(work())
    else:  # pragma: no cover - 3.10 has no TaskGroup
        await asyncio.gather(*[asyncio.create_task(work()) for _ in range(k)])


async def tether_as_completed(tasks: tether.TaskRegistry) -> None:
    handle = tasks.spawn(work)
    async with tether.as_completed(handle) as completed:
        async for _ in completed:
            pass


async def asyncio_wait() -> None:
    task = asyncio.create_task(work())
    await asyncio.wait({task})


async def tether_settle_all(tasks: tether.TaskRegistry) -> None:
    handle = tasks.spawn(work)
    await tether.settle_all(handle)


async def asyncio_gather() -> None:
    task = asyncio.create_task(work())
    await asyncio.gather(task, return_exceptions=True)


async def sample(op: Callable[[], Awaitable[None]]) -> float:
    """Microseconds per operation, over INNER operations."""
    gc.collect()
    start = clock()
    for _ in range(INNER):
        await op()
    return (clock() - start) / INNER / 1000


async def measure(rounds: int) -> list[tuple[str, float, float]]:
    """(case, tether's median µs, asyncio's median µs) for each case."""
    async with tether.TaskRegistry(name="gathers") as shared:
        pairs: list[tuple[str, Op, Op]] = [
            (
                f"registry open+close, {k} task(s)",
                _bind(tether_registry, k),
                _bind(asyncio_group, k),
            )
            for k in (0, 1, 10)
        ]
        pairs += [
            (
                "as_completed of 1 handle",
                lambda: tether_as_completed(shared),
                asyncio_wait,
            ),
            (
                "settle_all of 1 handle",
                lambda: tether_settle_all(shared),
                asyncio_gather,
            ),
        ]
        times: dict[str, tuple[list[float], list[float]]] = {
            name: ([], []) for name, _, _ in pairs
        }
        for _ in range(rounds):
            for name, ours, theirs in pairs:
                times[name][0].append(await sample(ours))
                times[name][1].append(await sample(theirs))
    return [
        (name, statistics.median(ours), statistics.median(theirs))
        for name, (ours, theirs) in times.items()
    ]


def _bind(
    fn: Callable[[int], Awaitable[None]], k: int
) -> Callable[[], Awaitable[None]]:
    return lambda: fn(k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    options = parser.parse_args()
    if options.clock == "cpu":
        global clock
        clock = time.process_time_ns
    if options.loop == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    if sys.version_info < (3, 11):  # pragma: no cover
        raise SystemExit("this benchmark needs Python 3.11 or newer (asyncio.Runner)")
    with asyncio.Runner(loop_factory=factory) as runner:
        results = runner.run(measure(options.rounds))
    print(
        f"Python {sys.version.split()[0]}, {options.loop}, "
        f"{options.rounds} rounds of {INNER}, {options.clock} clock"
    )
    print(f"{'case':<34} {'tether µs':>10} {'asyncio µs':>11} {'ratio':>6}")
    for name, ours, theirs in results:
        print(f"{name:<34} {ours:>10.1f} {theirs:>11.1f} {ours / theirs:>5.2f}x")


if __name__ == "__main__":
    main()
