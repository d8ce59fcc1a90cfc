"""The settings of ``tether scan``: ``[tool.tether.scan]`` and the command line.

Each file is scanned with the settings of the nearest ``pyproject.toml`` above it that
has a ``[tool.tether.scan]`` table (as ruff finds its configuration); a nearer table
replaces a farther one, they are not merged. An option given on the command line
replaces the same key of every table, except ``--extend-exclude``, which adds to them.
Patterns in a table are relative to its file's folder; those of the command line, to
the current folder.

Python 3.10 reads TOML with ``tomli`` (the ``scan`` extra); without it, a
``pyproject.toml`` that may configure tether is an error that names the extra.
"""

from __future__ import annotations

import argparse
import keyword
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast, final

from ._scan_ignore import Patterns
from ._scan_rules import RULES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import BinaryIO

__all__ = [
    "DEFAULT_EXCLUDE",
    "ConfigError",
    "Overrides",
    "Resolver",
    "Settings",
    "parse_codes",
    "parse_registry",
    "shown",
]

#: What a linter should not read: hidden folders, caches, builds, virtual
#: environments and installed packages. Any folder holding a ``pyvenv.cfg`` is a
#: virtual environment too, whatever its name.
DEFAULT_EXCLUDE = (
    ".*/",
    "__pycache__",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "dist-packages",
    "node_modules",
    "site-packages",
    "venv",
)
_KEYS = (
    "select",
    "ignore",
    "exclude",
    "extend-exclude",
    "per-file-ignores",
    "respect-gitignore",
    "force-exclude",
    "registry",
)


class ConfigError(Exception):
    """A ``[tool.tether.scan]`` table that cannot be used; the message says why."""


