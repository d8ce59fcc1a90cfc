"""Scale soak: a million short tasks through one registry, and 200,000 parked at once.

Usage (from the repository root)::

    pip install -e '.[trio,uvloop]' --group bench
    python benchmarks/soak.py --json benchmarks/results/soak-py3.13.json
    python benchmarks/soak.py --quick       # smoke run for CI: small sizes, seconds
    python benchmarks/soak.py --backend trio --n 10000,100000 --parked 50000

Two parts, on asyncio, asyncio + uvloop and trio:

* **through**: N tasks (10,000, 100,000 and 1,000,000 by default) pass through one
  ``TaskRegistry(limit=1000)``. Each body suspends once at
  ``anyio.lowlevel.checkpoint()``, counts itself and returns. Two spawn forms:
  ``spawn`` (all N spawned at once: 1,000 run, the rest wait FIFO in the queue, so
  memory grows with N and the cost per task must not) and ``spawn_when_free`` (the
  backpressure form; each call is a checkpoint, so with a body this short only a
  few tasks are ever alive, and memory must stay flat in N). After the block,
  ``statistics()`` must say spawned == succeeded == N with nothing failed,
  cancelled, running or queued, and every body must have run exactly once.
  Recorded: the wall time of the whole block, tasks/s, the most tasks alive at once
  (as the bodies saw it), the peak traced memory over the baseline taken just
  before the block, what is still traced after it, and the process's peak RSS.
* **parked**: 200,000 tasks park on one ``anyio.Event().wait()``; then they are
  either released (the event is set, the body ends, the registry drains) or
  cancelled (an enclosing cancel scope cancels the body of the ``async with``, so
  the registry cancels every task). Two rounds in one process: the first grows the
  event loop's own tables (CPython's sets and dicts never shrink) to the size
  N tasks need, and what it leaves is recorded apart; the second is the
  measurement. After it and ``gc.collect()``, the traced memory must be back within
  ``max(1% of the peak growth, 256 KiB)`` of the baseline taken before the round,
  and no ``Handle`` may outlive the registry: the weak reference kept to every
  handle is dead, and no handle is among the collector's objects. Recorded:
  baseline, peak, parked and after, bytes per parked task, the time to spawn and
  to close.

A third check, **amap**: 100,000 items (2,000 with ``--quick``) through
``tether.amap(limit=10)``, whose results must never run more than ``2 * limit``
ahead of the consumer (``limit`` in flight and ``limit`` buffered), however long
the input. The test suite proves the same bound with 2,000 items; the scale lives
here. Its outcome is kept under ``"amap"`` in the results, apart from the records.

Every measurement runs in a fresh interpreter, so none inherits another's heap and
the peak RSS is its own; each first runs a small untraced registry, so lazy imports
are not counted. tracemalloc slows what it traces, so in the through part the times
and the RSS come from a run without it and the traced memory from a second run of
the same case. uvloop allocates in C, where tracemalloc cannot see: its traced
figures count the Python side only.

A benchmark, not a test: no time is ever asserted. A broken guarantee (a task that
did not end exactly once, memory that did not come back, a handle left alive) is
printed and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import report
import soak_report
from _common import BACKENDS, backend_unavailable, run_on
from memory import park

if TYPE_CHECKING:
    from collections.abc import Sequence

LIMIT = 1000
MODES: tuple[str, ...] = ("spawn_when_free", "spawn")
ENDS: tuple[str, ...] = ("released", "cancelled")
#: Memory left after the parked run may be at most this share of the peak growth...
TOLERANCE_SHARE = 0.01
#: ... or this many bytes, whichever is larger (interning, free lists, caches).
TOLERANCE_FLOOR = 256 * 1024
Record = dict[str, Any]
#: The counters of ``statistics()`` that must add up.
COUNTERS = ("spawned", "queued", "running", "succeeded", "failed", "cancelled")
#: The amap check: its limit, and its items (--quick: 2,000).
AMAP_LIMIT = 10
AMAP_ITEMS = 100_000


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- measurements, each in its own interpreter ----------------------------------------


def _rss() -> int | None:
    """The current resident set size in bytes (Linux), else ``None``."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _counters(stats: Any) -> dict[str, int]:
    return {key: getattr(stats, key) for key in COUNTERS}


def _quiet_tether_log() -> None:
    # A cancelled shutdown logs one WARNING naming the tasks: keep it off the output
    # without changing what the registry does.
    logger = logging.getLogger("tether")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False


