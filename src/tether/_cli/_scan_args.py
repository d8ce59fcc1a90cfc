"""The command line of ``tether scan``: its options, and the settings they override."""

from __future__ import annotations

import argparse

from ._scan_output import FORMATS
from ._scan_rules import RULES
from ._scan_settings import Overrides, parse_codes, parse_registry

__all__ = ["add_arguments", "overrides"]

_EXIT = (
    "Exit status: 0 if nothing was found (with --fix: nothing is left), 1 if something "
    "was found or is left (with --diff: or would change), 2 if an input could not be "
    "scanned, a fix could not be written, or the settings are wrong."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``scan`` subcommand's arguments to ``parser``."""
    codes = ", ".join(f"{code} ({title})" for code, title in RULES.items())
    parser.epilog = (
        f"codes: {codes}. Settings come from [tool.tether.scan] in the nearest "
        f"pyproject.toml; the command line wins. {_EXIT}"
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a file (scanned whatever its name, even if excluded), or a folder to "
        "walk for *.py files, leaving out what is excluded or git-ignored",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text: one 'path:line:column: CODE message' line per finding (default); "
        "json: one array of objects with path, line, column, code and message; "
        "github: GitHub Actions annotations; sarif: SARIF 2.1.0 for code scanning",
    )
    for option, verb in (("--select", "report only"), ("--ignore", "do not report")):
        parser.add_argument(
            option,
            type=parse_codes,
            action="append",
            metavar="CODES",
            help=f"{verb} these comma-separated codes or prefixes (e.g. TET001,TET00)",
        )
    parser.add_argument(
        "--exclude",
        type=_patterns,
        action="append",
        metavar="PATTERNS",
        help="comma-separated .gitignore-style patterns to leave out, instead of "
        "the built-in list (hidden folders, virtual environments, build, dist...)",
    )
    parser.add_argument(
        "--extend-exclude",
        type=_patterns,
        action="append",
        default=[],
        metavar="PATTERNS",
        help="patterns to leave out as well as the others",
    )
    parser.add_argument(
        "--respect-gitignore",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="leave out what .gitignore files ignore (default: on)",
    )
    parser.add_argument(
        "--force-exclude",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply the excludes to files named on the command line too, as a "
        "pre-commit hook needs (default: off: a file named is always scanned)",
    )
    parser.add_argument(
        "--registry",
        type=parse_registry,
        metavar="EXPR",
        help="with --fix or --diff, rewrite to EXPR.spawn(...) instead of "
        "tether.spawn(...), e.g. --registry self._tasks",
    )
    show = parser.add_mutually_exclusive_group()
    show.add_argument(
        "--show-settings",
        action="store_true",
        help="print the settings in force for each path, and where they come from",
    )
    show.add_argument(
        "--show-files",
        action="store_true",
        help="print the files that would be scanned, and scan nothing",
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


def _patterns(text: str) -> list[str]:
    return [pattern.strip() for pattern in text.split(",") if pattern.strip()]


def overrides(args: argparse.Namespace) -> Overrides:
    def joined(groups: list[list[str]] | None) -> tuple[str, ...] | None:
        return None if groups is None else tuple(x for group in groups for x in group)

    return Overrides(
        select=joined(args.select),
        ignore=joined(args.ignore),
        exclude=joined(args.exclude),
        extend_exclude=joined(args.extend_exclude) or (),
        respect_gitignore=args.respect_gitignore,
        force_exclude=args.force_exclude,
        registry=args.registry,
    )
