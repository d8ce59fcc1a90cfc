"""Run metadata, and the results rendered as tables (plain text or Markdown)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cases_short
from _common import NEVER_SUSPENDS, SUSPENDS
from analysis import (
    FLOORS,
    fmt_x,
    growth,
    median_of,
    ratio,
    short_rows,
    task_ratios,
    variant_of,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "anyio",
    "trio",
    "uvloop",
    "aiojobs",
    "asyncer",
    "aiometer",
    "aiotools",
    "tether",
    "sniffio",
    "exceptiongroup",
)
Row = list[str]
#: How the tables name each task body variant.
VARIANT_LABELS = {
    SUSPENDS: "body suspends once",
    NEVER_SUSPENDS: "body never suspends",
}


# -- metadata --------------------------------------------------------------------------


def _arg(arg: str) -> str:
    """Show a path argument relative to the repository, never as a path of this host."""
    prefix, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if os.path.isabs(value):
        path = Path(value).resolve()
        value = (
            path.relative_to(REPO).as_posix()
            if path.is_relative_to(REPO)
            else path.name
        )
    return f"{prefix}{eq}{value}"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def _tether_from_checkout() -> bool:
    """Whether ``import tether`` resolves to this checkout's ``src`` (an editable
    install), so that the checkout's commit is the measured core's.
    """
    import importlib.util

    spec = importlib.util.find_spec("tether")
    origin = spec.origin if spec else None
    return origin is not None and Path(origin).resolve().is_relative_to(REPO / "src")


def metadata(
    argv: Sequence[str], note: str = "", script: str = "benchmarks/run.py"
) -> dict[str, Any]:
    return {
        "command": " ".join([f"python {script}", *map(_arg, argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "asyncio_debug": bool(os.environ.get("PYTHONASYNCIODEBUG"))
        or sys.flags.dev_mode,
        "packages": {name: _version(name) for name in PACKAGES},
        # The harness's commit; the core's too when tether is imported from here.
        "harness_commit": _commit(),
        "tether_base_commit": _commit() if _tether_from_checkout() else None,
        "note": note,
    }


# -- rendering -------------------------------------------------------------------------


def table(headers: Row, rows: list[Row], fmt: str, left: int = 1) -> str:
    """A table; the first ``left`` columns are left-aligned, the rest right-aligned."""
    if fmt == "md":
        marks = [":---" if i < left else "---:" for i in range(len(headers))]
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(row: Row) -> str:
        cells = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _heading(text: str, fmt: str) -> str:
    return f"\n### {text}\n" if fmt == "md" else f"\n== {text} ==\n"


def task_variants(results: dict[str, Any]) -> tuple[str | None, str | None]:
    """The body variant the tables lead with, and the one shown beside it (if any)."""
    present = {
        variant_of(results, r) for r in results["records"] if r["section"] == "tasks"
    }
    if SUSPENDS in present:
        return SUSPENDS, NEVER_SUSPENDS if NEVER_SUSPENDS in present else None
    return (NEVER_SUSPENDS if present else None), None


def tasks_table(results: dict[str, Any], n: int, backend: str, fmt: str) -> str | None:
    """One backend's throughput table at ``n``; ``None`` when nothing ran there."""
    main, second = task_variants(results)
    rows = []
    for r in results["records"]:
        if (r["section"], r["n"], r["backend"]) != ("tasks", n, backend):
            continue
        if variant_of(results, r) != main:
            continue
        ratios = task_ratios(results, r)
        row = [
            f"`{r['case']}`" if fmt == "md" else r["case"],
            f"{r['median'] / n / 1000:.2f}",
            fmt_x(ratios["floor"]),
            fmt_x(ratios["anyio"]),
            fmt_x(ratios["gather"]),
            fmt_x(ratios["anyio.gather"]),
        ]
        if second:
            other = next(
                (
                    o
                    for o in results["records"]
                    if (o["section"], o["case"], o["n"], o["backend"])
                    == ("tasks", r["case"], n, backend)
                    and variant_of(results, o) == second
                ),
                None,
            )
            row += (
                ["-", "-"]
                if other is None
                else [
                    f"{other['median'] / n / 1000:.2f}",
                    fmt_x(task_ratios(results, other)["floor"]),
                ]
            )
        rows.append(row)
    if not rows:
        return None
    us = "µs/task" if fmt == "md" else "us/task"
    headers = ["case", us, "x floor", "x anyio", "x gather", "x anyio.gather"]
    if second:
        headers += [f"{us}, never suspends", "x floor, never suspends"]
    return table(headers, rows, fmt)


def _tasks(results: dict[str, Any], fmt: str) -> list[str]:
    out: list[str] = []
    reps = results["settings"]["repeats"]
    main, _ = task_variants(results)
    for n in results["settings"]["sizes"]:
        for backend in ("asyncio", "uvloop", "trio"):
            rendered = tasks_table(results, n, backend, fmt)
            if rendered is not None:
                label = VARIANT_LABELS.get(main or "", "")
                out.append(
                    _heading(
                        f"{n:,} tasks on {backend} (median of {reps}; {label})", fmt
                    )
                )
                out.append(rendered)
    return out


def _memory(results: dict[str, Any], fmt: str) -> list[str]:
    n = results["settings"]["memory_n"]
    recs = [r for r in results["records"] if r["section"] == "memory"]
    if not recs:
        return []
    rows = []
    for r in recs:
        anyio = median_of(
            results,
            "memory",
            "anyio.start_soon" + r["case"][r["case"].index("[") :],
            r["backend"],
            n,
        )
        rows.append(
            [
                r["name"],
                r["backend"],
                f"{r['median'] / n:,.0f}",
                fmt_x(ratio(float(r["median"]), anyio)),
            ]
        )
    return [
        _heading(f"memory per parked task, N={n:,} (tracemalloc)", fmt),
        table(["case", "backend", "bytes/task", "x anyio"], rows, fmt, left=2),
    ]


