"""Instructions per task, counted under valgrind: a comparison that load does not move.

On a machine shared with other work, timed ratios move by more than a small change to
tether's hot path is worth. The number of instructions the process runs does not:
``valgrind --tool=callgrind`` counts them, the same from run to run (the hash seed is
fixed). Each case runs twice, with N tasks and with none, after the same warm-up, and
the difference divided by N is the cost of one task: spawn and await, or one input of a
gather. Compare two builds of tether by running this in each one's environment.

    python benchmarks/instructions.py                       # every case, asyncio
    python benchmarks/instructions.py --case run_all,gather_anyio --backend uvloop

Cases, per task or per input: ``floor`` (create_task + strong set + done-callback,
body ``asyncio.sleep(0)``), ``floor_anyio`` (the same, body
``anyio.lowlevel.checkpoint()``), ``gather`` and ``gather_anyio`` (``asyncio.gather``
with either body), ``spawn`` (a registry's spawn, await each handle), ``ambient``
(``tether.spawn`` in a registry), ``run_all`` and ``settle_all``; tether's cases
suspend at anyio's checkpoint, as in the timed suite.

Cases per operation, the short-lived ones of ``benchmarks/cases_short.py`` (issue 27
item 4) beside their references, every body suspending once at ``asyncio.sleep(0)``:
``registry0``, ``registry1``, ``registry10`` (``async with TaskRegistry()`` spawning
0, 1 or 10 tasks) against ``taskgroup0``... (``asyncio.TaskGroup``; on 3.10
``create_task`` + ``gather``), ``as_completed1`` against ``wait1`` (``asyncio.wait``
of one task), ``settle_all1`` against ``gather1`` (``asyncio.gather(task,
return_exceptions=True)``).

Cases per parked task, counted only inside the shutdown window of
``benchmarks/shutdown.py`` (from the cancel request until every task has ended):
``shutdown`` (the registry's host cancelled) against ``shutdown_raw``
(``task.cancel()`` on each, then await each). The window is marked by a call into a
small C helper that toggles callgrind's collection, built at first use with ``cc``
and valgrind's headers (``callgrind.h``).

A tether case and its reference counted in the same run print their ratio. On trio
only the tether cases run. Needs valgrind on PATH; a run of one case takes about half
a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

T = TypeVar("T")

ASYNCIO_ONLY = (
    "floor",
    "floor_anyio",
    "gather",
    "gather_anyio",
    "taskgroup0",
    "taskgroup1",
    "taskgroup10",
    "wait1",
    "gather1",
    "shutdown_raw",
)
TETHER = (
    "spawn",
    "ambient",
    "run_all",
    "settle_all",
    "registry0",
    "registry1",
    "registry10",
    "as_completed1",
    "settle_all1",
    "shutdown",
)
CASES = ASYNCIO_ONLY + TETHER
#: Each tether case's reference: a ratio is printed when both ran.
REFERENCES = {
    "spawn": "floor_anyio",
    "ambient": "floor_anyio",
    "run_all": "gather_anyio",
    "settle_all": "gather_anyio",
    "registry0": "taskgroup0",
    "registry1": "taskgroup1",
    "registry10": "taskgroup10",
    "as_completed1": "wait1",
    "settle_all1": "gather1",
    "shutdown": "shutdown_raw",
}
#: Cases counted per operation (a registry opened and closed, a gather of one).
PER_OP = (
    "taskgroup0",
    "taskgroup1",
    "taskgroup10",
    "wait1",
    "gather1",
    "registry0",
    "registry1",
    "registry10",
    "as_completed1",
    "settle_all1",
)
#: Cases counted only inside a marked window (the rest: the whole process).
WINDOWED = ("shutdown", "shutdown_raw")

_MARKER_C = """
#include <valgrind/callgrind.h>
void tether_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
"""


async def _anyio_body() -> int:
    from anyio.lowlevel import checkpoint

    await checkpoint()
    return 1


async def _asyncio_body() -> int:
    await asyncio.sleep(0)
    return 1


def _toggle() -> None:
    """Switch callgrind's collection on or off (a windowed case's marks)."""
    _marker().tether_toggle_collect()


def _no_toggle() -> None:
    pass


def _marker() -> Any:
    import ctypes

    global _lib
    if _lib is None:
        _lib = ctypes.CDLL(os.environ["TETHER_MARKER_LIB"])
    return _lib


_lib: Any = None


def _build_marker() -> str:
    """Compile the C helper that toggles collection; return the library's path."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="tether-instructions-")
    source = os.path.join(folder, "marker.c")
    library = os.path.join(folder, "marker.so")
    with open(source, "w") as f:
        f.write(_MARKER_C)
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O1", "-o", library, source],
        check=True,
        capture_output=True,
        text=True,
    )
    return library