async def through(n: int, mode: str, trace: bool) -> Record:
    """Push ``n`` tasks through one ``TaskRegistry(limit=LIMIT)``."""
    import anyio.lowlevel

    import tether

    ran = 0
    most = 0  # the most tasks alive at once, as the bodies saw it
    registry: tether.TaskRegistry | None = None

    async def work() -> int:
        nonlocal ran, most
        if registry is not None:
            most = max(most, len(registry))
        await anyio.lowlevel.checkpoint()
        ran += 1
        return 1

    # Warm up: backend modules load on a registry's first entry; not part of a run.
    async with tether.TaskRegistry(limit=LIMIT) as warm:
        for _ in range(2 * LIMIT):
            warm.spawn(work)
    ran = 0
    gc.collect()
    rss_base = _rss()
    base = 0
    if trace:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    async with tether.TaskRegistry(name="soak", limit=LIMIT) as tasks:
        registry = tasks
        if mode == "spawn":
            for _ in range(n):
                tasks.spawn(work)
        else:
            for _ in range(n):
                await tasks.spawn_when_free(work)
    elapsed = time.perf_counter() - start
    record: Record = {"seconds": elapsed, "ran": ran, "most_alive": most}
    if trace:
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        record |= {"traced_peak": peak - base, "traced_after": current - base}
    else:
        record |= {"rss_base": rss_base, "rss_peak": _peak_rss()}
    stats = tasks.statistics()
    record["statistics"] = _counters(stats)
    record["live_after"] = len(tasks)
    return record


async def _park_round(n: int, end: str, refs: list[Any]) -> Record:
    """Park ``n`` tasks, then end them; traced memory is read while they are parked."""
    import anyio

    import tether

    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
    start = time.perf_counter()
    event = anyio.Event()
    with anyio.CancelScope() as host:
        async with tether.TaskRegistry(name="parked") as tasks:
            for i in range(n):
                refs[i] = tasks.spawn(park, event)
            await anyio.wait_all_tasks_blocked()
            spawned_s = time.perf_counter() - start
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            rss_parked = _rss()
            for i in range(n):
                refs[i] = weakref.ref(refs[i])
            closing = time.perf_counter()
            if end == "released":
                event.set()
            else:
                host.cancel()
                await anyio.lowlevel.checkpoint()  # the body's next checkpoint raises
    closed_s = time.perf_counter() - closing
    stats = tasks.statistics()
    live_after = len(tasks)
    del tasks, event, host
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    census = sum(type(obj) is tether.Handle for obj in gc.get_objects())
    for i in range(n):
        refs[i] = None
    gc.collect()
    return {
        "spawn_seconds": spawned_s,
        "close_seconds": closed_s,
        "traced_parked": current,
        "traced_peak": peak,
        "traced_after": tracemalloc.get_traced_memory()[0],
        "rss_parked": rss_parked,
        "rss_after": _rss(),
        "handles_alive": alive,
        "handles_in_gc": census,
        "live_after": live_after,
        "statistics": _counters(stats),
    }


async def parked(n: int, end: str) -> Record:
    """Two rounds of ``n`` parked tasks; the second is the measurement.

    The first round grows the event loop's own tables to their high-water size
    (CPython's sets and dicts never shrink: asyncio's set of scheduled tasks, anyio's
    per-task state on asyncio, trio's task sets), memory that stays with the loop and
    is not the registry's. What it leaves is recorded apart; whatever the second
    round leaves behind would be left by every round, and must be near zero.
    """
    _quiet_tether_log()
    await _park_round(100, end, [None] * 100)  # imports, as in through(); untraced
    # One slot per handle, made before the baselines: it holds the handle while
    # parked, then a weak reference to it.
    refs: list[Any] = [None] * n
    gc.collect()
    rss_base = _rss()
    tracemalloc.start()
    first_base = tracemalloc.get_traced_memory()[0]
    first = await _park_round(n, end, refs)
    base = tracemalloc.get_traced_memory()[0]
    record = await _park_round(n, end, refs)
    tracemalloc.stop()
    return {
        **record,
        "rss_base": rss_base,
        "traced_base": base,
        "first_round": {
            "traced_base": first_base,
            "traced_after": first["traced_after"],
            "traced_peak": first["traced_peak"],
            "spawn_seconds": first["spawn_seconds"],
            "close_seconds": first["close_seconds"],
            "problems": problems(
                {"section": "parked", "n": n, "end": end, **first}, memory=False
            ),
        },
    }


async def amap_bound(n: int) -> Record:
    """Feed ``n`` items through ``amap(limit=AMAP_LIMIT)``; record how far the
    results ran ahead of the consumer."""
    import tether

    calls = consumed = most_ahead = 0

    async def work(i: int) -> int:
        nonlocal calls
        calls += 1
        return i

    async with tether.amap(work, range(n), limit=AMAP_LIMIT) as results:
        async for _ in results:
            consumed += 1
            most_ahead = max(most_ahead, calls - consumed)
    return {"calls": calls, "consumed": consumed, "most_ahead": most_ahead}


