"""tether's benchmark suite: peers side by side, as ratios to the raw floor.

Usage (from the repository root)::

    pip install -e '.[trio,uvloop]' --group bench
    python benchmarks/run.py            # full run: N = 1k, 10k, 100k, 7 repeats
    python benchmarks/run.py --quick    # smoke run: a few seconds, always exits 0
    python benchmarks/run.py --body both    # add the never-suspending body's column
    python benchmarks/run.py --only tether --n 10000 --repeat 9
    python benchmarks/run.py --only short: --repeat 15 \\
        --json benchmarks/results/results-py3.13.json --merge
    python benchmarks/run.py --json benchmarks/results/results-py3.13.json \\
        --chart benchmarks/results/results-py3.13.svg

Every case runs in one process, interleaved: each repeat goes round-robin over every
(size, backend, case), so drift in the machine's speed hits all cases alike. Nothing in
the suite fails on a time: the figure checks are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import analysis
import cases_anyio
import cases_asyncio
import cases_short
import cases_tether
import cases_trio
import chart
import importtime
import memory
import report
import shutdown
from _common import (
    BACKENDS,
    SUSPENDS,
    VARIANTS,
    Case,
    backend_unavailable,
    median,
    run_on,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

SECTIONS: dict[str, list[Case]] = {
    "tasks": [
        *cases_asyncio.CASES,
        *cases_trio.CASES,
        *cases_anyio.CASES,
        *cases_tether.CASES,
    ],
    "memory": memory.CASES,
    "shutdown": shutdown.CASES,
    cases_short.SECTION: cases_short.CASES,
}
#: Cases every ratio is taken against: kept whenever their section runs at all.
REFERENCES: dict[str, set[str]] = {
    "tasks": {
        "asyncio.create_task",
        "trio.start_soon",
        "anyio.start_soon",
        "asyncio.gather",
        "anyio.gather",
    },
    "memory": {
        f"{key}[{mode}]" for key in analysis.MEMORY_REFS for mode in memory.MODES
    },
    "shutdown": {"asyncio.create_task", "trio.start_soon"},
    cases_short.SECTION: cases_short.REFERENCES,
}
Key = tuple[str, str, int]  # case id, backend, n
Samples = dict[Key, list[int]]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: Seconds a single run of a case may take before it is cancelled and reported as
#: skipped (a hung case would otherwise hang the whole suite). Set by ``--timeout``.
DEADLINE = 600.0


@contextlib.asynccontextmanager
async def _deadline(backend: str) -> AsyncIterator[None]:
    """Cancel the run after :data:`DEADLINE` seconds: one timer per run, no per-task
    cost. Python 3.10's asyncio has no ``asyncio.timeout``; runs there have none.
    """
    if backend == "trio":
        import trio

        with trio.fail_after(DEADLINE):
            yield
    elif sys.version_info >= (3, 11):
        async with asyncio.timeout(DEADLINE):
            yield
    else:
        yield


def _timed(case: Case, backend: str, n: int) -> int:
    """Run ``case`` on a fresh loop; time the whole spawn + await inside the loop."""

    async def main() -> int:
        async with _deadline(backend):
            gc.collect()
            start = time.perf_counter_ns()
            count = await case.body(n)
            elapsed = time.perf_counter_ns() - start
        if count != n:
            raise RuntimeError(f"saw {count} results for {n} tasks")
        return elapsed

    return run_on(backend, main)


def _self_timed(case: Case, backend: str, n: int) -> int:
    """Run a case that measures itself (memory growth, shutdown window)."""

    async def main() -> int:
        async with _deadline(backend):
            return await case.body(n)

    try:
        return run_on(backend, main)
    finally:
        gc.enable()


def _why(exc: Exception) -> str:
    # asyncio.timeout raises TimeoutError, trio.fail_after trio.TooSlowError.
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "TooSlowError":
        return f"error: timed out after {DEADLINE:g} s (--timeout)"
    return f"error: {type(exc).__name__}: {exc}"


def run_section(
    cases: Sequence[Case],
    backends: Sequence[str],
    sizes: Sequence[int],
    repeats: int,
    call: Callable[[Case, str, int], int],
    skipped: dict[tuple[str, str], str],
) -> Samples:
    """Warm every (case, backend) once, then run ``repeats`` interleaved rounds."""
    plan: list[tuple[Case, str]] = []
    for case in cases:
        reason = case.unavailable()
        for backend in case.backends:
            if backend not in backends:
                continue
            why = reason or backend_unavailable(backend)
            if why:
                skipped[case.id, backend] = why
            else:
                plan.append((case, backend))
    warm_n = min(min(sizes), 1000)
    for case, backend in list(plan):
        try:
            call(case, backend, warm_n)
        except Exception as exc:  # a broken peer is reported, never fatal
            skipped[case.id, backend] = _why(exc)
            plan.remove((case, backend))
    samples: Samples = {}
    for round_no in range(1, repeats + 1):
        started = time.perf_counter()
        for n in sizes:
            for case, backend in list(plan):
                try:
                    value = call(case, backend, n)
                except Exception as exc:
                    skipped[case.id, backend] = _why(exc)
                    plan.remove((case, backend))
                    continue
                samples.setdefault((case.id, backend, n), []).append(value)
        _log(f"  round {round_no}/{repeats}: {time.perf_counter() - started:.1f} s")
    return samples


def _select(only: list[str], section: str, variants: Sequence[str]) -> list[Case]:
    # Only throughput cases come in body variants; memory and shutdown tasks park.
    cases = [
        c for c in SECTIONS[section] if section != "tasks" or c.variant in variants
    ]
    if not only:
        return cases
    wanted = [
        c
        for c in cases
        if any(s.lower() in f"{section}:{c.key} {c.name}".lower() for s in only)
    ]
    if not wanted:
        return []
    return [c for c in cases if c in wanted or c.key in REFERENCES[section]]


def _records(
    section: str, cases: Sequence[Case], samples: Samples
) -> list[dict[str, Any]]:
    by_id = {c.id: c for c in cases}
    out: list[dict[str, Any]] = []
    for (case_id, backend, n), values in samples.items():
        case = by_id[case_id]
        out.append(
            {
                "section": section,
                "case": case.key,
                "variant": case.variant,
                "name": case.name,
                "group": case.group,
                "backend": backend,
                "n": n,
                "samples": values,
                "median": median([float(v) for v in values]),
            }
        )
    return out


def _ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark tether against raw asyncio, trio, anyio and peers.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny N, 1 repeat")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SUBSTRING",
        help="run cases whose 'section:key name' contains SUBSTRING "
        "(repeatable; sections: tasks, memory, shutdown, short, import)",
    )
    p.add_argument(
        "--n",
        type=_ints,
        metavar="N[,N...]",
        help="task counts (default 1000,10000,100000)",
    )
    p.add_argument("--repeat", type=int, metavar="K", help="repeats (default 7)")
    p.add_argument(
        "--body",
        choices=[*VARIANTS, "both"],
        help="task body of the throughput cases: 'suspends' once (the figures; "
        "default), 'never-suspends', or 'both' (default with --quick)",
    )
    p.add_argument(
        "--note",
        default="",
        metavar="TEXT",
        help="free text kept in the results (e.g. which tether build was measured)",
    )
    p.add_argument(
        "--backend",
        type=lambda s: s.split(","),
        metavar="B[,B...]",
        default=list(BACKENDS),
        help="asyncio, uvloop, trio (default all)",
    )
    p.add_argument("--memory-n", type=int, metavar="N", help="default 10000")
    p.add_argument(
        "--shutdown-n",
        type=_ints,
        metavar="N,N",
        help="default 10000,100000 (growth = t(last) / t(first))",
    )
    p.add_argument("--import-runs", type=int, metavar="K", help="default 9")
    p.add_argument(
        "--short-ops",
        type=int,
        metavar="N",
        help=f"operations per timed run of the short section (default "
        f"{cases_short.OPS}; 20 with --quick)",
    )
    p.add_argument(
        "--short-clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="the short section's clock: the process's CPU time (default), which "
        "keeps a loaded machine's waiting for a core out, or the wall clock",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="cancel a run of one case after this long and report it as skipped "
        "(default 600; 60 with --quick)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write results as JSON")
    p.add_argument(
        "--merge",
        action="store_true",
        help="with --json: keep the file's records of the sections not measured "
        "now (and its metadata), replacing only those measured",
    )
    p.add_argument("--chart", type=Path, metavar="PATH", help="write an SVG chart")
    p.add_argument("--chart-n", type=int, metavar="N", help="N shown in the chart")
    p.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="write the tables as Markdown (for docs/benchmarks.md)",
    )
    p.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="do not measure: report, chart and re-export a results file",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.n = args.n or ([200] if quick else [1_000, 10_000, 100_000])
    args.repeat = max(1, args.repeat or (1 if quick else 7))
    body = args.body or ("both" if quick else SUSPENDS)
    args.variants = list(VARIANTS) if body == "both" else [body]
    args.memory_n = args.memory_n or (500 if quick else 10_000)
    args.shutdown_n = args.shutdown_n or ([200, 2_000] if quick else [10_000, 100_000])
    args.import_runs = args.import_runs or (1 if quick else 9)
    args.short_ops = args.short_ops or (20 if quick else cases_short.OPS)
    if args.merge and not args.json:
        p.error("--merge needs --json PATH: the results file to merge into")
    args.timeout = args.timeout or (60.0 if quick else 600.0)
    return args


def measure(args: argparse.Namespace) -> dict[str, Any]:
    skipped: dict[tuple[str, str], str] = {}
    results: dict[str, Any] = {
        "meta": report.metadata(sys.argv[1:], args.note),
        "settings": {
            "sizes": args.n,
            "repeats": args.repeat,
            "quick": args.quick,
            "backends": args.backend,
            "memory_n": args.memory_n,
            "shutdown_n": args.shutdown_n,
            "variants": args.variants,
            "limit": cases_anyio.LIMIT,
        },
        "records": [],
    }
    plans: list[tuple[str, Sequence[int], Callable[[Case, str, int], int]]] = [
        ("tasks", args.n, _timed),
        ("memory", [args.memory_n], _self_timed),
        ("shutdown", args.shutdown_n, _self_timed),
        (cases_short.SECTION, [args.short_ops], _self_timed),
    ]
    if args.short_clock == "wall":
        cases_short.clock = time.perf_counter_ns
    measured: list[str] = []
    for section, sizes, call in plans:
        cases = _select(args.only, section, args.variants)
        if not cases:
            continue
        measured.append(section)
        _log(f"{section}: {len(cases)} cases, N={sizes}, {args.repeat} repeats")
        skips: dict[tuple[str, str], str] = {}
        samples = run_section(cases, args.backend, sizes, args.repeat, call, skips)
        results["records"] += _records(section, cases, samples)
        for (case_id, backend), reason in skips.items():
            skipped[f"{section}:{case_id}", backend] = reason
    if cases_short.SECTION in measured:
        results[cases_short.SECTION] = {
            "ops": args.short_ops,
            "repeats": args.repeat,
            "clock": args.short_clock,
            "command": results["meta"]["command"],
            "date": results["meta"]["date"],
            "python": results["meta"]["python"],
            "rows": analysis.short_rows(results),
        }
    if not args.only or any(s.lower() in "import:tether" for s in args.only):
        _log(f"import: {args.import_runs} fresh interpreters each")
        results["import"] = importtime.measure(args.import_runs)
        measured.append("import")
    results["measured"] = measured
    results["skipped"] = [
        {"case": key, "backend": backend, "reason": reason}
        for (key, backend), reason in skipped.items()
    ]
    return results


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the sections ``new`` measured replaced by ``new``'s: its
    metadata and settings stay, as they describe the sections it keeps."""
    sections = set(new["measured"])
    out = dict(old)
    out["records"] = [r for r in old["records"] if r["section"] not in sections] + new[
        "records"
    ]
    out["skipped"] = [
        s for s in old.get("skipped", []) if s["case"].partition(":")[0] not in sections
    ] + new["skipped"]
    for key in (cases_short.SECTION, "import"):
        if key in sections:
            out[key] = new[key]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    global DEADLINE
    args = parse_args(argv)
    DEADLINE = args.timeout
    if args.from_json:
        results = json.loads(args.from_json.read_text(encoding="utf-8"))
    else:
        results = measure(args)
        if args.merge and args.json.exists():
            results = merge(json.loads(args.json.read_text(encoding="utf-8")), results)
        results.pop("measured", None)
    results["figures"] = analysis.figures(results)
    print(report.render(results, "text"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(report.render(results, "md"), encoding="utf-8")
    if args.chart:
        sizes = results["settings"]["sizes"]
        chart_n = args.chart_n or (10_000 if 10_000 in sizes else max(sizes))
        args.chart.parent.mkdir(parents=True, exist_ok=True)
        args.chart.write_text(chart.render(results, chart_n), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
