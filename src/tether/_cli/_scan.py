"""``tether scan``: find raw asyncio task creation that tether replaces.

Each finding is one line on stdout, ``path:line:column: CODE message``, with 1-based
lines and columns (columns count characters), as ruff and flake8 print them. The rules
live in :mod:`tether._cli._scan_rules`.

An input that cannot be scanned is reported on stdout the same way, and the other inputs
are still scanned: ``E902`` for a missing or unreadable path or undecodable bytes, at
``path:0:0`` as it has no position; ``E999`` for a syntax error, at its position.
``--select``, ``--ignore`` and ``# noqa`` never hide these. ``--format json`` prints
findings and errors as one JSON array instead. In text mode a summary goes to stderr.

``--fix`` rewrites the mechanical ``TET001`` findings in place (:mod:`._scan_fix`, on
libcst, an optional dependency) and reports what is left, each ``TET001`` with why it
was not fixed; ``--diff`` prints the rewrite as a unified diff instead, and what is
left on stderr.

The exit status is 2 if any input was bad, else 1 if anything was found (with
``--fix``: is left; with ``--diff``: would be fixed or left), else 0.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import gc
import json
import os
import re
import sys
import warnings
from dataclasses import dataclass, field, replace
from importlib.util import decode_source
from typing import TYPE_CHECKING

from ._scan_index import dotted_name
from ._scan_project import Project
from ._scan_rules import ALIASES, RULES, TRIGGERS, Finding, check_module

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator
    from typing import TextIO

__all__ = ["Report", "add_arguments", "run", "scan_file", "scan_paths"]

# Virtual environments and installed packages hold other people's code.
_SKIPPED_FOLDERS = frozenset(
    {"__pycache__", "site-packages", "dist-packages", "node_modules", "venv"}
)
# flake8's syntax; a bare one silences every code on its line.
_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?", re.IGNORECASE
)


@dataclass(frozen=True)
class Report:
    """One line of output: a finding, or an input that could not be scanned."""

    path: str
    line: int
    column: int
    code: str
    message: str
    #: why ``--fix`` leaves this finding, or None if it rewrites it
    not_fixed: str | None = field(default=None, compare=False, repr=False)
    #: the task's coroutine loops forever: ``--fix`` spawns a daemon
    endless: bool = field(default=False, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        """Whether this reports a bad input (``E902``, ``E999``), not a finding."""
        return self.code not in RULES

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code} {self.message}"

    def as_json(self) -> dict[str, str | int]:
        """The report as ``--format json`` prints it."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scan`` subcommand's arguments to ``parser``."""
    codes = ", ".join(f"{code} ({title})" for code, title in RULES.items())
    parser.epilog = (
        f"codes: {codes}. Exit status: 0 if nothing was found, 1 if something was, "
        "2 if an input could not be scanned."
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file, or a directory to walk for *.py files (skipping hidden "
        "folders, virtual environments and site-packages)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one 'path:line:column: CODE message' line per finding (default); "
        "json: one array of objects with path, line, column, code and message",
    )
    for option, verb in (("--select", "report only"), ("--ignore", "do not report")):
        parser.add_argument(
            option,
            type=_parse_codes,
            action="append",
            default=[],
            metavar="CODES",
            help=f"{verb} these comma-separated codes or prefixes (e.g. TET001,TET00)",
        )
    rewrite = parser.add_mutually_exclusive_group()
    rewrite.add_argument(
        "--fix",
        action="store_true",
        help="rewrite the TET001 findings it can prove safe to tether.spawn, in "
        "place, and report what is left (needs libcst: pip install libcst)",
    )
    rewrite.add_argument(
        "--diff",
        action="store_true",
        help="print what --fix would change as a unified diff, and change nothing",
    )
    parser.add_argument(
        "--registry",
        type=_registry_expression,
        metavar="EXPR",
        help="with --fix or --diff, rewrite to EXPR.spawn(...) (e.g. self._tasks, "
        "a tether.TaskRegistry the code owns) instead of tether.spawn(...)",
    )


def run(args: argparse.Namespace) -> int:
    """Scan ``args.paths``, print the reports and return the exit status."""
    codes = _enabled_codes(args.select, args.ignore)
    if args.diff and args.format == "json":
        print("tether scan: --diff prints a diff, not JSON", file=sys.stderr)
        return 2
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
        return _rewrite(args, codes)
    reports, scanned = scan_paths(args.paths, codes)
    _print(reports, args.format)
    if args.format == "text":
        print(_summary(reports, scanned), file=sys.stderr)
    return _status(reports)


def _status(reports: list[Report], *, changes: bool = False) -> int:
    if any(report.is_error for report in reports):
        return 2
    return 1 if reports or changes else 0


def _print(reports: list[Report], form: str, *, file: TextIO | None = None) -> None:
    if form == "json":
        print(json.dumps([report.as_json() for report in reports], indent=2), file=file)
    else:
        for report in reports:
            print(report, file=file)


def _registry_expression(text: str) -> str:
    if dotted_name(text) is None:
        message = (
            "--registry takes a name or a dotted name, such as self._tasks: "
            f"got {text!r}"
        )
        raise argparse.ArgumentTypeError(message)
    return text


def _rewrite(args: argparse.Namespace, codes: frozenset[str]) -> int:
    """``--fix`` and ``--diff``: rewrite each file, then report what is left."""
    from ._scan_fix import FixRefused, needs, rewrite_source, unified_diff

    left: list[Report] = []
    fixed = files = scanned = daemons = 0
    registry: str | None = getattr(args, "registry", None)
    parsed, project = _parse_all(args.paths)
    for path, item in parsed:
        if isinstance(item, Report):
            left.append(item)
            continue
        data = item[0]
        reports = _project_reports(path, item, project, codes)
        scanned += 1
        places = [
            (r.line, r.column - 1)
            for r in reports
            if r.code == "TET001" and r.not_fixed is None
        ]
        if not places:
            left += reports
            continue
        try:
            new, count, refused, daemon = rewrite_source(
                data,
                places,
                registry=registry,
                daemon=[(r.line, r.column - 1) for r in reports if r.endless],
            )
        except FixRefused as exc:
            left += [
                replace(r, not_fixed=str(exc))
                if (r.line, r.column - 1) in places
                else r
                for r in reports
            ]
            continue
        if args.diff:
            sys.stdout.flush()
            sys.stdout.buffer.write(unified_diff(path, data, new))
            sys.stdout.buffer.flush()
        elif new != data:
            try:
                with open(path, "wb") as file:
                    file.write(new)
            except OSError as exc:
                left += [_io_error(path, exc), *reports]
                continue
        fixed, files = fixed + count, files + (new != data)
        daemons += daemon
        again = _parse_data(path, new)
        left += [
            replace(r, not_fixed=refused.get((r.line, r.column - 1), r.not_fixed))
            for r in (
                [again]
                if isinstance(again, Report)
                else _project_reports(path, again, project, codes, again=True)
            )
        ]
    left = [_with_reason(report) for report in left]
    _print(left, args.format, file=sys.stderr if args.diff else sys.stdout)
    if args.format == "text":
        verb = "Would fix" if args.diff else "Fixed"
        summary = _summary(left, scanned).replace("No findings", "no findings")
        print(
            f"{verb} {_plural(fixed, 'finding')} in {_plural(files, 'file')}; "
            f"left: {summary}",
            file=sys.stderr,
        )
        if fixed:
            print(needs(registry, daemons), file=sys.stderr)
    return _status(left, changes=bool(args.diff and fixed))


def _with_reason(report: Report) -> Report:
    """A ``TET001`` left by ``--fix`` says why; the other codes have no fix."""
    if report.code != "TET001":
        return report
    # A call the rules passed but libcst placed elsewhere is left as it was.
    reason = report.not_fixed or "the call was not found where the scan placed it"
    return replace(report, message=f"{report.message} (not fixed: {reason})")


def scan_paths(
    paths: Iterable[str], codes: frozenset[str] = frozenset(RULES)
) -> tuple[list[Report], int]:
    """Scan every file and directory of ``paths``.

    Returns:
        The reports (findings of ``codes`` and bad inputs) in path order, and the number
        of files scanned: a file that could not be read or parsed is reported, not
        counted. A file reached twice is scanned once.
    """
    reports: list[Report] = []
    scanned = 0
    with _no_cycle_collection():
        parsed, project = _parse_all(paths)
        for path, item in parsed:
            if isinstance(item, Report):
                reports.append(item)
            else:
                reports += _project_reports(path, item, project, codes)
                scanned += 1
    return reports, scanned


# The bytes, the text, and the syntax tree (None once dropped) of a module.
_Parsed = tuple[bytes, str, ast.Module | None]


def _parse_all(
    paths: Iterable[str],
) -> tuple[list[tuple[str, _Parsed | Report]], Project]:
    """Read and parse every file of ``paths`` (a bad path or file is its report),
    and see the files as one project, so that a rule can follow a call from one
    module to another."""
    parsed: list[tuple[str, _Parsed | Report]] = []
    for item in _files(paths):
        if isinstance(item, Report):
            parsed.append((item.path, item))
            continue
        try:
            with open(item, "rb") as file:
                data = file.read()
        except OSError as exc:
            parsed.append((item, _io_error(item, exc)))
            continue
        result = _parse_data(item, data)
        if isinstance(result, tuple) and not _triggered(result[1]):
            # A module that makes no task is parsed again if a rule asks about it
            # (few are): keeping every tree costs more.
            result = (result[0], result[1], None)
        parsed.append((item, result))
    modules = [
        (path, item[1], item[2]) for path, item in parsed if isinstance(item, tuple)
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


def _files(paths: Iterable[str]) -> list[str | Report]:
    """The files to scan, each once, and a report for each bad path."""
    items: list[str | Report] = []
    seen: set[str] = set()
    for path in paths:
        for item in _python_files(path):
            if isinstance(item, Report):
                items.append(item)
            elif os.path.normpath(item) not in seen:
                seen.add(os.path.normpath(item))
                items.append(item)
    return items


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
        return None, [_io_error(path, exc)]
    return data, _scan_data(path, data, codes)


def _scan_data(path: str, data: bytes, codes: frozenset[str]) -> list[Report]:
    parsed = _parse_data(path, data)
    if isinstance(parsed, Report):
        return [parsed]
    _, source, tree = parsed
    if tree is None or not _triggered(source):
        return []
    return _reports(path, source, check_module(tree), codes)


def _parse_data(path: str, data: bytes) -> _Parsed | Report:
    try:
        # Honours PEP 263 coding cookies and a BOM, as the interpreter does.
        source = decode_source(data)
    except (SyntaxError, UnicodeDecodeError) as exc:
        return Report(path, 0, 0, "E902", f"cannot decode the file: {exc}")
    try:
        with warnings.catch_warnings():
            # An invalid escape sequence is the file's business, not the scan's.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        message = f"SyntaxError: {exc.msg}"
        return Report(path, exc.lineno or 0, exc.offset or 0, "E999", message)
    except ValueError as exc:  # null bytes, before Python 3.12 made it a SyntaxError
        return Report(path, 0, 0, "E999", f"SyntaxError: {exc}")
    return data, source, tree


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


def _python_files(path: str) -> Iterator[str | Report]:
    """Yield the files to scan under ``path``, and a report for each unreadable folder.

    A path given by name is scanned whatever its suffix, as ruff does; it is for
    reading it to report that it is missing.
    """
    if not os.path.isdir(path):
        yield path
        return
    errors: list[OSError] = []
    for folder, folders, files in os.walk(path, onerror=errors.append):
        folders[:] = sorted(name for name in folders if not _skipped(folder, name))
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.normpath(os.path.join(folder, name))
        for error in errors:
            yield _io_error(str(error.filename or path), error)
        errors.clear()


def _skipped(parent: str, name: str) -> bool:
    return (
        name.startswith(".")
        or name in _SKIPPED_FOLDERS
        # Any folder holding a virtual environment, whatever its name.
        or os.path.isfile(os.path.join(parent, name, "pyvenv.cfg"))
    )


def _io_error(path: str, exc: OSError) -> Report:
    return Report(path, 0, 0, "E902", exc.strerror or str(exc))


def _silenced(line: str, code: str) -> bool:
    match = _NOQA.search(line)
    if match is None:
        return False
    codes = match.group("codes")
    if codes is None:
        return True
    named = re.split(r"[,\s]+", codes.upper())
    return any(name in named for name in (code, *ALIASES.get(code, ())))


def _parse_codes(text: str) -> list[str]:
    """Split ``--select`` / ``--ignore`` values, refusing codes that match no rule."""
    codes = [code.strip().upper() for code in text.split(",") if code.strip()]
    for code in codes:
        if not any(rule.startswith(code) for rule in RULES):
            known = ", ".join(RULES)
            message = f"unknown code {code!r}: the codes are {known}"
            raise argparse.ArgumentTypeError(message)
    return codes


def _enabled_codes(select: list[list[str]], ignore: list[list[str]]) -> frozenset[str]:
    chosen = [code for group in select for code in group] or list(RULES)
    dropped = [code for group in ignore for code in group]
    return frozenset(
        rule
        for rule in RULES
        if any(rule.startswith(code) for code in chosen)
        and not any(rule.startswith(code) for code in dropped)
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _summary(reports: list[Report], scanned: int) -> str:
    findings = [report for report in reports if not report.is_error]
    errors = len(reports) - len(findings)
    files = len({report.path for report in findings})
    text = "No findings"
    if findings:
        text = f"{_plural(len(findings), 'finding')} in {_plural(files, 'file')}"
    text += f" ({_plural(scanned, 'file')} scanned)"
    if errors:
        text += f"; {_plural(errors, 'input')} could not be scanned"
    return text
