"""Patterns in ``.gitignore`` syntax, for ``.gitignore`` files and ``exclude`` options.

The syntax is git's (``gitignore(5)``), matched here without git:

- a blank line or one starting with ``#`` is nothing; ``\\#`` and ``\\!`` start a
  pattern with that character; unescaped trailing spaces are dropped;
- ``!`` negates: a path that an earlier pattern excluded is included again. The last
  pattern that matches decides. A path inside an excluded folder stays excluded, as
  in git, because the walk never enters that folder;
- a trailing ``/`` matches folders only;
- a pattern with a ``/`` at its start or middle is relative to the folder of the file
  that holds it (its *base*); one without matches a name at any depth;
- ``*`` and ``?`` match within one path component, ``[...]`` is a character class
  (``[!...]`` negated; a pattern with an unclosed ``[`` matches nothing), ``\\``
  escapes; ``**/`` matches any folders (none included), ``/**`` everything inside,
  ``/**/`` zero or more folders.

:class:`GitIgnores` finds the files git reads for a folder: ``.git/info/exclude`` and
each ``.gitignore`` from the repository's top folder down.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["GitIgnores", "Patterns", "inside"]


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    folders_only: bool
    anchored: bool


@final
class Patterns:
    """Patterns in ``.gitignore`` syntax, relative to the folder ``base``."""

    __slots__ = ("_rules", "base", "sources")

    def __init__(self, lines: Iterable[str], base: str) -> None:
        self.sources = tuple(lines)
        self.base = os.path.abspath(base)
        self._rules = [rule for line in self.sources if (rule := _compile(line))]

    def __repr__(self) -> str:
        return f"Patterns({list(self.sources)!r}, base={self.base!r})"

    def match(self, path: str, *, is_dir: bool) -> bool | None:
        """Whether ``path`` (absolute) is excluded (True), included again by a ``!``
        pattern (False), or matched by no pattern (None).

        Outside ``base``, only the patterns without a ``/`` apply, to the last name.
        """
        relative = _relative(path, self.base)
        for rule in reversed(self._rules):
            if rule.folders_only and not is_dir:
                continue
            if relative is None:
                if rule.anchored:
                    continue
                subject = os.path.basename(path)
            else:
                subject = relative
            if rule.regex.fullmatch(subject):
                return not rule.negated
        return None


def inside(path: str, folder: str) -> bool:
    """Whether the absolute ``path`` is ``folder`` or lies under it (no symlinks
    resolved: resolve both first where that matters)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _relative(path: str, base: str) -> str | None:
    prefix = base.rstrip(os.sep) + os.sep
    if not path.startswith(prefix) or path == base:
        return None
    relative = path[len(prefix) :]
    return relative if os.sep == "/" else relative.replace(os.sep, "/")


def _compile(line: str) -> _Rule | None:
    line = line.rstrip("\r\n")
    # Trailing spaces go, unless the last one is escaped.
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")  # `\!` and `\#` are literals (see _component)
    if negated:
        line = line[1:]
    folders_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    parts = line.removeprefix("/").split("/")
    regex = "" if anchored else "(?:.*/)?"
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            if last:
                regex += ".*"  # after `dir/`: everything inside, not `dir` itself
            else:
                regex += "(?:.*/)?"
            continue
        regex += _component(part) + ("" if last else "/")
    return _Rule(re.compile(regex, re.DOTALL), negated, folders_only, anchored)


def _component(part: str) -> str:
    """One path component's glob as a regular expression."""
    out: list[str] = []
    at = 0
    while at < len(part):
        char = part[at]
        at += 1
        if char == "*":
            while at < len(part) and part[at] == "*":
                at += 1  # `a**b` is `a*b`: only a whole `**` component crosses folders
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and at < len(part):
            out.append(re.escape(part[at]))
            at += 1
        elif char == "[":
            at, klass = _char_class(part, at)
            # An unclosed `[` makes git's wildmatch give up: the pattern matches
            # nothing.
            out.append("(?!)" if klass is None else klass)
        else:
            out.append(re.escape(char))
    return "".join(out)


def _char_class(part: str, at: int) -> tuple[int, str | None]:
    """The class that starts after the ``[`` at ``at - 1``: where it ends and its
    regular expression, or None if it never closes."""
    negated = at < len(part) and part[at] in "!^"
    index = at + negated
    items: list[str] = []
    while index < len(part):
        char = part[index]
        if char == "]" and items:  # a `]` first in the class is one of its members
            body = "".join(items)
            return index + 1, f"[^/{body}]" if negated else f"[{body}]"
        if char == "\\" and index + 1 < len(part):
            index += 1
            char = part[index]
            items.append(char if char.isalnum() else "\\" + char)
        elif char in "\\[]^":
            items.append("\\" + char)
        else:
            items.append(char)  # `-` stays a range
        index += 1
    return at, None


@final
class GitIgnores:
    """The ``.gitignore`` patterns in force in each folder, read once per folder.

    In a git repository (the nearest folder above holding ``.git``), they are those
    of ``.git/info/exclude`` and of every ``.gitignore`` from the repository's top
    folder down; outside one, those of the ``.gitignore`` files from the folder that
    was given down. The global ``core.excludesFile`` is not read.
    """

    __slots__ = ("_chains", "_tops")

    def __init__(self) -> None:
        self._chains: dict[tuple[str, str], tuple[Patterns, ...]] = {}
        self._tops: dict[str, str | None] = {}

    def match(self, path: str, *, is_dir: bool, given: str) -> bool:
        """Whether ``path`` (absolute) is ignored by the patterns of its folder.

        ``given`` is the folder given on the command line that led to ``path``.
        """
        for patterns in reversed(self.chain(os.path.dirname(path), given)):
            found = patterns.match(path, is_dir=is_dir)
            if found is not None:
                return found
        return False

    def top(self, folder: str) -> str | None:
        """The top folder of the git repository holding ``folder``, if any."""
        if folder not in self._tops:
            parent = os.path.dirname(folder)
            if os.path.exists(os.path.join(folder, ".git")):
                self._tops[folder] = folder
            else:
                self._tops[folder] = None if parent == folder else self.top(parent)
        return self._tops[folder]

    def chain(self, folder: str, given: str) -> tuple[Patterns, ...]:
        """The pattern files in force in ``folder``, outermost first."""
        key = (folder, given)
        if key not in self._chains:
            top = self.top(folder) or given
            own = _read(os.path.join(folder, ".gitignore"), folder)
            if folder == top or not inside(folder, top):
                outer = _read(os.path.join(folder, ".git", "info", "exclude"), folder)
            else:
                outer = self.chain(os.path.dirname(folder), given)
            self._chains[key] = outer + own
        return self._chains[key]


def _read(path: str, base: str) -> tuple[Patterns, ...]:
    """The patterns of the file at ``path``, or none if it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return (Patterns(file.read().splitlines(), base),)
    except OSError:
        return ()
