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
import gc
import os
import re
import sys
import warnings
from dataclasses import replace
from importlib.util import decode_source
from typing import TYPE_CHECKING

from ._scan_args import add_arguments, overrides
from ._scan_files import Finder, Target, io_error
from ._scan_output import Report, plural, print_reports, summary
from ._scan_project import Project
from ._scan_rules import ALIASES, RULES, TRIGGERS, Finding, check_module
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
    # Imported here, at each call: libcst is needed only to fix (and the tests
    # replace rewrite_source on the module).
    from ._scan_fix import FixRefused, needs, rewrite_source, unified_diff
    from ._scan_write import NotWritten, check_writable, replace_file

    left: list[Report] = []
    fixed = files = scanned = daemons = 0
    registries: set[str | None] = set()
    parsed, project = _parse_all(items)
    for entry in parsed:
        if isinstance(entry, Report):
            left.append(entry)
            continue
        target, item = entry
        path, settings = target.path, target.settings
        reports = _project_reports(path, item, project, settings.codes(path))
        scanned += 1
        places = [
            (r.line, r.column - 1)
            for r in reports
            if r.code == "TET001" and r.not_fixed is None
        ]
        if not places:
            left += reports
            continue
        data = item[0]
        try:
            check_writable(path, target.given)
            new, count, refused, daemon = rewrite_source(
                data,
                places,
                registry=settings.registry,
                daemon=[(r.line, r.column - 1) for r in reports if r.endless],
            )
            if args.diff:
                sys.stdout.flush()
                sys.stdout.buffer.write(unified_diff(path, data, new))
                sys.stdout.buffer.flush()
            elif new != data:
                replace_file(path, target.given, data, new)
        except (FixRefused, NotWritten) as exc:
            error = isinstance(exc, NotWritten) and exc.error
            left += _left_as_it_was(path, reports, places, str(exc), error=error)
            continue
        fixed, files, daemons = fixed + count, files + (new != data), daemons + daemon
        registries.add(settings.registry if count else "")
        again = _parse_data(path, new)
        left += [
            replace(r, not_fixed=refused.get((r.line, r.column - 1), r.not_fixed))
            for r in (
                [again]
                if isinstance(again, Report)
                else _project_reports(
                    path, again, project, settings.codes(path), again=True
                )
            )
        ]
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
        registries.discard("")
        if fixed:
            # One registry for the whole run, the usual case, is named.
            registry = registries.pop() if len(registries) == 1 else None
            print(needs(registry, daemons), file=sys.stderr)
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
        parsed, project = _parse_all(items)
        for entry in parsed:
            if isinstance(entry, Report):
                reports.append(entry)
            else:
                target, item = entry
                path = target.path
                chosen = codes or target.settings.codes(path)
                reports += _project_reports(path, item, project, chosen)
                scanned += 1
    return reports, scanned


# The bytes, the text, and the syntax tree (None once dropped) of a module.
_Parsed = tuple[bytes, str, ast.Module | None]


def _parse_all(
    items: Iterable[Target | Report],
) -> tuple[list[Report | tuple[Target, _Parsed]], Project]:
    """Read and parse every file (a bad path or file is its report), and see the
    files as one project, so that a rule can follow a call from one module to
    another."""
    parsed: list[Report | tuple[Target, _Parsed]] = []
    for item in items:
        if isinstance(item, Report):
            parsed.append(item)
            continue
        try:
            with open(item.path, "rb") as file:
                data = file.read()
        except OSError as exc:
            parsed.append(io_error(item.path, exc))
            continue
        # A module that makes no task keeps no tree, and is parsed again if a rule
        # asks about it (few are): keeping every tree costs more.
        result = _parse_data(item.path, data, keep_tree=False)
        if isinstance(result, Report):
            parsed.append(result)
            continue
        parsed.append((item, result))
    modules = [
        (entry[0].path, entry[1][1], entry[1][2])
        for entry in parsed
        if not isinstance(entry, Report)
    ]
    return parsed, Project(modules)


def _triggered(source: str) -> bool:
    return any(trigger in source for trigger in TRIGGERS)


def _project_reports(
    path: str,
    parsed: _Parsed,
    project: Project,
    codes: frozenset[str],
    *,
    again: bool = False,
) -> list[Report]:
    """The reports of the module at ``path`` of ``project`` (``again``: after a fix
    changed it)."""
    _, source, tree = parsed
    if again and tree is not None:
        findings = project.recheck(path, source, tree)
    else:
        findings = project.findings(path)
    return _reports(path, source, findings, codes)


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
    parsed = _parse_data(path, data)
    if isinstance(parsed, Report):
        return [parsed]
    _, source, tree = parsed
    if tree is None or not _triggered(source):
        return []
    return _reports(path, source, check_module(tree), codes)


def _parse_data(path: str, data: bytes, *, keep_tree: bool = True) -> _Parsed | Report:
    """The module's bytes, text and syntax tree, or the report of why it has none.

    With ``keep_tree=False``, a module whose text names no trigger is only checked
    for syntax errors, and its tree is None.
    """
    try:
        # Honours PEP 263 coding cookies and a BOM, as the interpreter does.
        source = decode_source(data)
    except (SyntaxError, UnicodeDecodeError) as exc:
        return Report(path, 0, 0, "E902", f"cannot decode the file: {exc}")
    tree: ast.Module | None = None
    try:
        with warnings.catch_warnings():
            # An invalid escape sequence is the file's business, not the scan's.
            warnings.simplefilter("ignore")
            if keep_tree or _triggered(source):
                tree = ast.parse(source, filename=path)
            else:
                _check_syntax(source, path)
    except SyntaxError as exc:
        message = f"SyntaxError: {exc.msg}"
        return Report(path, exc.lineno or 0, exc.offset or 0, "E999", message)
    except ValueError as exc:  # null bytes, before Python 3.12 made it a SyntaxError
        return Report(path, 0, 0, "E999", f"SyntaxError: {exc}")
    return data, source, tree


def _check_syntax(source: str, path: str) -> None:
    """Raise the module's syntax error, if it has one, as ``ast.parse`` would.

    Most modules make no task, and for them building the Python syntax tree cost
    most of the scan: compiling to bytecode checks the syntax for about 80% of that
    (1,000 files of real projects: 2.25 s against 2.75 s of CPU). The compiler
    refuses more than the parser (``return`` or ``await`` outside a function), so
    only what ``ast.parse`` also refuses is the file's error.
    """
    try:
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError:
        ast.parse(source, filename=path)


def _reports(
    path: str, source: str, findings: list[Finding], codes: frozenset[str]
) -> list[Report]:
    """The findings of ``codes`` that no ``noqa`` silences, as reports."""
    lines = source.split("\n")
    reports: list[Report] = []
    for finding in findings:
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
                finding.endless,
            )
        )
    return reports


def _silenced(line: str, code: str) -> bool:
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.group("codes")
    if codes is None:
        return True
    named = re.split(r"[,\s]+", codes.upper())
    return any(name in named for name in (code, *ALIASES.get(code, ())))
