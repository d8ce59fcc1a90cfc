"""tether on trio, side by side with a trio nursery: spawn, ``run_all(*handles)``
and memory per task.

Usage (from the repository root)::

    python benchmarks/trio_side_by_side.py                # N = 10,000, 9 repeats
    python benchmarks/trio_side_by_side.py --n 2000 --repeat 3

Each repeat runs every case once, interleaved, on a fresh ``trio.run``; the report
gives each case's median time per task, the ratio of that median to the nursery's,
and the median of the ratios to the nursery within each repeat (the machine is
shared: absolute times mean little, ratios within one repeat do). Every task body
suspends once at trio's checkpoint and returns 1.

Cases:

* ``nursery``: ``nursery.start_soon`` for each task, joined at the nursery's exit
  (the floor);
* ``nursery, own CancelScope``: the same, each task entering a ``trio.CancelScope``
  of its own around its body, as every registry task must to be cancellable on
  its own (the floor of any such task);
* ``nursery, own CancelScope + Ctrl+C frame``: the same, the body awaited through
  a frame marked unprotected from KeyboardInterrupt, as tether awaits yours;
* ``registry.spawn``: ``TaskRegistry.spawn`` for each task, joined at the block's
  exit;
* ``registry.spawn, opened``: the same into a registry opened with ``open()`` and
  closed with ``aclose()`` (its tasks are trio system tasks, not the block's
  nursery children);
* ``registry.spawn + run_all(*handles)``: the same, then one ``run_all`` over every
  handle (the seed's ``gather(*tasks)``);
* ``run_all(*coroutines)``: one ``run_all`` over N coroutine objects;
* ``as_nursery(registry).start_soon``: the nursery-shaped object of
  :func:`tether.as_nursery`, as a library handed ``handler_nursery=`` calls it.

Memory: N tasks parked on one ``trio.Event``; tracemalloc's growth from just before
the first spawn to the moment every task is parked, and its peak over the same
window, each divided by N: in a nursery, in a registry (handles dropped, then
kept), and in a registry while one ``run_all(*handles)`` waits for all of them.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import trio
import trio.lowlevel
import trio.testing

import tether

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def work() -> int:
    await trio.lowlevel.checkpoint()
    return 1


async def nursery(n: int) -> None:
    async with trio.open_nursery() as tasks:
        for _ in range(n):
            tasks.start_soon(work)


async def scoped() -> int:
    with trio.CancelScope():
        return await work()


@trio.lowlevel.disable_ki_protection
async def interruptible(coro: Awaitable[int]) -> int:
    return await coro


async def scoped_interruptible() -> int:
    with trio.CancelScope():
        return await interruptible(work())


async def nursery_scoped(n: int) -> None:
    async with trio.open_nursery() as tasks:
        for _ in range(n):
            tasks.start_soon(scoped)


async def nursery_scoped_interruptible(n: int) -> None:
    async with trio.open_nursery() as tasks:
        for _ in range(n):
            tasks.start_soon(scoped_interruptible)


async def registry_opened(n: int) -> None:
    tasks = tether.TaskRegistry()
    await tasks.open()
    for _ in range(n):
        tasks.spawn(work)
    await tasks.aclose()


async def registry_spawn(n: int) -> None:
    async with tether.TaskRegistry() as tasks:
        for _ in range(n):
            tasks.spawn(work)


async def registry_run_all_handles(n: int) -> None:
    async with tether.TaskRegistry() as tasks:
        results = await tether.run_all(*[tasks.spawn(work) for _ in range(n)])
    assert sum(results) == n


async def run_all_coroutines(n: int) -> None:
    results = await tether.run_all(*[work() for _ in range(n)])
    assert sum(results) == n


async def registry_nursery(n: int) -> None:
    async with tether.TaskRegistry() as tasks:
        handler_nursery = tether.as_nursery(tasks)
        for _ in range(n):
            handler_nursery.start_soon(work)


TIMED: dict[str, Callable[[int], Awaitable[None]]] = {
    "nursery": nursery,
    "nursery, own CancelScope": nursery_scoped,
    "nursery, own CancelScope + Ctrl+C frame": nursery_scoped_interruptible,
    "registry.spawn": registry_spawn,
    "registry.spawn, opened": registry_opened,
    "registry.spawn + run_all(*handles)": registry_run_all_handles,
    "run_all(*coroutines)": run_all_coroutines,
}
if hasattr(tether, "as_nursery"):  # from 0.3 on
    TIMED["as_nursery(registry).start_soon"] = registry_nursery


def timed(case: Callable[[int], Awaitable[None]], n: int) -> float:
    async def main() -> float:
        gc.collect()
        start = time.perf_counter_ns()
        await case(n)
        return (time.perf_counter_ns() - start) / n / 1000

    return trio.run(main)


async def park(event: trio.Event) -> None:
    await event.wait()


async def _measure(n: int, spawn: Callable[[trio.Event], None]) -> tuple[int, int]:
    event = trio.Event()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    for _ in range(n):
        spawn(event)
    await trio.testing.wait_all_tasks_blocked()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    event.set()
    return current - base, peak - base


async def memory_nursery(n: int) -> tuple[int, int]:
    async with trio.open_nursery() as tasks:
        return await _measure(n, lambda event: tasks.start_soon(park, event))


async def memory_registry(n: int) -> tuple[int, int]:
    async with tether.TaskRegistry() as tasks:
        return await _measure(n, lambda event: _drop(tasks.spawn(park, event)))


async def memory_registry_kept(n: int) -> tuple[int, int]:
    handles: list[tether.Handle[None]] = []
    async with tether.TaskRegistry() as tasks:
        return await _measure(n, lambda event: handles.append(tasks.spawn(park, event)))


async def memory_run_all_handles(n: int) -> tuple[int, int]:
    """Peak while ``run_all`` waits on N parked tasks' handles."""
    handles: list[tether.Handle[None]] = []
    async with tether.TaskRegistry() as tasks, trio.open_nursery() as waiter:

        def spawn(event: trio.Event) -> None:
            handles.append(tasks.spawn(park, event))
            if len(handles) == n:
                waiter.start_soon(_run_all, handles)

        return await _measure(n, spawn)


