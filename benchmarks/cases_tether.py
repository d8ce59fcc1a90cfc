"""tether's cases, written against the public API fixed by the design contract.

Each case checks that ``tether`` imports and has the names it uses; until the core
exists, the harness prints ``tether: not importable yet`` and skips them.
"""

from __future__ import annotations

from typing import Any

from _common import (
    ANYIO_SCOPE,
    ASYNCIO_FAMILY,
    BACKENDS,
    Case,
    Work,
    on_anyio_scope,
    task_cases,
    tether_unavailable,
)
from cases_anyio import LIMIT


async def registry_spawn(n: int, work: Work) -> int:
    import tether

    total = 0
    async with tether.TaskRegistry() as tasks:
        handles = [tasks.spawn(work) for _ in range(n)]
        for handle in handles:
            total += await handle
    return total


async def ambient_spawn(n: int, work: Work) -> int:
    import tether

    total = 0
    async with tether.TaskRegistry():
        handles = [tether.spawn(work) for _ in range(n)]
        for handle in handles:
            total += await handle
    return total


async def run_all(n: int, work: Work) -> int:
    import tether

    results = await tether.run_all(*(work() for _ in range(n)))
    return sum(results)


async def run_all_limited(n: int, work: Work) -> int:
    import tether

    # Callables, as aiometer takes them: each coroutine is made when its slot frees.
    results = await tether.run_all(*([work] * n), limit=LIMIT)
    return sum(results)


async def settle_all(n: int, work: Work) -> int:
    import tether

    results = await tether.settle_all(*(work() for _ in range(n)))
    return sum(r for r in results if isinstance(r, int))


def _value(item: Any) -> int:
    # amap yields results; should it yield (input, result) pairs, count the result.
    return item if isinstance(item, int) else int(item[-1])


async def amap(n: int, work: Work) -> int:
    import tether

    total = 0
    async with tether.amap(work, range(n), limit=LIMIT) as results:
        async for item in results:
            total += _value(item)
    return total


CASES: list[Case] = [
    *task_cases(
        "tether.TaskRegistry.spawn",
        "tether TaskRegistry.spawn, await each handle",
        "spawn",
        BACKENDS,
        registry_spawn,
        tether_unavailable("TaskRegistry"),
    ),
    *task_cases(
        "tether.spawn",
        "tether.spawn (ambient) in a registry, await each",
        "spawn",
        BACKENDS,
        ambient_spawn,
        tether_unavailable("TaskRegistry", "spawn"),
    ),
    *task_cases(
        "tether.run_all",
        "tether.run_all(*coros)",
        "gather",
        BACKENDS,
        run_all,
        tether_unavailable("run_all"),
    ),
    *task_cases(
        "tether.settle_all",
        "tether.settle_all(*coros)",
        "gather",
        BACKENDS,
        settle_all,
        tether_unavailable("settle_all"),
    ),
    *task_cases(
        "tether.run_all/limit",
        f"tether.run_all(*fns, limit={LIMIT})",
        "bounded",
        BACKENDS,
        run_all_limited,
        tether_unavailable("run_all"),
    ),
    *task_cases(
        "tether.amap/limit",
        f"tether.amap(fn, items, limit={LIMIT})",
        "bounded",
        BACKENDS,
        amap,
        tether_unavailable("amap"),
    ),
    # The same two figures on the asyncio scope's fallback, anyio's public
    # CancelScope: the "before" of tether's own scope, measured in the same run.
    *task_cases(
        "tether.TaskRegistry.spawn" + ANYIO_SCOPE,
        "tether TaskRegistry.spawn, await each, on anyio's CancelScope",
        "spawn",
        ASYNCIO_FAMILY,
        on_anyio_scope(registry_spawn),
        tether_unavailable("TaskRegistry"),
    ),
    *task_cases(
        "tether.run_all" + ANYIO_SCOPE,
        "tether.run_all(*coros), on anyio's CancelScope",
        "gather",
        ASYNCIO_FAMILY,
        on_anyio_scope(run_all),
        tether_unavailable("run_all"),
    ),
]
