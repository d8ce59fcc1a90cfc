"""Rewrite the generated regions of docs/benchmarks.md from the results files.

Every number on that page comes from the files in ``benchmarks/results/``: the
tables sit between marker comments, and nothing between them is edited by hand::

    <!-- BEGIN GENERATED figures py3.13 -->
    ...
    <!-- END GENERATED figures py3.13 -->

The first word names the region's kind (see :data:`KINDS`), the second the results
file: ``py3.13`` reads ``results-py3.13.json`` (``benchmarks/run.py``), or for the
kinds in :data:`SOURCES`, ``soak-py3.13.json`` (``benchmarks/soak.py``). Usage,
from the repository root::

    python benchmarks/docs_tables.py            # rewrite docs/benchmarks.md
    python benchmarks/docs_tables.py --check    # exit 1 if the page is stale

Run it after writing a results file; ``--check`` suits CI.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import analysis
import soak_report
from _common import SUSPENDS
from analysis import FLOORS, fmt_x, growth, median_of, ratio
from report import VARIANT_LABELS, short_table, table, task_variants, tasks_table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
REGION = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED (?P<kind>[\w-]+) (?P<tag>py[\d.]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<end><!-- END GENERATED (?P=kind) (?P=tag) -->)",
    re.DOTALL,
)
BACKEND_TITLES = {
    "asyncio": "asyncio",
    "uvloop": "asyncio + uvloop",
    "trio": "trio",
}
Results = dict[str, Any]


def _py(results: Results) -> str:
    return str(results["meta"]["python"].split()[0])


def machine(results: Results) -> str:
    """Where and with what the file was measured, from its metadata."""
    meta = results["meta"]
    pkgs = ", ".join(f"{k} {v}" for k, v in meta["packages"].items() if v)
    commit = meta.get("tether_base_commit")
    s = results["settings"]
    lines = [
        f"Python {_py(results)} ({meta['implementation']}) on {meta['platform']}, "
        f"{meta['cpu_count']} x {meta['cpu']}; measured {meta['date']}.",
        "",
        f"Packages: {pkgs}"
        + (f"; tether at commit `{commit}`" if commit else "")
        + ".",
        "",
        f"Command: `{meta['command']}`. Sizes: N = "
        + ", ".join(f"{n:,}" for n in s["sizes"])
        + f"; {s['repeats']} repeats; memory N = {s['memory_n']:,}; shutdown N = "
        + " and ".join(f"{n:,}" for n in s["shutdown_n"])
        + ".",
    ]
    if meta.get("note"):
        lines += ["", f"Note: {meta['note']}"]
    return "\n".join(lines)


def tasks(results: Results) -> str:
    n = analysis.figure_n(results)
    main, second = task_variants(results)
    intro = (
        f"Median of {results['settings']['repeats']}; `µs/task` is the median time "
        f"divided by N; {VARIANT_LABELS.get(main or '', 'no throughput cases')}."
    )
    if main != SUSPENDS:
        intro += (
            " This file predates the suspending body, so its tables show the body "
            "that never suspends and it yields no throughput figure."
        )
    if second:
        intro += (
            " The last two columns repeat the case with a body that never suspends,"
            " against the floor with that body."
        )
    out = [intro]
    for backend, title in BACKEND_TITLES.items():
        rendered = tasks_table(results, n, backend, "md")
        if rendered is not None:
            out += ["", f"### {title}", "", rendered]
    return "\n".join(out)


def by_n(results: Results) -> str:
    """Ratio to the floor at every N, on asyncio, for the cases measured everywhere."""
    main, _ = task_variants(results)
    sizes = results["settings"]["sizes"]
    cases: list[str] = []
    for r in results["records"]:
        if (
            r["section"] == "tasks"
            and r["backend"] == "asyncio"
            and analysis.variant_of(results, r) == main
            and r["case"] not in cases
        ):
            cases.append(r["case"])
    floor = FLOORS["asyncio"]
    rows = [
        ["floor, µs/task"]
        + [
            "-"
            if (t := median_of(results, "tasks", floor, "asyncio", n, main)) is None
            else f"{t / n / 1000:.2f}"
            for n in sizes
        ]
    ]
    for case in cases:
        rows.append(
            [f"`{case}`"]
            + [
                fmt_x(
                    ratio(
                        median_of(results, "tasks", case, "asyncio", n, main),
                        median_of(results, "tasks", floor, "asyncio", n, main),
                    )
                )
                for n in sizes
            ]
        )
    return table(["asyncio: x floor", *(f"N = {n:,}" for n in sizes)], rows, "md")


def memory(results: Results) -> str:
    n = results["settings"]["memory_n"]
    rows: list[list[str]] = []
    seen: list[tuple[str, str, str]] = []
    for r in results["records"]:
        if r["section"] != "memory":
            continue
        base = r["case"].split("[", 1)[0]
        label = r["name"].rsplit(",", 1)[0]
        if (base, label, r["backend"]) not in seen:
            seen.append((base, label, r["backend"]))
    for base, label, backend in seen:
        cells = []
        for mode in ("shared", "per-task"):
            total = median_of(results, "memory", f"{base}[{mode}]", backend, n)
            cells.append("-" if total is None else f"{total / n:,.0f} B")
        rows.append([label, backend, *cells])
    return table(
        ["case", "backend", "shared event", "per-task event"], rows, "md", left=2
    )


def shutdown(results: Results) -> str:
    small, large = (
        results["settings"]["shutdown_n"][0],
        results["settings"]["shutdown_n"][-1],
    )
    seen: list[tuple[str, str, str]] = []
    for r in results["records"]:
        key = (r["case"], r["backend"], r["name"])
        if r["section"] == "shutdown" and key not in seen:
            seen.append(key)
    rows = []
    for case, backend, name in seen:
        t_small = median_of(results, "shutdown", case, backend, small)
        t_large = median_of(results, "shutdown", case, backend, large)
        t_floor = median_of(results, "shutdown", FLOORS[backend], backend, large)
        mine = growth(results, case, backend)
        rows.append(
            [
                name,
                backend,
                "-" if t_small is None else f"{t_small / 1e6:,.1f}",
                "-" if t_large is None else f"{t_large / 1e6:,.1f}",
                fmt_x(ratio(t_large, t_floor)),
                fmt_x(mine),
                fmt_x(ratio(mine, growth(results, FLOORS[backend], backend))),
            ]
        )
    return table(
        [
            "case",
            "backend",
            f"ms @{small:,}",
            f"ms @{large:,}",
            f"x floor @{large:,}",
            "growth",
            "x floor growth",
        ],
        rows,
        "md",
        left=2,
    )


def imports(results: Results) -> str:
    imp = results.get("import")
    if not imp or "skipped" in imp:
        return "Not measured in this file."
    rows = [
        ["`import anyio` in a fresh interpreter", f"{imp['anyio_ms']:.1f}"],
        [
            "`import tether` after it (the figure)",
            f"{imp['tether_after_anyio_ms']:.1f}",
        ],
        ['`python -c "import anyio"`, wall time', f"{imp['wall_anyio_ms']:.1f}"],
        [
            '`python -c "import anyio, tether"`, wall time',
            f"{imp['wall_anyio_tether_ms']:.1f}",
        ],
    ]
    backends = ", ".join(f"`{m}`" for m in imp["notable_modules_added"]) or "none"
    heavy = ", ".join(
        f"`{m}` ({ms:.1f} ms)" for m, ms in imp.get("heaviest_self_ms", [])
    )
    return "\n".join(
        [
            f"Median of {imp['runs']}.",
            "",
            table(["what", "ms"], rows, "md"),
            "",
            f"`import tether` loads {imp['modules_added']} modules; backend modules "
            f"among them: {backends}. The largest self times among them (one "
            f"`-X importtime` run): {heavy or 'none'}.",
        ]
    )


def short(results: Results) -> str:
    """The short-lived registries and one-item gathers (``--only short:``)."""
    rendered = short_table(results, "md")
    info = results.get("short")
    if rendered is None or info is None:
        return "Not measured in this file."
    clock = "the process's CPU time" if info["clock"] == "cpu" else "the wall clock"
    return (
        f"Python {info['python'].split()[0]}; median of {info['repeats']} runs of "
        f"{info['ops']} operations each, timed by {clock}; measured {info['date']} "
        f"with `{info['command']}`.\n\n{rendered}"
    )


def figures(results: Results) -> str:
    verdicts = {True: "met", False: "**missed**", None: "not measured"}
    rows = [
        [f["figure"], f["goal"], f["measured"], verdicts[f["met"]]]
        for f in analysis.figures(results)
    ]
    return table(["figure", "goal", "measured", "verdict"], rows, "md", left=4)


def adopt(results: Results) -> str:
    """The cost of ``tether.adopt_tasks()`` per raw task (``adopt_overhead.py``)."""
    meta, s = results["meta"], results["settings"]
    rows = [
        [
            BACKEND_TITLES[r["loop"]],
            f"{r['raw_ns']:,.0f}",
            f"{r['adopted_ns']:,.0f}",
            fmt_x(r["ratio"]),
            fmt_x(r["adopted_ns"] / r["raw_ns"]),
        ]
        for r in results["results"]
    ]
    head = ["loop", "raw, ns per task", "adopted, ns per task", "ratio"]
    rendered = table([*head, "ratio of medians"], rows, "md")
    packages = ", ".join(f"{k} {v}" for k, v in meta["packages"].items())
    return (
        f"N = {s['tasks']:,} tasks, {s['rounds']} rounds.\n\n{rendered}\n\n"
        f"Python {meta['python']}, {packages}, on {meta['platform']}; measured "
        f"{meta['date']} with `{meta['command']}`."
    )


KINDS: dict[str, Callable[[Results], str]] = {
    "adopt": adopt,
    "machine": machine,
    "tasks": tasks,
    "by-n": by_n,
    "memory": memory,
    "shutdown": shutdown,
    "import": imports,
    "figures": figures,
    "short": short,
    "soak-machine": soak_report.machine,
    "soak": soak_report.through,
    "soak-parked": soak_report.parked,
}
#: The kinds read from another results file than ``results-pyX.Y.json``: its prefix.
SOURCES: dict[str, str] = {
    "adopt": "adopt",
    "soak-machine": "soak",
    "soak": "soak",
    "soak-parked": "soak",
}


def render_page(text: str, load: Callable[[str], Results]) -> str:
    """``text`` with every generated region rewritten from its results file;
    ``load`` takes the file's stem (``results-py3.13``).
    """
    unknown = [m["kind"] for m in REGION.finditer(text) if m["kind"] not in KINDS]
    if unknown:
        raise SystemExit(f"unknown generated region kind(s): {', '.join(unknown)}")
    begins = text.count("<!-- BEGIN GENERATED")
    found = len(REGION.findall(text))
    if begins != found:
        raise SystemExit(f"{begins - found} BEGIN GENERATED marker(s) without an END")

    def fill(m: re.Match[str]) -> str:
        stem = f"{SOURCES.get(m['kind'], 'results')}-{m['tag']}"
        body = KINDS[m["kind"]](load(stem)).rstrip("\n")
        return f"{m['begin']}{body}\n{m['end']}"

    return REGION.sub(fill, text)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python benchmarks/docs_tables.py",
        description="Rewrite docs/benchmarks.md's generated tables from the results.",
    )
    p.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    p.add_argument("--page", type=Path, default=PAGE, help=argparse.SUPPRESS)
    p.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cache: dict[str, Results] = {}

    def load(stem: str) -> Results:
        if stem not in cache:
            path = args.results / f"{stem}.json"
            results = json.loads(path.read_text(encoding="utf-8"))
            cache[stem] = results
        return cache[stem]

    old = args.page.read_text(encoding="utf-8")
    new = render_page(old, load)
    if args.check:
        if new != old:
            print(f"{args.page.name} is stale: run {p.prog}", file=sys.stderr)
            return 1
        return 0
    if new != old:
        args.page.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