async def _run_all(handles: list[tether.Handle[None]]) -> None:
    await tether.run_all(*handles)


def _drop(handle: tether.Handle[Any]) -> None:
    """The handle a spawn returns is dropped: it counts only if tether keeps it."""


MEMORY: dict[str, Callable[[int], Awaitable[tuple[int, int]]]] = {
    "nursery": memory_nursery,
    "registry.spawn": memory_registry,
    "registry.spawn, handles kept": memory_registry_kept,
    "registry.spawn + run_all(*handles)": memory_run_all_handles,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=9)
    options = parser.parse_args()
    n, repeat = options.n, options.repeat

    times: dict[str, list[float]] = {name: [] for name in TIMED}
    for _ in range(repeat):
        for name, case in TIMED.items():
            times[name].append(timed(case, n))
    floors = times["nursery"]
    floor = statistics.median(floors)
    print(f"trio {trio.__version__}, N = {n:,}, {repeat} repeats (median)")
    print(f"{'case':42} {'us/task':>8} {'x nursery':>10} {'per repeat':>11}")
    for name, samples in times.items():
        value = statistics.median(samples)
        ratio = statistics.median(t / f for t, f in zip(samples, floors, strict=True))
        print(f"{name:42} {value:8.2f} {value / floor:10.2f} {ratio:11.2f}")
    print()
    print(f"{'memory, N parked tasks':42} {'B/task':>8} {'peak B/task':>12}")
    for name, case in MEMORY.items():
        grown, peak = trio.run(case, n)
        print(f"{name:42} {grown / n:8.0f} {peak / n:12.0f}")


if __name__ == "__main__":
    main()