def amap_problems(record: Record) -> list[str]:
    out: list[str] = []
    if not record["calls"] == record["consumed"] == record["n"]:
        out.append(
            f"amap: {record['calls']} calls and {record['consumed']} results for "
            f"{record['n']} items"
        )
    if record["most_ahead"] > 2 * AMAP_LIMIT:
        out.append(
            f"amap: results ran {record['most_ahead']} ahead of the consumer "
            f"(bound {2 * AMAP_LIMIT})"
        )
    return out


def child(spec: Record) -> Record:
    backend = spec["backend"]

    async def main() -> Record:
        if spec["kind"] == "through":
            return await through(spec["n"], spec["mode"], spec["trace"])
        if spec["kind"] == "amap":
            return await amap_bound(spec["n"])
        return await parked(spec["n"], spec["end"])

    return run_on(backend, main)


# -- checks -------------------------------------------------------------------------


def tolerance(grown: int) -> int:
    """How much traced memory may remain after a run whose peak grew by ``grown``."""
    return max(int(TOLERANCE_SHARE * grown), TOLERANCE_FLOOR)


def problems(record: Record, *, memory: bool = True) -> list[str]:
    """What this record shows broken (empty when every guarantee held); ``memory``
    checks that traced memory came back too.
    """
    n = record["n"]
    stats = record["statistics"]
    out: list[str] = []
    if record["section"] == "through":
        want = {"spawned": n, "succeeded": n}
        if record["ran"] != n:
            out.append(f"{record['ran']} bodies ran for {n} tasks")
    elif record["end"] == "released":
        want = {"spawned": n, "succeeded": n}
    else:
        want = {"spawned": n, "cancelled": n}
    for key in COUNTERS:
        if stats[key] != want.get(key, 0):
            out.append(f"statistics().{key} = {stats[key]}, not {want.get(key, 0)}")
    if record["live_after"]:
        out.append(f"{record['live_after']} tasks still live after the block")
    if record["section"] == "parked":
        base = record.get("traced_base", 0)
        left = record["traced_after"] - base
        allowed = tolerance(record["traced_peak"] - base)
        if memory and left > allowed:
            out.append(f"{left:,} B still traced after close (tolerance {allowed:,} B)")
        if record["handles_alive"] or record["handles_in_gc"]:
            out.append(
                f"handles alive after close: {record['handles_alive']} by weak "
                f"reference, {record['handles_in_gc']} among the collector's objects"
            )
    return out


# -- the driver ---------------------------------------------------------------------