@dataclass(frozen=True)
class Overrides:
    """What the command line sets; None where it is silent."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    force_exclude: bool | None = None
    registry: str | None = None


@dataclass(frozen=True)
class Settings:
    """The settings one file is scanned with."""

    #: the ``pyproject.toml`` they come from, or None for the defaults
    config: str | None
    select: tuple[str, ...]
    ignore: tuple[str, ...]
    exclude: Patterns
    extend_exclude: tuple[Patterns, ...]
    per_file_ignores: tuple[tuple[Patterns, tuple[str, ...]], ...]
    respect_gitignore: bool
    force_exclude: bool
    #: the ``--fix`` target: ``EXPR.spawn(...)`` instead of ``tether.spawn(...)``
    registry: str | None
    _codes: dict[str, frozenset[str]] = field(
        default_factory=dict[str, frozenset[str]], compare=False, repr=False
    )

    def codes(self, path: str) -> frozenset[str]:
        """The codes reported in the file at ``path``."""
        ignored = list(self.ignore)
        absolute = os.path.abspath(path)
        for patterns, codes in self.per_file_ignores:
            if patterns.match(absolute, is_dir=False):
                ignored += codes
        key = ",".join(ignored)
        if key not in self._codes:
            self._codes[key] = _enabled(self.select, ignored)
        return self._codes[key]

    def selected(self) -> frozenset[str]:
        """The codes reported in files that no ``per-file-ignores`` pattern names."""
        return _enabled(self.select, self.ignore)

    def excludes(self, path: str, *, is_dir: bool) -> bool:
        """Whether the ``exclude`` and ``extend-exclude`` patterns exclude ``path``
        (absolute); a folder holding a ``pyvenv.cfg`` is excluded by default."""
        for patterns in (self.exclude, *self.extend_exclude):
            found = patterns.match(path, is_dir=is_dir)
            if found is not None:
                return found
        return (
            is_dir
            and self.exclude.sources == DEFAULT_EXCLUDE
            and os.path.isfile(os.path.join(path, "pyvenv.cfg"))
        )

    def show(self) -> list[str]:
        """The settings as ``[tool.tether.scan]`` lines, for ``--show-settings``."""

        def strings(items: Sequence[str]) -> str:
            return "[" + ", ".join(_quote(item) for item in items) + "]"

        per_file = ", ".join(
            f"{_quote(p.sources[0])} = {strings(codes)}"
            for p, codes in self.per_file_ignores
        )
        extend = [source for p in self.extend_exclude for source in p.sources]
        registry = (
            f"registry = {_quote(self.registry)}"
            if self.registry
            else "# registry: not set, so --fix writes tether.spawn(...)"
        )
        return [
            f"select = {strings(self.select)}",
            f"ignore = {strings(self.ignore)}",
            f"exclude = {strings(self.exclude.sources)}",
            f"extend-exclude = {strings(extend)}",
            f"per-file-ignores = {{{per_file}}}",
            f"respect-gitignore = {str(self.respect_gitignore).lower()}",
            f"force-exclude = {str(self.force_exclude).lower()}",
            registry,
        ]


@final
class Resolver:
    """The settings of each folder, each ``pyproject.toml`` read once."""

    __slots__ = ("_cache", "_cwd", "overrides")

    def __init__(self, overrides: Overrides, cwd: str | None = None) -> None:
        self.overrides = overrides
        self._cwd = os.path.abspath(cwd or os.getcwd())
        self._cache: dict[str, Settings] = {}

    def settings_for(self, folder: str) -> Settings:
        """The settings of the files in ``folder`` (absolute).

        Raises:
            ConfigError: the nearest table cannot be used.
        """
        if folder not in self._cache:
            path = os.path.join(folder, "pyproject.toml")
            table = _read_table(path) if os.path.isfile(path) else None
            if table is not None:
                settings = self._settings(table, path)
            elif os.path.dirname(folder) == folder:
                settings = self._settings({}, None)
            else:
                settings = self.settings_for(os.path.dirname(folder))
            self._cache[folder] = settings
        return self._cache[folder]

    def _settings(self, table: dict[str, object], path: str | None) -> Settings:
        wrong = [key for key in table if key not in _KEYS]
        if wrong:
            raise ConfigError(
                f"{shown(path)}: [tool.tether.scan] has no option {wrong[0]!r}; "
                f"the options are {', '.join(_KEYS)}"
            )
        # Every key is checked, even one the command line replaces.
        check = _Checker(shown(path))
        base = os.path.dirname(path) if path else self._cwd
        select = check.codes(table, "select", ("TET",))
        ignore = check.codes(table, "ignore", ())
        exclude = Patterns(check.strings(table, "exclude", DEFAULT_EXCLUDE), base)
        extend = [Patterns(check.strings(table, "extend-exclude", ()), base)]
        per_file_ignores = check.per_file_ignores(table, base)
        respect_gitignore = check.flag(table, "respect-gitignore", True)
        force_exclude = check.flag(table, "force-exclude", False)
        registry = check.registry(table)
        given = self.overrides
        if given.exclude is not None:
            exclude = Patterns(given.exclude, self._cwd)
        if given.extend_exclude:
            extend.append(Patterns(given.extend_exclude, self._cwd))
        return Settings(
            config=path,
            select=select if given.select is None else given.select,
            ignore=ignore if given.ignore is None else given.ignore,
            exclude=exclude,
            extend_exclude=tuple(p for p in extend if p.sources),
            per_file_ignores=per_file_ignores,
            respect_gitignore=_first(given.respect_gitignore, respect_gitignore),
            force_exclude=_first(given.force_exclude, force_exclude),
            registry=given.registry or registry,
        )


def _first(given: bool | None, configured: bool) -> bool:
    return configured if given is None else given


@dataclass(frozen=True)
class _Checker:
    """Reads each key of a table, refusing a value of the wrong shape."""

    where: str

    def _fail(self, key: str, expected: str, value: object) -> ConfigError:
        return ConfigError(
            f"{self.where}: [tool.tether.scan] {key} must be {expected}; got {value!r}"
        )

    def _said(self, key: str, exc: Exception) -> ConfigError:
        return ConfigError(f"{self.where}: [tool.tether.scan] {key}: {exc}")

    def strings(
        self, table: dict[str, object], key: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = table.get(key, default)
        strings = _strings(value)
        if strings is None:
            raise self._fail(key, f'a list of strings, like {key} = ["build"]', value)
        return strings

    def codes(
        self, table: dict[str, object], key: str, default: tuple[str, ...]
    ) -> tuple[str, ...]:
        return self._codes(key, table[key]) if key in table else default

    def _codes(self, key: str, value: object) -> tuple[str, ...]:
        items = _strings(value)
        if items is None:
            raise self._fail(key, f'a list of codes, like {key} = ["TET001"]', value)
        codes: list[str] = []
        for item in items:
            try:
                codes += parse_codes(item)
            except argparse.ArgumentTypeError as exc:
                raise self._said(key, exc) from None
        return tuple(codes)

    def flag(self, table: dict[str, object], key: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def registry(self, table: dict[str, object]) -> str | None:
        value = table.get("registry")
        if value is None:
            return None
        if not isinstance(value, str):
            expected = 'a name or a dotted name, like "self._tasks"'
            raise self._fail("registry", expected, value)
        try:
            return parse_registry(value)
        except argparse.ArgumentTypeError as exc:
            raise self._said("registry", exc) from None

    def per_file_ignores(
        self, table: dict[str, object], base: str
    ) -> tuple[tuple[Patterns, tuple[str, ...]], ...]:
        value = table.get("per-file-ignores", {})
        example = 'a table of patterns and codes, like {"tests/*" = ["TET002"]}'
        if not isinstance(value, dict):
            raise self._fail("per-file-ignores", example, value)
        # The keys of a TOML table are strings.
        patterns = cast("dict[str, object]", value)
        return tuple(
            (
                Patterns([pattern], base),
                self._codes(f"per-file-ignores {pattern!r}", codes),
            )
            for pattern, codes in patterns.items()
        )


def _strings(value: object) -> tuple[str, ...] | None:
    """``value`` if it is a list of strings, else None."""
    if not isinstance(value, (list, tuple)):
        return None
    items = cast("list[object]", value)  # a TOML array; each item is checked next
    strings = [item for item in items if isinstance(item, str)]
    return tuple(strings) if len(strings) == len(items) else None


def parse_codes(text: str) -> list[str]:
    """Split comma-separated codes, refusing those that match no rule."""
    codes = [code.strip().upper() for code in text.split(",") if code.strip()]
    for code in codes:
        if not any(rule.startswith(code) for rule in RULES):
            known = ", ".join(RULES)
            message = f"unknown code {code!r}: the codes are {known}"
            raise argparse.ArgumentTypeError(message)
    return codes


def parse_registry(text: str) -> str:
    """Check that ``text`` names a registry (a name or a dotted name), for
    ``--fix`` to write ``EXPR.spawn(...)``."""
    name = text.strip()
    parts = name.split(".")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in parts):
        message = (
            f"{text!r} is not a name or a dotted name: give the registry as the "
            "fixed code should name it, such as self._tasks or app_registry"
        )
        raise argparse.ArgumentTypeError(message)
    return name


def _enabled(select: Sequence[str], ignore: Sequence[str]) -> frozenset[str]:
    return frozenset(
        rule
        for rule in RULES
        if any(rule.startswith(code) for code in select)
        and not any(rule.startswith(code) for code in ignore)
    )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shown(path: str | None) -> str:
    """``path`` relative to the current folder if it is below it, for messages."""
    if path is None:
        return "the command line"
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _toml_reader() -> Callable[[BinaryIO], dict[str, Any]] | None:
    """``tomllib.load``, or ``tomli``'s on Python 3.10, or None without it."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.load
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli
        except ImportError:
            return None
        return tomli.load


def _read_table(path: str) -> dict[str, object] | None:
    """The ``[tool.tether.scan]`` table of the file at ``path``, if it has one."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"{shown(path)}: {exc.strerror or exc}") from None
    if b"tether" not in data:  # no table here: no need to parse it (or a parser)
        return None
    load = _toml_reader()
    if load is None:
        raise ConfigError(
            f"{shown(path)} may configure tether scan, and reading TOML on Python "
            "3.10 needs tomli: pip install 'tether[scan]' (or pip install tomli)"
        )
    import io

    try:
        document = load(io.BytesIO(data))
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise ConfigError(f"{shown(path)}: not valid TOML: {exc}") from None
    table: object = document
    for key in ("tool", "tether", "scan"):
        if not isinstance(table, dict) or key not in table:
            return None
        table = table[key]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(table, dict):
        raise ConfigError(f"{shown(path)}: [tool.tether.scan] must be a table")
    return table  # pyright: ignore[reportUnknownVariableType]
