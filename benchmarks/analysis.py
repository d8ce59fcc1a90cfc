"""Ratios, growth factors and the figure checks, computed from the results record.

Nothing here fails on a time: the figure checks say "met" or "MISSED", for people.
"""

from __future__ import annotations

from typing import Any

import cases_short
from _common import NEVER_SUSPENDS, SUSPENDS, median

FLOORS = {
    "asyncio": "asyncio.create_task",
    "uvloop": "asyncio.create_task",
    "trio": "trio.start_soon",
}
ANYIO = "anyio.start_soon"
MEMORY_REFS = ("asyncio.create_task", "trio.start_soon", "anyio.start_soon")
TETHER_SHUTDOWN = "tether.TaskRegistry/host-cancelled"
Record = dict[str, Any]


# -- lookups ---------------------------------------------------------------------------


def variant_of(results: dict[str, Any], r: Record) -> str:
    """The task body variant of a record. Files written before the variants existed
    (no ``settings.variants``) were measured with a body that never suspends.
    """
    if r["section"] != "tasks":
        return SUSPENDS
    default = SUSPENDS if "variants" in results["settings"] else NEVER_SUSPENDS
    return str(r.get("variant", default))


def median_of(
    results: dict[str, Any],
    section: str,
    case: str,
    backend: str,
    n: int,
    variant: str = SUSPENDS,
) -> float | None:
    for r in results["records"]:
        if (r["section"], r["case"], r["backend"], r["n"]) == (
            section,
            case,
            backend,
            n,
        ) and variant_of(results, r) == variant:
            return float(r["median"])
    return None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def figure_n(results: dict[str, Any]) -> int:
    sizes: list[int] = results["settings"]["sizes"]
    return 10_000 if 10_000 in sizes else max(sizes)


def _samples(results: dict[str, Any], case: str, backend: str, n: int) -> list[int]:
    for r in results["records"]:
        key = (r["section"], r["case"], r["backend"], r["n"])
        if key == ("shutdown", case, backend, n):
            return list(r["samples"])
    return []


def growth(results: dict[str, Any], case: str, backend: str) -> float | None:
    """The median over rounds of t(large) / t(small), each pair from the same round.

    Pairing cancels the slow drift of a long run (the later rounds of a process that
    has parked and freed millions of tasks run slower), which a ratio of medians
    taken over all rounds would not.
    """
    small, large = (
        results["settings"]["shutdown_n"][0],
        results["settings"]["shutdown_n"][-1],
    )
    pairs = zip(
        _samples(results, case, backend, large),
        _samples(results, case, backend, small),
        strict=False,
    )
    per_round = [big / little for big, little in pairs if little]
    return median(per_round) if per_round else None


def task_ratios(results: dict[str, Any], r: Record) -> dict[str, float | None]:
    """A throughput record's ratios to the references with the same body variant."""
    backend, n, med = r["backend"], r["n"], float(r["median"])
    v = variant_of(results, r)

    def to(case: str) -> float | None:
        return ratio(med, median_of(results, "tasks", case, backend, n, v))

    out = {
        "floor": to(FLOORS[backend]),
        "anyio": to(ANYIO),
        "gather": None,
        "anyio.gather": None,
    }
    if r["group"] == "gather":
        out["gather"] = to("asyncio.gather")
        out["anyio.gather"] = to("anyio.gather")
    return out


