"""Which files ``tether scan`` reads: the walk of the paths given.

- A folder is walked for ``*.py`` files, skipping what its settings exclude (the
  built-in list, ``exclude``, ``extend-exclude``) and, unless ``respect-gitignore`` is
  off, what ``.gitignore`` files ignore (:mod:`._scan_ignore`).
- A symbolic link met in a folder (or a Windows junction) is never followed, to a
  file or to a folder, whether it points inside the tree or out of it: it is skipped
  and said, so a fix never writes outside the paths given.
- A path given by name is read whatever its suffix and wherever it is, even if it is
  a symbolic link (its target is read, and ``--fix`` never writes through it: see
  :mod:`._scan_write`); with ``force-exclude``, the excludes apply to it as well,
  which is what a pre-commit hook that names every changed file needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from ._scan_ignore import GitIgnores, inside
from ._scan_output import Report

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._scan_settings import Resolver, Settings

__all__ = ["Finder", "Skipped", "Target", "io_error"]


@dataclass(frozen=True)
class Target:
    """A file to scan, with the path given that led to it, and its settings."""

    path: str
    given: str
    settings: Settings


@dataclass(frozen=True)
class Skipped:
    """A symbolic link the walk did not follow, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.path}: {self.reason}"


@final
class Finder:
    """Finds the files to scan under the paths given, with the settings of each."""

    __slots__ = ("_gitignores", "_seen", "items", "resolver", "skipped")

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._gitignores = GitIgnores()
        self._seen: set[str] = set()
        self.items: list[Target | Report] = []
        self.skipped: list[Skipped] = []

    def find(self, paths: Iterable[str]) -> list[Target | Report]:
        """The files to scan, each once, and a report for each unreadable folder.

        Raises:
            ConfigError: a ``[tool.tether.scan]`` on the way cannot be used.
        """
        for given in paths:
            absolute = os.path.abspath(given)
            is_dir = os.path.isdir(given)
            parent = self.resolver.settings_for(os.path.dirname(absolute))
            if parent.force_exclude and self._excluded_by_name(absolute, is_dir):
                continue
            if is_dir:
                self._walk(given, absolute)
            else:
                self._add(Target(given, given, parent))
        return self.items

    def _add(self, target: Target) -> None:
        key = os.path.normpath(target.path)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(target)

    def _walk(self, given: str, top: str) -> None:
        errors: list[OSError] = []
        for folder, folders, files in os.walk(given, onerror=errors.append):
            absolute = os.path.normpath(
                os.path.join(top, os.path.relpath(folder, given))
            )
            settings = self.resolver.settings_for(absolute)
            kept: list[str] = []
            for name in sorted(folders):
                path = os.path.join(folder, name)
                if self._excluded(os.path.join(absolute, name), True, settings, top):
                    continue
                if _is_link(path):
                    self.skipped.append(
                        Skipped(os.path.normpath(path), _why(path, top))
                    )
                else:
                    kept.append(name)
            folders[:] = kept
            for name in sorted(files):
                path = os.path.normpath(os.path.join(folder, name))
                if not name.endswith(".py") or self._excluded(
                    os.path.join(absolute, name), False, settings, top
                ):
                    continue
                if _is_link(path):
                    self.skipped.append(Skipped(path, _why(path, top)))
                else:
                    self._add(Target(path, given, settings))
            for error in errors:
                self.items.append(io_error(str(error.filename or given), error))
            errors.clear()

    def _excluded(self, path: str, is_dir: bool, settings: Settings, top: str) -> bool:
        return settings.excludes(path, is_dir=is_dir) or (
            settings.respect_gitignore
            and self._gitignores.match(path, is_dir=is_dir, given=top)
        )

    def _excluded_by_name(self, path: str, is_dir: bool) -> bool:
        """Whether the walk would have left out ``path``: it, or a folder above it
        below the project's top (the git repository's, else the current folder, if
        it is inside it), is excluded."""
        parent = os.path.dirname(path)
        cwd = os.getcwd()
        stop = self._gitignores.top(parent) or (cwd if inside(path, cwd) else parent)
        chain: list[str] = []
        while path != stop and inside(path, stop):
            chain.append(path)
            path = os.path.dirname(path)
        for index, each in enumerate(reversed(chain)):
            folder = is_dir or index < len(chain) - 1
            settings = self.resolver.settings_for(os.path.dirname(each))
            if self._excluded(each, folder, settings, stop):
                return True
        return False


def _is_link(path: str) -> bool:
    # A Windows junction used as a link is a link to os.path.islink since Python 3.8
    # (bpo-31226); os.path.isjunction (3.12) also sees the other junctions.
    isjunction = getattr(os.path, "isjunction", None)
    return os.path.islink(path) or bool(isjunction and isjunction(path))


def _why(path: str, top: str) -> str:
    try:
        target = os.readlink(path)
    except OSError:  # pragma: no cover - a junction on Python < 3.12
        target = "?"
    resolved = os.path.realpath(path)
    if not os.path.exists(resolved):
        where = "which does not exist"
    elif inside(resolved, os.path.realpath(top)):
        where = "inside the folder given"
    else:
        where = "outside the folder given"
    return (
        f"a symbolic link (to {target}, {where}); links inside a folder are not "
        "followed: name the target to scan it"
    )


def io_error(path: str, exc: OSError) -> Report:
    """The ``E902`` report of a path that cannot be read."""
    return Report(path, 0, 0, "E902", exc.strerror or str(exc))
