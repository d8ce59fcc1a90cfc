"""``tether scan``: find raw asyncio task creation that tether replaces.

Each finding is one line on stdout, ``path:line:column: CODE message``, with 1-based
lines and columns (columns count characters), as ruff and flake8 print them; other
formats are in :mod:`._scan_output`. The rules live in :mod:`._scan_rules`, which
files are read in :mod:`._scan_files`, the settings in :mod:`._scan_settings`.

An input that cannot be scanned is reported on stdout the same way, and the other inputs
are still scanned: ``E902`` for a missing or unreadable path or undecodable bytes, at
``path:0:0`` as it has no position; ``E999`` for a syntax error, at its position.
``--select``, ``--ignore`` and ``# noqa`` never hide these. In text mode a summary goes
to stderr, after a line for each symbolic link the walk skipped.

``--fix`` rewrites the mechanical ``TET001`` findings (:mod:`._scan_fix`, on libcst,
an optional dependency), writes them as :mod:`._scan_write` allows, and reports what is
left, each ``TET001`` with why it was not fixed; ``--diff`` prints the rewrite as a
unified diff instead, and what is left on stderr.

The exit status is 2 if any input was bad, a fix could not be written or the settings
are wrong, else 1 if anything was found (with ``--fix``: is left; with ``--diff``:
would be fixed or left), else 0.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import gc
import os
import re
import sys
import warnings
from dataclasses import replace
from importlib.util import decode_source
from typing import TYPE_CHECKING, Protocol, cast

from ._scan_args import add_arguments, overrides
from ._scan_files import Finder, Target, io_error
from ._scan_output import Report, plural, print_reports, summary
from ._scan_rules import RULES, TRIGGERS, check_module
from ._scan_settings import ConfigError, Overrides, Resolver, shown

if TYPE_CHECKING:
    import argparse
    from collections.abc import Generator, Iterable, Sequence

    from ._scan_files import Skipped

__all__ = ["Report", "add_arguments", "run", "scan_file", "scan_paths"]

# flake8's syntax; a bare one silences every code on its line.
_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)


class _Fix(Protocol):
    """``_scan_fix.fix_source``: the rewrite, to ``registry.spawn(...)`` if given."""

    def __call__(
        self,
        data: bytes,
        places: Sequence[tuple[int, int]],
        *,
        registry: str | None = ...,
    ) -> tuple[bytes, int]: ...


def run(args: argparse.Namespace) -> int:
    """Scan ``args.paths``, print the reports and return the exit status."""
    if args.diff and args.format != "text":
        names = {"json": "JSON", "github": "GitHub annotations", "sarif": "SARIF"}
        message = f"tether scan: --diff prints a diff, not {names[args.format]}"
        print(message, file=sys.stderr)
        return 2
    finder = Finder(Resolver(overrides(args)))
    try:
        if args.show_settings:
            return _show_settings(finder, args.paths)
        items = finder.find(args.paths)
    except ConfigError as exc:
        print(f"tether scan: {exc}", file=sys.stderr)
        return 2
    for skipped in finder.skipped:
        print(f"tether scan: {skipped}", file=sys.stderr)
    if args.show_files:
        return _show_files(items)
    if args.fix or args.diff:
        try:
            import libcst  # noqa: F401  # pyright: ignore[reportUnusedImport]
        except ImportError:
            print(
                "tether scan --fix and --diff need libcst, which is not installed: "
                "pip install libcst (the 'fix' extra of tether)",
                file=sys.stderr,
            )
            return 2
        return _rewrite(args, items, finder.skipped)
    reports, scanned = _scan_items(items)
    print_reports(reports, args.format)
    if args.format == "text":
        print(summary(reports, scanned, len(finder.skipped)), file=sys.stderr)
    return _status(reports)


def _show_settings(finder: Finder, paths: Sequence[str]) -> int:
    for path in paths:
        absolute = os.path.abspath(path)
        is_dir = os.path.isdir(path)
        settings = finder.resolver.settings_for(
            absolute if is_dir else os.path.dirname(absolute)
        )
        source = (
            f"[tool.tether.scan] of {shown(settings.config)}"
            if settings.config
            else "the built-in defaults (no [tool.tether.scan] above it)"
        )
        codes = settings.selected() if is_dir else settings.codes(path)
        print(f"# {path}: {source}, and the command line")
        print(f"# codes reported: {', '.join(sorted(codes)) or 'none'}")
        if is_dir and settings.per_file_ignores:
            print("# (in the files that no per-file-ignores pattern names)")
        for line in settings.show():
            print(line)
    return 0


def _show_files(items: list[Target | Report]) -> int:
    errors = [item for item in items if isinstance(item, Report)]
    for item in items:
        if isinstance(item, Target):
            print(item.path)
    print_reports(errors, "text", file=sys.stderr)
    return 2 if errors else 0


def _status(reports: list[Report], *, changes: bool = False) -> int:
    if any(report.is_error for report in reports):
        return 2
    return 1 if reports or changes else 0


def _rewrite(
    args: argparse.Namespace, items: list[Target | Report], skipped: list[Skipped]
) -> int:
    """``--fix`` and ``--diff``: rewrite each file, then report what is left."""
    from . import _scan_fix
    from ._scan_write import NotWritten, check_writable, replace_file

    # `registry=` is the keyword the rewrite takes for `--registry` (the interface
    # agreed with the rules' side of the scan); the cast states it to the checkers
    # for as long as fix_source in this tree does not declare it yet.
    fix = cast("_Fix", _scan_fix.fix_source)
    left: list[Report] = []
    fixed = files = scanned = 0
    for item in items:
        if isinstance(item, Report):
            left.append(item)
            continue
        path, settings = item.path, item.settings
        codes = settings.codes(path)
        data, reports = _read_and_scan(path, codes)
        scanned += not any(report.is_error for report in reports)
        places = [
            (r.line, r.column - 1)
            for r in reports
            if r.code == "TET001" and r.not_fixed is None
        ]
        if data is None or not places:
            left += reports
            continue
        try:
            check_writable(path, item.given)
            new, count = (
                fix(data, places)
                if settings.registry is None
                else fix(data, places, registry=settings.registry)
            )
            if args.diff:
                sys.stdout.writelines(_diff(path, data, new))
            elif new != data:
                replace_file(path, item.given, data, new)
        except (_scan_fix.FixRefused, NotWritten) as exc:
            error = isinstance(exc, NotWritten) and exc.error
            left += _left_as_it_was(path, reports, places, str(exc), error=error)
            continue
        fixed, files = fixed + count, files + (new != data)
        left += _scan_data(path, new, codes)
    left = [_with_reason(report) for report in left]
    print_reports(left, args.format, file=sys.stderr if args.diff else sys.stdout)
    if args.format == "text":
        verb = "Would fix" if args.diff else "Fixed"
        rest = summary(left, scanned, len(skipped)).replace(
            "No findings", "no findings"
        )
        print(
            f"{verb} {plural(fixed, 'finding')} in {plural(files, 'file')}; "
            f"left: {rest}",
            file=sys.stderr,
        )
    return _status(left, changes=bool(args.diff and fixed))


def _left_as_it_was(
    path: str,
    reports: list[Report],
    places: list[tuple[int, int]],
    reason: str,
    *,
    error: bool,
) -> list[Report]:
    """The file's reports, each fixable one saying why it was not fixed; a write
    that failed (``error``) is a report of its own."""
    head = [Report(path, 0, 0, "E902", f"fix not written: {reason}")] if error else []
    return head + [
        replace(r, not_fixed=reason) if (r.line, r.column - 1) in places else r
        for r in reports
    ]


def _with_reason(report: Report) -> Report:
    """A ``TET001`` left by ``--fix`` says why; the other codes have no fix."""
    if report.code != "TET001":
        return report
    # A call the rules passed but libcst placed elsewhere is left as it was.
    reason = report.not_fixed or "the call was not found where the scan placed it"
    return replace(report, message=f"{report.message} (not fixed: {reason})")


def _diff(path: str, before: bytes, after: bytes) -> list[str]:
    old = decode_source(before).splitlines(keepends=True)
    new = decode_source(after).splitlines(keepends=True)
    # Relative paths get git's a/ and b/ prefixes, so `patch -p1` applies the diff.
    before_name, after_name = (
        (path, path) if os.path.isabs(path) else (f"a/{path}", f"b/{path}")
    )
    return list(difflib.unified_diff(old, new, before_name, after_name))


def scan_paths(
    paths: Iterable[str], codes: frozenset[str] | None = None
) -> tuple[list[Report], int]:
    """Scan every file and directory of ``paths``, with their settings.

    Returns:
        The reports (findings of ``codes``, by default those the settings of each
        file select, and bad inputs) in path order, and the number of files scanned:
        a file that could not be read or parsed is reported, not counted. A file
        reached twice is scanned once.

    Raises:
        ConfigError: a ``[tool.tether.scan]`` table on the way cannot be used.
    """
    return _scan_items(Finder(Resolver(Overrides())).find(paths), codes)


def _scan_items(
    items: Iterable[Target | Report], codes: frozenset[str] | None = None
) -> tuple[list[Report], int]:
    reports: list[Report] = []
    scanned = 0
    with _no_cycle_collection():
        for item in items:
            if isinstance(item, Report):
                reports.append(item)
            else:
                found = scan_file(item.path, codes or item.settings.codes(item.path))
                scanned += not any(report.is_error for report in found)
                reports += found
    return reports, scanned


@contextlib.contextmanager
def _no_cycle_collection() -> Generator[None, None, None]:
    """Pause the cyclic garbage collector: syntax trees hold no cycles, reference
    counting frees each one, and the collector would only walk their many nodes
    again and again (a third of a scan's time on large files)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def scan_file(path: str, codes: frozenset[str] = frozenset(RULES)) -> list[Report]:
    """Scan one file: its findings of ``codes`` that no ``noqa`` silences, or its error.

    A file that names none of the calls the rules look for is only parsed.
    """
    return _read_and_scan(path, codes)[1]


def _read_and_scan(
    path: str, codes: frozenset[str]
) -> tuple[bytes | None, list[Report]]:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        return None, [io_error(path, exc)]
    return data, _scan_data(path, data, codes)


def _scan_data(path: str, data: bytes, codes: frozenset[str]) -> list[Report]:
    try:
        # Honours PEP 263 coding cookies and a BOM, as the interpreter does.
        source = decode_source(data)
    except (SyntaxError, UnicodeDecodeError) as exc:
        return [Report(path, 0, 0, "E902", f"cannot decode the file: {exc}")]
    try:
        with warnings.catch_warnings():
            # An invalid escape sequence is the file's business, not the scan's.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        message = f"SyntaxError: {exc.msg}"
        return [Report(path, exc.lineno or 0, exc.offset or 0, "E999", message)]
    except ValueError as exc:  # null bytes, before Python 3.12 made it a SyntaxError
        return [Report(path, 0, 0, "E999", f"SyntaxError: {exc}")]
    if not any(trigger in source for trigger in TRIGGERS):
        return []
    lines = source.split("\n")
    reports: list[Report] = []
    for finding in check_module(tree):
        text = lines[finding.line - 1]
        if finding.code not in codes or _silenced(text, finding.code):
            continue
        column = finding.col_offset
        if not text.isascii():
            column = len(text.encode()[:column].decode(errors="replace"))
        reports.append(
            Report(
                path,
                finding.line,
                column + 1,
                finding.code,
                finding.message,
                finding.not_fixed,
            )
        )
    return reports


def _silenced(line: str, code: str) -> bool:
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.group("codes")
    return codes is None or code in re.split(r"[,\s]+", codes.upper())