def _shutdown(results: dict[str, Any], fmt: str) -> list[str]:
    small, large = (
        results["settings"]["shutdown_n"][0],
        results["settings"]["shutdown_n"][-1],
    )
    seen: list[tuple[str, str, str]] = []
    for r in results["records"]:
        if (
            r["section"] == "shutdown"
            and (r["case"], r["backend"], r["name"]) not in seen
        ):
            seen.append((r["case"], r["backend"], r["name"]))
    if not seen:
        return []
    rows = []
    for case, backend, name in seen:
        t_small = median_of(results, "shutdown", case, backend, small)
        t_large = median_of(results, "shutdown", case, backend, large)
        mine = growth(results, case, backend)
        rows.append(
            [
                name,
                backend,
                "-" if t_small is None else f"{t_small / 1e6:.1f}",
                "-" if t_large is None else f"{t_large / 1e6:.1f}",
                fmt_x(mine),
                fmt_x(ratio(mine, growth(results, FLOORS[backend], backend))),
            ]
        )
    return [
        _heading(f"shutdown of parked tasks, {small:,} vs {large:,} (gc paused)", fmt),
        table(
            [
                "case",
                "backend",
                f"ms @{small:,}",
                f"ms @{large:,}",
                "growth",
                "x floor growth",
            ],
            rows,
            fmt,
            left=2,
        ),
    ]


def _import(results: dict[str, Any], fmt: str) -> list[str]:
    imp = results.get("import")
    if not imp:
        return []
    if "skipped" in imp:
        return [_heading("import time", fmt), imp["skipped"]]
    rows = [
        ["import anyio (fresh interpreter)", f"{imp['anyio_ms']:.1f}"],
        ["import tether, after anyio", f"{imp['tether_after_anyio_ms']:.1f}"],
        ["python -c 'import anyio' (wall)", f"{imp['wall_anyio_ms']:.1f}"],
        [
            "python -c 'import anyio, tether' (wall)",
            f"{imp['wall_anyio_tether_ms']:.1f}",
        ],
    ]
    notable = ", ".join(imp["notable_modules_added"]) or "none"
    heavy = ", ".join(f"{m} {ms:.1f} ms" for m, ms in imp.get("heaviest_self_ms", []))
    return [
        _heading(f"import time (median of {imp['runs']})", fmt),
        table(["what", "ms"], rows, fmt),
        f"\nmodules tether adds: {imp['modules_added']}; backend modules among them: "
        f"{notable}; largest self times (one -X importtime run): {heavy}",
    ]


def short_table(results: dict[str, Any], fmt: str) -> str | None:
    """The short-lived cases beside their references (``None``: not measured)."""
    rows = short_rows(results)
    if not rows:
        return None
    goal = cases_short.GOAL
    return table(
        ["case", "backend", "tether µs", "reference", "reference µs", "ratio", "goal"],
        [
            [
                r["label"],
                r["backend"],
                f"{r['tether_ns'] / 1000:.1f}",
                f"`{r['reference']}`" if fmt == "md" else r["reference"],
                "-" if r["reference_ns"] is None else f"{r['reference_ns'] / 1000:.1f}",
                fmt_x(r["ratio"]),
                "-"
                if r["ratio"] is None
                else ("met" if r["ratio"] <= goal else "missed")
                if r["backend"] != "trio"
                else "(no asyncio equivalent)",
            ]
            for r in rows
        ],
        fmt,
        left=2,
    )


def _short(results: dict[str, Any], fmt: str) -> list[str]:
    rendered = short_table(results, fmt)
    if rendered is None:
        return []
    return [
        _heading(
            f"short-lived registries and one-item gathers (<= {cases_short.GOAL:g}x "
            "the asyncio equivalent)",
            fmt,
        ),
        rendered,
    ]


def render(results: dict[str, Any], fmt: str) -> str:
    meta = results["meta"]
    pkgs = ", ".join(f"{k} {v}" for k, v in meta["packages"].items() if v)
    out = [
        f"Python {meta['python'].split()[0]} ({meta['implementation']}), "
        f"{meta['platform']}, {meta['cpu']} x{meta['cpu_count']}",
        f"{pkgs}",
        f"command: {meta['command']}  ({meta['date']})",
    ]
    if meta.get("note"):
        out.append(f"note: {meta['note']}")
    if meta.get("asyncio_debug"):
        out.append(
            "WARNING: asyncio debug / dev mode is on: timings are not meaningful"
        )
    out += _tasks(results, fmt) + _memory(results, fmt) + _shutdown(results, fmt)
    out += _short(results, fmt) + _import(results, fmt)
    if results.get("figures"):
        rows = [
            [
                f["figure"],
                f["goal"],
                f["measured"],
                {True: "met", False: "MISSED", None: "not measured"}[f["met"]],
            ]
            for f in results["figures"]
        ]
        out += [
            _heading("figures to reach (informational; nothing fails on a time)", fmt),
            table(["figure", "goal", "measured", "verdict"], rows, fmt, left=4),
        ]
    if results.get("skipped"):
        by_reason: dict[str, list[str]] = {}
        for s in results["skipped"]:
            by_reason.setdefault(s["reason"], []).append(
                f"{s['case']} ({s['backend']})"
            )
        out.append(_heading("skipped", fmt))
        out += [f"- {reason}: {', '.join(who)}" for reason, who in by_reason.items()]
    return "\n".join(out) + "\n"