def short_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The short-lived cases (section ``short``), each beside its reference on the
    same backend: nanoseconds per operation (median over the rounds) and the ratio.
    A results file without the section gives none."""
    rows: list[dict[str, Any]] = []
    by_key = {
        (r["case"], r["backend"]): r
        for r in results["records"]
        if r["section"] == cases_short.SECTION
    }
    major, minor = results["meta"]["python"].split()[0].split(".")[:2]
    python = (int(major), int(minor))
    for pair in cases_short.PAIRS:
        for backend, measured in pair.references.items():
            reference = cases_short.reference_on(measured, python)
            ours, theirs = (
                by_key.get((pair.case, backend)),
                by_key.get((reference, backend)),
            )
            if ours is None:
                continue
            ours_ns = float(ours["median"]) / ours["n"]
            theirs_ns = (
                None if theirs is None else float(theirs["median"]) / theirs["n"]
            )
            rows.append(
                {
                    "case": pair.case,
                    "label": pair.label,
                    "backend": backend,
                    "tether_ns": ours_ns,
                    "reference": reference,
                    "reference_ns": theirs_ns,
                    "ratio": ratio(ours_ns, theirs_ns),
                }
            )
    return rows


# -- figure checks (informational: nothing ever fails on a time) -----------------------


def fmt_x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _check(goal: str, parts: list[tuple[str, float | None, float]]) -> dict[str, Any]:
    met = (
        None
        if any(v is None for _, v, _ in parts)
        else all(v is not None and v <= limit for _, v, limit in parts)
    )
    return {
        "goal": goal,
        "measured": ", ".join(f"{fmt_x(v)} {what}" for what, v, _ in parts),
        "met": met,
    }


def _us(total_ns: float | None, n: int) -> str | None:
    return None if total_ns is None else f"{total_ns / n / 1000:.2f} µs"


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The design's figures, from the throughput cases whose body suspends once.

    Each row: ``figure``, ``goal``, ``measured`` (the ratios, with the reference's
    time per task for scale), ``met`` (``None`` when not measured) and ``ratios``
    (``[what, value, limit]`` triples, for tools).
    """
    n = figure_n(results)
    out: list[dict[str, Any]] = []

    def tasks(case: str, backend: str) -> float | None:
        return median_of(results, "tasks", case, backend, n)

    def row(
        figure: str,
        goal: str,
        parts: list[tuple[str, float | None, float]],
        scale: str | None,
    ) -> None:
        checked = _check(goal, parts)
        if checked["met"] is not None and scale:
            checked["measured"] += f" ({scale})"
        checked["ratios"] = [list(p) for p in parts]
        out.append({"figure": figure, **checked})

    def spawn(backend: str, floor: float, anyio: float) -> None:
        med = tasks("tether.TaskRegistry.spawn", backend)
        base = tasks(FLOORS[backend], backend)
        row(
            f"registry spawn + await, {backend}, N={n:,}",
            f"<= {floor}x floor, <= {anyio}x anyio",
            [
                ("floor", ratio(med, base), floor),
                ("anyio", ratio(med, tasks(ANYIO, backend)), anyio),
            ],
            f"floor {_us(base, n)}/task" if base else None,
        )

    spawn("asyncio", 1.5, 0.35)
    spawn("uvloop", 2.0, 0.35)
    spawn("trio", 2.0, 0.6)
    med = tasks("tether.run_all", "asyncio")
    gather = tasks("asyncio.gather", "asyncio")
    row(
        f"run_all, asyncio, N={n:,}",
        "<= 1.3x asyncio.gather, <= 0.35x anyio.gather",
        [
            ("gather", ratio(med, gather), 1.3),
            ("anyio.gather", ratio(med, tasks("anyio.gather", "asyncio")), 0.35),
        ],
        f"asyncio.gather {_us(gather, n)}/task" if gather else None,
    )
    mem_n = results["settings"]["memory_n"]
    per = median_of(
        results, "memory", "tether.TaskRegistry.spawn[shared]", "asyncio", mem_n
    )
    per = None if per is None else per / mem_n
    anyio_per = median_of(
        results, "memory", "anyio.start_soon[shared]", "asyncio", mem_n
    )
    raw_per = median_of(
        results, "memory", "asyncio.create_task[shared]", "asyncio", mem_n
    )

    def _b(total: float | None) -> str:
        return "-" if total is None else f"{total / mem_n:,.0f} B"

    out.append(
        {
            "figure": f"memory per parked task, asyncio, N={mem_n:,}",
            "goal": "<= 1,600 B",
            "measured": "-"
            if per is None
            else f"{per:,.0f} B (raw task: {_b(raw_per)}, anyio: {_b(anyio_per)})",
            "met": None if per is None else per <= 1600,
            "ratios": [["bytes per task", per, 1600]],
        }
    )
    sizes = results["settings"]["shutdown_n"]
    large = sizes[-1]
    mine_t = median_of(results, "shutdown", TETHER_SHUTDOWN, "asyncio", large)
    raw_t = median_of(results, "shutdown", FLOORS["asyncio"], "asyncio", large)
    row(
        f"shutdown of {large:,} parked tasks, asyncio",
        "<= 1.2x raw create_task + cancel()",
        [("raw", ratio(mine_t, raw_t), 1.2)],
        None if raw_t is None else f"raw {raw_t / 1e6:,.1f} ms",
    )
    mine, raw = (
        growth(results, TETHER_SHUTDOWN, "asyncio"),
        growth(results, FLOORS["asyncio"], "asyncio"),
    )
    row(
        f"shutdown growth {sizes[0]:,} -> {large:,}, asyncio",
        "growth <= 1.1x raw growth",
        [("of raw growth", ratio(mine, raw), 1.1)],
        f"{fmt_x(mine)} vs {fmt_x(raw)}",
    )
    short = short_rows(results)
    for backend in ("asyncio", "uvloop"):
        parts = [
            (row["case"], row["ratio"], cases_short.GOAL)
            for row in short
            if row["backend"] == backend
        ]
        row(
            f"short-lived registries and one-item gathers, {backend}",
            f"each <= {cases_short.GOAL:g}x its asyncio equivalent",
            parts or [("every case", None, cases_short.GOAL)],
            None,
        )
    imp = results.get("import", {})
    delta = imp.get("tether_after_anyio_ms")
    out.append(
        {
            "figure": "import tether after import anyio",
            "goal": "<= 20 ms",
            "measured": "-" if delta is None else f"{delta:.1f} ms",
            "met": None if delta is None else delta <= 20,
            "ratios": [["ms", delta, 20]],
        }
    )
    return out
