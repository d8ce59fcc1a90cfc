"""The scale soak's results (``soak-pyX.Y.json``, written by ``soak.py``) as tables.

``docs_tables.py`` writes them into docs/benchmarks.md (regions ``soak`` and
``soak-parked``); ``soak.py`` prints them at the end of a run.
"""

from __future__ import annotations

from typing import Any

from report import table

Results = dict[str, Any]
BACKEND_ORDER = ("asyncio", "uvloop", "trio")


def _mb(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) < 2**20:
        return f"{value / 2**10:,.0f} KB"
    return f"{value / 2**20:,.1f} MB"


def _signed(value: int) -> str:
    return f"{value:+,} B"


def _load_1min(record: Results) -> str:
    load = record.get("load_average")
    return "-" if not load else f"{load[0]:.2f}"


def _checks(record: Results) -> str:
    found = record.get("problems", [])
    return "ok" if not found else f"**{len(found)} broken**"


def _load(meta: Results, key: str) -> str:
    load = meta.get(key)
    return "-" if not load else " / ".join(f"{x:.2f}" for x in load)


def machine(results: Results) -> str:
    """Where, when and how the soak ran, from its metadata."""
    meta = results["meta"]
    s = results["settings"]
    pkgs = ", ".join(f"{k} {v}" for k, v in meta["packages"].items() if v)
    commit = meta.get("tether_base_commit")
    lines = [
        f"Python {meta['python'].split()[0]} ({meta['implementation']}) on "
        f"{meta['platform']}, {meta['cpu_count']} x {meta['cpu']}; measured "
        f"{meta['date']}, {meta['seconds']:,.0f} s in all; load average "
        f"(1 / 5 / 15 min) {_load(meta, 'load_average')} at the start, "
        f"{_load(meta, 'load_average_end')} at the end.",
        "",
        f"Packages: {pkgs}"
        + (f"; tether at commit `{commit}`" if commit else "")
        + ".",
        "",
        f"Command: `{meta['command']}`. `limit={s['limit']:,}`; N = "
        + ", ".join(f"{n:,}" for n in s["sizes"])
        + (f"; {s['parked']:,} parked." if s["parked"] else "; no parked run."),
    ]
    if meta.get("note"):
        lines += ["", f"Note: {meta['note']}"]
    return "\n".join(lines)


def _ordered(results: Results, section: str) -> list[Results]:
    records = [r for r in results["records"] if r["section"] == section]
    key = "mode" if section == "through" else "end"
    order = results["settings"]["modes" if section == "through" else "ends"]
    return sorted(
        records,
        key=lambda r: (
            BACKEND_ORDER.index(r["backend"]) if r["backend"] in BACKEND_ORDER else 9,
            order.index(r[key]) if r[key] in order else 9,
            r["n"],
        ),
    )


def through(results: Results, fmt: str = "md") -> str:
    """N tasks through one registry: time, rate, growth per task, memory."""
    smallest: dict[tuple[str, str], float] = {}
    rows = []
    for r in _ordered(results, "through"):
        per_task = r["seconds"] / r["n"] * 1e6
        first = smallest.setdefault((r["backend"], r["mode"]), per_task)
        rows.append(
            [
                r["backend"],
                f"`{r['mode']}`" if fmt == "md" else r["mode"],
                f"{r['n']:,}",
                f"{r['seconds']:,.2f}",
                f"{r['n'] / r['seconds']:,.0f}",
                f"{per_task:.1f}",
                f"{per_task / first:.2f}x",
                f"{r['most_alive']:,}",
                _mb(r["traced_peak"]),
                _signed(r["traced_after"]),
                _mb(r.get("rss_peak")),
                _load_1min(r),
                _checks(r),
            ]
        )
    smallest_n = min(results["settings"]["sizes"], default=0)
    return table(
        [
            "backend",
            "spawn form",
            "N",
            "s",
            "tasks/s",
            "µs/task",
            f"µs/task vs N = {smallest_n:,}",
            "most live",
            "peak traced",
            "traced after close",
            "peak RSS",
            "load",
            "exactly once",
        ],
        rows,
        fmt,
        left=2,
    )


def parked(results: Results, fmt: str = "md") -> str:
    """Tasks parked at once, then ended: memory before, during and after."""
    rows = []
    for r in _ordered(results, "parked"):
        base = r["traced_base"]
        first = r["first_round"]
        rows.append(
            [
                r["backend"],
                r["end"],
                f"{r['n']:,}",
                _mb(base),
                _mb(r["traced_peak"]),
                _mb(r["traced_parked"]),
                _signed(r["traced_after"] - base),
                f"{(r['traced_parked'] - base) / r['n']:,.0f} B",
                _mb(first["traced_after"] - first["traced_base"]),
                f"{r['handles_alive'] + r['handles_in_gc']:,}",
                f"{r['spawn_seconds']:,.2f}",
                f"{r['close_seconds']:,.2f}",
                _load_1min(r),
                _checks(r),
            ]
        )
    return table(
        [
            "backend",
            "end",
            "N",
            "baseline",
            "peak",
            "parked",
            "after - baseline",
            "per parked task",
            "first round left",
            "handles left",
            "spawn s",
            "close s",
            "load",
            "checks",
        ],
        rows,
        fmt,
        left=2,
    )


def render(results: Results, fmt: str = "text") -> str:
    out = [through(results, fmt)]
    if any(r["section"] == "parked" for r in results["records"]):
        out += ["", parked(results, fmt)]
    for skip in results.get("skipped", []):
        out.append(f"skipped: {skip}")
    return "\n".join(out)