def measure_one(spec: Record, timeout: float) -> Record:
    """Run one measurement in a fresh interpreter; return its record."""
    command = [sys.executable, __file__, "--child", json.dumps(spec)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{spec} exited {done.returncode}:\n{done.stderr.strip()[-2000:]}"
        )
    record: Record = json.loads(done.stdout)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {**spec, **record, "load_average": load}


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python benchmarks/soak.py",
        description="Scale soak: N tasks through one registry with limit=1000, "
        "and many parked tasks whose memory must come back.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: N = 2,000, 2,000 parked (seconds; for CI)",
    )
    p.add_argument(
        "--n",
        type=_ints,
        metavar="N[,N...]",
        help="task counts of the through part (default 10000,100000,1000000)",
    )
    p.add_argument(
        "--parked", type=int, metavar="N", help="parked tasks (default 200000; 0: skip)"
    )
    p.add_argument(
        "--mode",
        type=lambda s: s.split(","),
        default=list(MODES),
        metavar="M[,M...]",
        help="spawn forms of the through part: spawn_when_free, spawn (default both)",
    )
    p.add_argument(
        "--backend",
        type=lambda s: s.split(","),
        default=list(BACKENDS),
        metavar="B[,B...]",
        help="asyncio, uvloop, trio (default all)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="give up on one measurement after this long (default 1800)",
    )
    p.add_argument(
        "--note",
        default="",
        metavar="TEXT",
        help="free text kept in the results (for instance the machine's load)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write results as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.n = args.n or ([2_000] if args.quick else [10_000, 100_000, 1_000_000])
    if args.parked is None:
        args.parked = 2_000 if args.quick else 200_000
    args.amap = 2_000 if args.quick else AMAP_ITEMS
    for mode in args.mode:
        if mode not in MODES:
            p.error(f"--mode: {mode!r} is not one of {', '.join(MODES)}")
    return args


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MB"


def _line(r: Record) -> str:
    if r["section"] == "through":
        rate = r["n"] / r["seconds"]
        return (
            f"{r['backend']:8} {r['mode']:16} N={r['n']:>9,}: {r['seconds']:7.2f} s, "
            f"{rate:>9,.0f} tasks/s, traced peak {_mb(r.get('traced_peak'))}, "
            f"peak RSS {_mb(r.get('rss_peak'))}"
        )
    per = (r["traced_parked"] - r["traced_base"]) / r["n"]
    first = r["first_round"]
    return (
        f"{r['backend']:8} parked {r['end']:9} N={r['n']:>9,}: base "
        f"{_mb(r['traced_base'])}, peak {_mb(r['traced_peak'])}, after "
        f"{r['traced_after'] - r['traced_base']:+,} B, {per:,.0f} B/task, "
        f"spawn {r['spawn_seconds']:.2f} s, close {r['close_seconds']:.2f} s; "
        f"first round left {_mb(first['traced_after'] - first['traced_base'])}"
    )


def _merge(timed: Record, traced: Record) -> Record:
    """One through record: times and RSS from the plain run, memory from the traced."""
    merged = dict(timed)
    merged["traced_peak"] = traced["traced_peak"]
    merged["traced_after"] = traced["traced_after"]
    merged["traced_seconds"] = traced["seconds"]
    merged["traced_statistics"] = traced["statistics"]
    merged["traced_ran"] = traced["ran"]
    return merged


def measure_amap(args: argparse.Namespace) -> list[Record]:
    """The amap check on every backend; each record carries its problems."""
    records: list[Record] = []
    for backend in args.backend:
        if backend_unavailable(backend):
            continue
        spec = {"kind": "amap", "backend": backend, "n": args.amap}
        try:
            record = measure_one(spec, args.timeout)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            record = {**spec, "problems": [f"amap: failed to run: {exc}"[-2000:]]}
        else:
            record["problems"] = amap_problems(record)
        record.pop("kind", None)
        records.append(record)
        _log(
            f"{backend:8} amap n={args.amap:,}: at most "
            f"{record.get('most_ahead', '?')} results ahead (bound {2 * AMAP_LIMIT})"
        )
        for problem in record["problems"]:
            _log(f"  BROKEN: {problem}")
    return records


def measure(args: argparse.Namespace) -> tuple[list[Record], list[Record]]:
    records: list[Record] = []
    skipped: list[Record] = []
    for backend in args.backend:
        why = backend_unavailable(backend)
        if why:
            skipped.append({"backend": backend, "reason": why})
            _log(f"{backend}: skipped ({why})")
            continue
        plans: list[tuple[Record, bool]] = []
        for n in args.n:
            for mode in args.mode:
                base = {"section": "through", "backend": backend, "n": n, "mode": mode}
                plans.append((base, True))
        if args.parked:
            for end in ENDS:
                spec = {"section": "parked", "backend": backend, "n": args.parked}
                plans.append(({**spec, "end": end}, False))
        for spec, twice in plans:
            kind = {"kind": spec["section"], **spec}
            try:
                if twice:
                    timed = measure_one({**kind, "trace": False}, args.timeout)
                    traced = measure_one({**kind, "trace": True}, args.timeout)
                    record = _merge(timed, traced)
                    found = problems(timed) + [
                        f"traced run: {p}" for p in problems(traced)
                    ]
                else:
                    record = measure_one(kind, args.timeout)
                    found = problems(record)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                skipped.append({**spec, "reason": str(exc)[-2000:]})
                _log(f"{spec}: FAILED TO RUN: {exc}")
                continue
            record.pop("kind", None)
            record.pop("trace", None)
            record["problems"] = found
            records.append(record)
            _log(_line(record))
            for problem in found:
                _log(f"  BROKEN: {problem}")
    return records, skipped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    meta = report.metadata(
        sys.argv[1:] if argv is None else argv, args.note, "benchmarks/soak.py"
    )
    started = time.perf_counter()
    records, skipped = measure(args)
    amap = measure_amap(args)
    meta["seconds"] = round(time.perf_counter() - started, 1)
    meta["load_average_end"] = (
        list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    )
    results = {
        "meta": meta,
        "settings": {
            "sizes": args.n,
            "modes": args.mode,
            "backends": args.backend,
            "limit": LIMIT,
            "parked": args.parked,
            "ends": list(ENDS),
            "quick": args.quick,
            "tolerance": {"share": TOLERANCE_SHARE, "floor_bytes": TOLERANCE_FLOOR},
        },
        "records": records,
        "skipped": skipped,
        "amap": amap,
    }
    print(soak_report.render(results, "text"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    broken = [r for r in records if r["problems"]]
    _log(
        f"{len(records)} measurements in {meta['seconds']:.0f} s; "
        f"{len(broken)} with a broken guarantee, {len(skipped)} skipped"
    )
    broken_amap = [r for r in amap if r["problems"]]
    return 1 if broken or broken_amap or any("section" in s for s in skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
