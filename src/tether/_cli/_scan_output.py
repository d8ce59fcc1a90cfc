"""What ``tether scan`` prints: one :class:`Report` per finding or bad input, in a
format people's tools read.

- ``text``: ``path:line:column: CODE message``, as ruff and flake8 print it, which
  editors, grep and CI problem matchers parse;
- ``json``: one array of objects with ``path``, ``line``, ``column``, ``code``,
  ``message``;
- ``github``: GitHub Actions workflow commands (``::error file=...``), which the
  runner turns into annotations on the pull request's lines with no other setup;
- ``sarif``: SARIF 2.1.0, which GitHub code scanning
  (``github/codeql-action/upload-sarif``), GitLab and editors' SARIF viewers import.
"""

from __future__ import annotations

import json
import os
import pathlib
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._scan_rules import RULES

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO

__all__ = ["FORMATS", "Report", "plural", "print_reports", "summary"]

FORMATS = ("text", "json", "github", "sarif")
_ERRORS = {"E902": "cannot read or write the file", "E999": "syntax error"}


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


def print_reports(
    reports: Sequence[Report], form: str, *, file: TextIO | None = None
) -> None:
    """Print ``reports`` in the format ``form`` (one of :data:`FORMATS`)."""
    if form == "json":
        print(json.dumps([report.as_json() for report in reports], indent=2), file=file)
    elif form == "sarif":
        print(json.dumps(_sarif(reports), indent=2), file=file)
    elif form == "github":
        for report in reports:
            print(_workflow_command(report), file=file)
    else:
        for report in reports:
            print(report, file=file)


def _workflow_command(report: Report) -> str:
    """``::error file=...,line=...,col=...,title=...::message``: the runner reads
    the properties to place the annotation, the message to show it."""
    properties = [f"file={_escape_property(report.path)}"]
    if report.line:  # an input that cannot be read has no position
        properties += [f"line={report.line}", f"col={report.column}"]
    properties.append(f"title={_escape_property(f'tether scan ({report.code})')}")
    return f"::error {','.join(properties)}::{_escape_data(str(report))}"


def _escape_data(text: str) -> str:
    # The runner's own escapes (actions/toolkit, command.ts).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _sarif(reports: Sequence[Report]) -> dict[str, object]:
    import tether

    rules = [
        {"id": code, "shortDescription": {"text": title}}
        for code, title in {**RULES, **_ERRORS}.items()
    ]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tether scan",
                        "version": tether.__version__,
                        "rules": rules,
                    }
                },
                "results": [_sarif_result(report) for report in reports],
            }
        ],
    }


def _sarif_result(report: Report) -> dict[str, object]:
    location: dict[str, object] = {"artifactLocation": {"uri": _uri(report.path)}}
    if report.line:  # SARIF lines start at 1; an unreadable input has none
        location["region"] = {
            "startLine": report.line,
            "startColumn": max(report.column, 1),
        }
    return {
        "ruleId": report.code,
        "level": "error" if report.is_error else "warning",
        "message": {"text": report.message},
        "locations": [{"physicalLocation": location}],
    }


def _uri(path: str) -> str:
    """A relative path stays relative (to the folder the scan ran in, which is the
    checkout in CI); an absolute one becomes a ``file:`` URI."""
    if os.path.isabs(path):
        return pathlib.Path(path).as_uri()
    return urllib.parse.quote(os.path.normpath(path).replace(os.sep, "/"))


def plural(count: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summary(reports: Sequence[Report], scanned: int, skipped: int = 0) -> str:
    """The line ``text`` mode prints on standard error after the reports."""
    findings = [report for report in reports if not report.is_error]
    errors = len(reports) - len(findings)
    files = len({report.path for report in findings})
    text = "No findings"
    if findings:
        text = f"{plural(len(findings), 'finding')} in {plural(files, 'file')}"
    text += f" ({plural(scanned, 'file')} scanned"
    text += f", {plural(skipped, 'symbolic link')} skipped)" if skipped else ")"
    if errors:
        text += f"; {plural(errors, 'input')} could not be scanned"
    return text
