"""The cost of tether.adopt_tasks() per raw create_task + run, on asyncio and uvloop.

    python benchmarks/adopt_overhead.py [--tasks N] [--rounds R] [--json PATH]

``--json benchmarks/results/adopt-py3.13.json`` writes the figures where
``benchmarks/docs_tables.py`` reads them for the benchmarks page (its ``adopt``
region): the page's figures are never copied by hand.

In each round and on each loop, the same case runs twice, interleaved: without
adoption and with it (the loop's task factory wrapped by tether). The case is what
a library with dangling tasks does: ``loop.create_task(body())`` N times, the task
discarded at once, then waiting until every body has run. Each body suspends once
(``asyncio.sleep(0)``) and returns, as real tasks suspend. A ``gc.collect()`` comes
before each timed run; the loop is already running, so its startup is never timed.
Times are the process's CPU time: the machine is shared, and wall-clock time
mostly measures the other processes.

Prints the median time per task of each, the median of the rounds' ratios (each
round's two runs are back to back: goal at most 1.3x), and every round's ratio.
Measures; never fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import tether


async def case(n: int, adopt: bool) -> int:
    """Create ``n`` dangling tasks and wait until all have run; return ns taken."""
    loop = asyncio.get_running_loop()
    left = [n]
    done = loop.create_future()

    async def body() -> None:
        await asyncio.sleep(0)
        left[0] -= 1
        if not left[0]:
            done.set_result(None)

    adoption = tether.adopt_tasks() if adopt else None
    gc.collect()
    start = time.process_time_ns()
    for _ in range(n):
        loop.create_task(body())  # noqa: RUF006, TET001 - the dangling pattern measured
    await done
    elapsed = time.process_time_ns() - start
    if adoption is not None:
        adoption.undo()
    return elapsed


async def rounds(n: int, count: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"raw": [], "adopted": []}
    await case(n, False)  # warm up both paths
    await case(n, True)
    for i in range(count):
        # Alternate which goes first, so neither always runs on a warmer heap.
        order = (False, True) if i % 2 == 0 else (True, False)
        for adopt in order:
            ns = await case(n, adopt)
            times["adopted" if adopt else "raw"].append(ns / n)
    return times


def run(loop_name: str, n: int, count: int) -> dict[str, Any]:
    if loop_name == "uvloop":
        import uvloop

        times = uvloop.run(rounds(n, count))
    else:
        times = asyncio.run(rounds(n, count))
    raw = statistics.median(times["raw"])
    adopted = statistics.median(times["adopted"])
    # Each round's pair ran back to back: its ratio is the least disturbed by the
    # load of a shared machine. The figure is their median.
    per_round = [a / r for a, r in zip(times["adopted"], times["raw"], strict=True)]
    return {
        "loop": loop_name,
        "raw_ns": raw,
        "adopted_ns": adopted,
        "ratio": statistics.median(per_round),
        "rounds": per_round,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    options = parser.parse_args()
    print(
        f"raw create_task + run vs the same under tether.adopt_tasks(), "
        f"N={options.tasks}, median of {options.rounds} interleaved rounds"
    )
    print(
        f"{'loop':<8} {'raw ns/task':>12} {'adopted ns/task':>16} "
        f"{'ratio':>6} {'med/med':>9}"
    )
    print("(ratio: the median of the rounds' ratios; med/med: of the two medians)")
    results = []
    for loop_name in ("asyncio", "uvloop"):
        result = run(loop_name, options.tasks, options.rounds)
        results.append(result)
        print(
            f"{result['loop']:<8} {result['raw_ns']:>12.0f} "
            f"{result['adopted_ns']:>16.0f} {result['ratio']:>5.2f}x "
            f"{result['adopted_ns'] / result['raw_ns']:>9.2f}x"
        )
        rounds_text = " ".join(f"{r:.2f}" for r in result["rounds"])
        print(f"         per round: {rounds_text}")
    if options.json is not None:
        meta = {
            "python": sys.version.split()[0],
            "platform": f"{platform.system()} {platform.machine()}",
            "date": date.today().isoformat(),
            "packages": {"uvloop": version("uvloop"), "anyio": version("anyio")},
            "command": " ".join(["python benchmarks/adopt_overhead.py", *sys.argv[1:]]),
        }
        settings = {"tasks": options.tasks, "rounds": options.rounds}
        document = {"meta": meta, "settings": settings, "results": results}
        options.json.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    main()
