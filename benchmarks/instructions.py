"""Instructions per task, counted under valgrind: a comparison that load does not move.

On a machine shared with other work, timed ratios move by more than a small change to
tether's hot path is worth. The number of instructions the process runs does not:
``valgrind --tool=callgrind`` counts them, the same from run to run (the hash seed is
fixed). Each case runs twice, with N tasks and with none, after the same warm-up, and
the difference divided by N is the cost of one task: spawn and await, or one input of a
gather. Compare two builds of tether by running this in each one's environment.

    python benchmarks/instructions.py                       # every case, asyncio
    python benchmarks/instructions.py --case run_all,gather_anyio --backend uvloop

Cases: ``floor`` (create_task + strong set + done-callback, body ``asyncio.sleep(0)``),
``floor_anyio`` (the same, body ``anyio.lowlevel.checkpoint()``), ``gather`` and
``gather_anyio`` (``asyncio.gather`` with either body), ``spawn`` (a registry's spawn,
await each handle), ``ambient`` (``tether.spawn`` in a registry), ``run_all`` and
``settle_all``; on trio only the tether cases. tether's cases suspend at anyio's
checkpoint, as in the timed suite. Needs valgrind on PATH; a run of one case takes
about half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from typing import Any

ASYNCIO_ONLY = ("floor", "floor_anyio", "gather", "gather_anyio")
TETHER = ("spawn", "ambient", "run_all", "settle_all")
CASES = ASYNCIO_ONLY + TETHER


async def _anyio_body() -> int:
    from anyio.lowlevel import checkpoint

    await checkpoint()
    return 1


async def _asyncio_body() -> int:
    await asyncio.sleep(0)
    return 1


async def _case(case: str, n: int) -> int:
    import tether

    if case in ("floor", "floor_anyio"):
        body = _asyncio_body if case == "floor" else _anyio_body
        held: set[asyncio.Task[int]] = set()
        tasks = []
        for _ in range(n):
            task = asyncio.create_task(body())
            held.add(task)
            task.add_done_callback(held.discard)
            tasks.append(task)
        return sum([await task for task in tasks])
    if case in ("gather", "gather_anyio"):
        body = _asyncio_body if case == "gather" else _anyio_body
        return sum(await asyncio.gather(*(body() for _ in range(n))))
    if case == "spawn":
        async with tether.TaskRegistry() as registry:
            handles = [registry.spawn(_anyio_body) for _ in range(n)]
            return sum([await handle for handle in handles])
    if case == "ambient":
        async with tether.TaskRegistry():
            handles = [tether.spawn(_anyio_body) for _ in range(n)]
            return sum([await handle for handle in handles])
    if case == "run_all":
        return sum(await tether.run_all(*(_anyio_body() for _ in range(n))))
    results: tuple[Any, ...] = await tether.settle_all(
        *(_anyio_body() for _ in range(n))
    )
    return sum(results)


def _child(case: str, backend: str, n: int) -> None:
    """The process valgrind counts: a warm-up of 50 tasks, then ``n``."""

    async def main() -> None:
        await _case(case, 50)  # first-use imports, the backend, the caches
        if await _case(case, n) != n:
            raise RuntimeError(f"{case}: wrong number of results")

    if backend == "trio":
        import trio

        trio.run(main)
        return
    factory = asyncio.new_event_loop
    if backend == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    loop = factory()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def _count(case: str, backend: str, n: int) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            case,
            backend,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    if sys.argv[1:2] == ["--child"]:
        case, backend, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        _child(case, backend, n)
        return 0
    p = argparse.ArgumentParser(prog="python benchmarks/instructions.py")
    p.add_argument("--case", default=",".join(CASES), help=", ".join(CASES))
    p.add_argument("--backend", default="asyncio", help="asyncio, uvloop or trio")
    p.add_argument("--n", type=int, default=5000, help="tasks per run (default 5000)")
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing counted", file=sys.stderr)
        return 1
    for case in args.case.split(","):
        if case not in CASES:
            p.error(f"unknown case {case!r}: choose from {', '.join(CASES)}")
        if args.backend == "trio" and case in ASYNCIO_ONLY:
            continue
        none, many = _count(case, args.backend, 0), _count(case, args.backend, args.n)
        per_task = (many - none) / args.n
        print(f"{case:14} {args.backend:8} {per_task:10,.0f} instructions per task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
