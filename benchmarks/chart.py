"""A self-contained SVG bar chart of the ratios to the floor, written by hand."""

from __future__ import annotations

import math
from html import escape
from typing import Any

import analysis
import report

COLOURS = {"asyncio": "#3b6fb6", "uvloop": "#4c9a5b", "trio": "#c46a2b"}
LABEL_W, PLOT_W, RIGHT_PAD = 330, 470, 70
BAR_H, BAR_GAP, ROW_GAP, TOP = 10, 2, 10, 92


def _ticks(lo: float, hi: float) -> list[float]:
    return [2.0**e for e in range(round(math.log2(lo)), round(math.log2(hi)) + 1)]


def render(results: dict[str, Any], n: int) -> str:
    """Return an SVG document: one group of bars per case, one bar per backend."""
    main, _ = report.task_variants(results)
    recs = [
        r
        for r in results["records"]
        if r["section"] == "tasks"
        and r["n"] == n
        and analysis.variant_of(results, r) == main
    ]
    cases: list[tuple[str, str]] = []
    for r in recs:
        if (r["case"], r["name"]) not in cases:
            cases.append((r["case"], r["name"]))
    bars: dict[str, list[tuple[str, float]]] = {case: [] for case, _ in cases}
    for r in recs:
        ratio = analysis.task_ratios(results, r)["floor"]
        if ratio:
            bars[r["case"]].append((r["backend"], ratio))
    for values in bars.values():
        values.sort(key=lambda item: list(COLOURS).index(item[0]))
    all_ratios = [v for values in bars.values() for _, v in values] or [1.0]
    lo = 2.0 ** math.floor(math.log2(min(0.5, min(all_ratios) * 0.9)))
    hi = 2.0 ** math.ceil(math.log2(max(2.0, max(all_ratios) * 1.15)))

    def x(value: float) -> float:
        span = math.log2(hi) - math.log2(lo)
        return LABEL_W + (math.log2(value) - math.log2(lo)) / span * PLOT_W

    meta = results["meta"]
    py = meta["python"].split()[0]
    reps = results["settings"]["repeats"]
    width = LABEL_W + PLOT_W + RIGHT_PAD
    rows: list[str] = []
    y = TOP
    for case, name in cases:
        group_h = max(1, len(bars[case])) * (BAR_H + BAR_GAP)
        mine = ' class="me"' if case.startswith("tether") else ""
        rows.append(
            f'<text x="{LABEL_W - 8}" y="{y + group_h / 2 + 4:.1f}" '
            f'text-anchor="end"{mine}>'
            f"{escape(case)}<title>{escape(name)}</title></text>"
        )
        for backend, ratio in bars[case]:
            x1 = x(ratio)
            rows.append(
                f'<rect x="{LABEL_W}" y="{y}" width="{x1 - LABEL_W:.1f}" '
                f'height="{BAR_H}" fill="{COLOURS[backend]}">'
                f"<title>{escape(case)} on {backend}: {ratio:.2f}x the floor</title>"
                "</rect>"
            )
            rows.append(
                f'<text x="{x1 + 4:.1f}" y="{y + BAR_H - 1}" class="v">'
                f"{ratio:.2f}x</text>"
            )
            y += BAR_H + BAR_GAP
        if not bars[case]:
            y += BAR_H + BAR_GAP
        y += ROW_GAP
    bottom = y
    axis: list[str] = []
    for tick in _ticks(lo, hi):
        tx = x(tick)
        axis.append(
            f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{bottom}" '
            f'class="{"one" if tick == 1 else "grid"}"/>'
        )
        label = f"{tick:g}x" if tick >= 1 else f"1/{1 / tick:g}x"
        axis.append(
            f'<text x="{tx:.1f}" y="{bottom + 14}" text-anchor="middle">{label}</text>'
        )
    legend = []
    for i, (backend, colour) in enumerate(COLOURS.items()):
        lx = LABEL_W + i * 120
        legend.append(f'<rect x="{lx}" y="52" width="12" height="12" fill="{colour}"/>')
        floor = analysis.FLOORS[backend]
        legend.append(
            f'<text x="{lx + 17}" y="62">{backend}<title>floor: {floor}</title></text>'
        )
    height = bottom + 44
    title = (
        f"Time per task as a ratio to the floor of the same backend "
        f"(N = {n:,}, median of {reps}, log scale; "
        f"{report.VARIANT_LABELS.get(main or '', '')})"
    )
    subtitle = (
        f"Python {py}, anyio {meta['packages'].get('anyio')}; floor: "
        "create_task + set + done callback (asyncio, uvloop), nursery.start_soon (trio)"
    )
    return "\n".join(
        [
            '<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
            "<style>text{font:11px sans-serif;fill:#222}.t{font-size:13px;"
            "font-weight:bold}.s{fill:#555}.v{font-size:9.5px;fill:#444}"
            ".grid{stroke:#ddd;stroke-width:1}.one{stroke:#222;stroke-width:1.2}"
            ".me{font-weight:bold}</style>",
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            f'<text x="12" y="22" class="t">{escape(title)}</text>',
            f'<text x="12" y="40" class="s">{escape(subtitle)}</text>',
            *legend,
            *axis,
            *rows,
            f'<text x="{LABEL_W + PLOT_W / 2}" y="{bottom + 32}" text-anchor="middle" '
            'class="s">lower is faster; 1x = the floor</text>',
            "</svg>",
            "",
        ]
    )