async def _short_op(case: str) -> None:
    """One operation of a short-lived case (``benchmarks/cases_short.py``)."""
    import tether

    if case.startswith("registry"):
        k = int(case.removeprefix("registry"))
        async with tether.TaskRegistry() as tasks:
            for _ in range(k):
                tasks.spawn(_sleep0)
    elif case.startswith("taskgroup"):
        k = int(case.removeprefix("taskgroup"))
        if sys.version_info >= (3, 11):
            async with asyncio.TaskGroup() as group:
                for _ in range(k):
                    group.create_task(_sleep0())
        else:  # 3.10 has no TaskGroup
            await asyncio.gather(*[asyncio.create_task(_sleep0()) for _ in range(k)])
    elif case == "wait1":
        await asyncio.wait({asyncio.create_task(_sleep0())})
    elif case == "gather1":
        await asyncio.gather(asyncio.create_task(_sleep0()), return_exceptions=True)
    else:
        raise AssertionError(case)


async def _sleep0() -> None:
    await asyncio.sleep(0)


async def _one_item(case: str, n: int) -> None:
    import tether

    async with tether.TaskRegistry(name="gathers") as tasks:
        for _ in range(n):
            handle = tasks.spawn(_sleep0)
            if case == "settle_all1":
                await tether.settle_all(handle)
            else:
                async with tether.as_completed(handle) as completed:
                    async for _ in completed:
                        pass


async def _shutdown(case: str, n: int, *, mark: bool = True) -> None:
    """Park ``n`` tasks, then count only their shutdown (benchmarks/shutdown.py);
    ``mark=False``: the same, unmarked (the warm-up)."""
    toggle = _toggle if mark else _no_toggle
    import logging

    import anyio
    from anyio.lowlevel import checkpoint

    import tether

    logging.getLogger("tether").disabled = True  # the WARNING's record is still made
    event = anyio.Event()

    async def park() -> None:
        await event.wait()

    if case == "shutdown_raw":
        tasks = _held_tasks(n, park)
        await anyio.wait_all_tasks_blocked()
        toggle()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        toggle()
        return
    with anyio.CancelScope() as scope:
        async with tether.TaskRegistry() as registry:
            for _ in range(n):
                registry.spawn(park)
            await anyio.wait_all_tasks_blocked()
            toggle()
            scope.cancel()
            await checkpoint()  # the body's next checkpoint raises
    toggle()


def _held_tasks(
    n: int, body: Callable[[], Coroutine[Any, Any, T]]
) -> list[asyncio.Task[T]]:
    """The floor: ``n`` tasks of ``create_task``, each held in a strong set until
    a done-callback lets it go."""
    held: set[asyncio.Task[T]] = set()
    tasks: list[asyncio.Task[T]] = []
    for _ in range(n):
        task = asyncio.create_task(body())
        held.add(task)
        task.add_done_callback(held.discard)
        tasks.append(task)
    return tasks


async def _case(case: str, n: int) -> int:
    import tether

    if case in ("floor", "floor_anyio"):
        body = _asyncio_body if case == "floor" else _anyio_body
        return sum([await task for task in _held_tasks(n, body)])
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
    if case in WINDOWED:
        await _shutdown(case, n)
        return n
    if case in ("as_completed1", "settle_all1"):
        await _one_item(case, n)
        return n
    if case.startswith(("registry", "taskgroup")) or case in ("wait1", "gather1"):
        for _ in range(n):
            await _short_op(case)
        return n
    results: tuple[Any, ...] = await tether.settle_all(
        *(_anyio_body() for _ in range(n))
    )
    return sum(results)


def _child(case: str, backend: str, n: int) -> None:
    """The process valgrind counts: a warm-up of 50 tasks, then ``n``."""

    async def main() -> None:
        if case in WINDOWED:  # only the counted run marks its window
            await _shutdown(case, 50, mark=False)
        else:
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
    window = []
    if case in WINDOWED:
        if "TETHER_MARKER_LIB" not in env:
            env["TETHER_MARKER_LIB"] = os.environ["TETHER_MARKER_LIB"] = _build_marker()
        window = ["--collect-atstart=no"]
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            *window,
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
    counted: dict[str, float] = {}
    for case in args.case.split(","):
        if case not in CASES:
            p.error(f"unknown case {case!r}: choose from {', '.join(CASES)}")
        if args.backend == "trio" and (case in ASYNCIO_ONLY or case in WINDOWED):
            continue
        none, many = _count(case, args.backend, 0), _count(case, args.backend, args.n)
        per_task = counted[case] = (many - none) / args.n
        unit = (
            "per task"
            if case in CASES[:4] + TETHER[:4] or case in WINDOWED
            else "per op"
        )
        print(f"{case:14} {args.backend:8} {per_task:10,.0f} instructions {unit}")
    for case, reference in REFERENCES.items():
        if case in counted and reference in counted:
            ratio = counted[case] / counted[reference]
            print(f"{case:14} / {reference:14} {ratio:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
