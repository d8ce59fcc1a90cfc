"""Cases built on anyio, so they run on every backend: anyio itself, asyncer and
aiometer.
"""

from __future__ import annotations

from _common import BACKENDS, Case, Work, missing_module, task_cases

#: The concurrency bound of the bounded cases (``amap`` and bounded ``run_all``).
LIMIT = 100


async def anyio_start_soon(n: int, work: Work) -> int:
    """anyio >= 4.14: ``start_soon`` returns a handle; await each inside the group."""
    import anyio

    total = 0
    async with anyio.create_task_group() as tg:
        handles = [tg.start_soon(work) for _ in range(n)]
        for handle in handles:
            total += await handle
    return total


async def anyio_gather(n: int, work: Work) -> int:
    import anyio

    results = await anyio.gather(*(work() for _ in range(n)))
    return sum(results)


async def asyncer_soonify(n: int, work: Work) -> int:
    import asyncer

    async with asyncer.create_task_group() as tg:
        soon = tg.soonify(work)
        values = [soon() for _ in range(n)]
    return sum(value.value for value in values)


async def aiometer_run_all(n: int, work: Work) -> int:
    import aiometer

    return sum(await aiometer.run_all([work] * n))


async def aiometer_run_all_limited(n: int, work: Work) -> int:
    import aiometer

    return sum(await aiometer.run_all([work] * n, max_at_once=LIMIT))


async def aiometer_amap(n: int, work: Work) -> int:
    import aiometer

    total = 0
    async with aiometer.amap(work, range(n), max_at_once=LIMIT) as results:
        async for result in results:
            total += result
    return total


def _needs_anyio_gather() -> str | None:
    import anyio

    if not hasattr(anyio, "gather"):
        return "anyio.gather needs anyio 4.15+"
    return None


def _needs_handles() -> str | None:
    import anyio

    if not hasattr(anyio, "TaskHandle"):
        return "start_soon returns a handle only from anyio 4.14"
    return None


CASES: list[Case] = [
    *task_cases(
        "anyio.start_soon",
        "anyio TaskGroup.start_soon, await each handle",
        "spawn",
        BACKENDS,
        anyio_start_soon,
        _needs_handles,
    ),
    *task_cases(
        "anyio.gather",
        "anyio.gather(*coros)",
        "gather",
        BACKENDS,
        anyio_gather,
        _needs_anyio_gather,
    ),
    *task_cases(
        "asyncer.soonify",
        "asyncer soonify, values read after the group",
        "spawn",
        BACKENDS,
        asyncer_soonify,
        missing_module("asyncer"),
    ),
    *task_cases(
        "aiometer.run_all",
        "aiometer.run_all([fn] * n)",
        "gather",
        BACKENDS,
        aiometer_run_all,
        missing_module("aiometer"),
    ),
    *task_cases(
        "aiometer.run_all/limit",
        f"aiometer.run_all(..., max_at_once={LIMIT})",
        "bounded",
        BACKENDS,
        aiometer_run_all_limited,
        missing_module("aiometer"),
    ),
    *task_cases(
        "aiometer.amap/limit",
        f"aiometer.amap(fn, items, max_at_once={LIMIT})",
        "bounded",
        BACKENDS,
        aiometer_amap,
        missing_module("aiometer"),
    ),
]
