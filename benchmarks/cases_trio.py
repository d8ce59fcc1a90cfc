"""Cases that only run on trio: the trio floor."""

from __future__ import annotations

from _common import SUSPENDS, Case, Work, missing_module, task_cases


async def nursery_start_soon(n: int, work: Work) -> int:
    """The trio floor: ``nursery.start_soon`` for every task, joined at the nursery's
    exit. A nursery hands back no results, so the count is ``n`` by construction.
    """
    import trio

    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(work)
    return n


CASES: list[Case] = [
    *task_cases(
        "trio.start_soon",
        "trio nursery.start_soon, joined at exit (floor)",
        "spawn",
        ("trio",),
        nursery_start_soon,
        missing_module("trio"),
        native="trio",
    ),
    # For scale, not a figure: the floor with the portable body tether's cases run.
    *task_cases(
        "trio.start_soon/anyio-body",
        "the trio floor, its body suspending at anyio's checkpoint",
        "spawn",
        ("trio",),
        nursery_start_soon,
        missing_module("trio"),
        native="anyio",
        variants=(SUSPENDS,),
    ),
]
