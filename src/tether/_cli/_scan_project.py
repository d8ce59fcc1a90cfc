"""The scanned tree as one project: which module is which, and what each imports.

``TET003`` follows a returned task across modules. A call is resolved to a function of
the project through the caller's imports (``from .util import spawn``, ``import
pkg.util as u`` then ``u.spawn()``, a package's re-export) or, for a method, through
its name when exactly one function of the project has that name (``self._conn.
schedule()``). The functions that return tasks are found in rounds: first where a
task is made, then in the modules that name a function found in the round before
(a wrapper of a wrapper), as plain text: most modules are never analysed.
"""

from __future__ import annotations

import ast
import os
import warnings
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Container, Sequence

    from ._scan_returns import Returner
    from ._scan_rules import Checker, Finding

__all__ = ["ModuleInfo", "Project"]

_Function = ast.FunctionDef | ast.AsyncFunctionDef
_ROUNDS: Final = 4
# Followed through this many package re-exports.
_DEPTH: Final = 4


class ModuleInfo:
    """One module of the project: its name, its functions and its imports.

    A module's syntax tree is kept only if it was given one (it makes tasks); any
    other is parsed again the first time a rule asks about it, which few are.
    """

    def __init__(
        self, path: str, name: str, source: str, tree: ast.Module | None
    ) -> None:
        self.path, self.name, self.source = path, name, source
        self._tree = tree
        #: whether its text names a call that makes a task (it was given its tree)
        self.triggered = tree is not None
        self._functions: dict[str, _Function] | None = None
        # A name an import binds: (module, attribute), attribute None for a module.
        self._imports: dict[str, tuple[str, str | None]] = {}
        self._methods: list[_Function] = []

    @property
    def tree(self) -> ast.Module:
        if self._tree is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # it parsed once: these are the file's
                self._tree = ast.parse(self.source, self.path)
        return self._tree

    @property
    def functions(self) -> dict[str, _Function]:
        """The module's top-level functions, by name."""
        if self._functions is None:
            self._functions = {}
            self._read()
        return self._functions

    @property
    def imports(self) -> dict[str, tuple[str, str | None]]:
        """What each name the module imports at its top level stands for."""
        _ = self.functions
        return self._imports

    @property
    def methods(self) -> list[_Function]:
        """The methods of the module's top-level classes."""
        _ = self.functions
        return self._methods

    def _read(self) -> None:
        functions = self._functions = {}
        package = (
            self.name
            if self.path.endswith("__init__.py")
            else self.name.rpartition(".")[0]
        )
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions[stmt.name] = stmt
            elif isinstance(stmt, ast.ClassDef):
                self._methods += [
                    item
                    for item in stmt.body
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
            elif isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        self._imports[alias.asname] = (alias.name, None)
                    else:
                        root = alias.name.split(".")[0]
                        self._imports[root] = (root, None)
            elif isinstance(stmt, ast.ImportFrom):
                base = _absolute(stmt, package)
                for alias in stmt.names:
                    self._imports[alias.asname or alias.name] = (base, alias.name)


def _absolute(stmt: ast.ImportFrom, package: str) -> str:
    if not stmt.level:
        return stmt.module or ""
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (stmt.level - 1)] if stmt.level > 1 else parts
    return ".".join([*parts, *([stmt.module] if stmt.module else [])])


def module_name(path: str, packages: dict[str, bool]) -> str:
    """The dotted name of the module at ``path``, from the packages (folders with an
    ``__init__.py``) around it."""
    folder, file = os.path.split(os.path.abspath(path))
    parts = [] if file == "__init__.py" else [file.removesuffix(".py")]
    while True:
        if folder not in packages:
            packages[folder] = os.path.isfile(os.path.join(folder, "__init__.py"))
        if not packages[folder]:
            break
        folder, name = os.path.split(folder)
        parts.append(name)
    return ".".join(reversed(parts))


class Project:
    """Every scanned module, and the functions of any of them that return a task."""

    def __init__(self, modules: Sequence[tuple[str, str, ast.Module | None]]) -> None:
        """``modules``: the path, text and syntax tree of each module; the tree is
        None for a module whose text names none of the calls that make a task
        (``TRIGGERS``), parsed again only if a rule asks about it."""
        packages: dict[str, bool] = {}
        self.modules: dict[str, ModuleInfo] = {}
        self._by_name: dict[str, ModuleInfo] = {}
        for path, source, tree in modules:
            info = ModuleInfo(path, module_name(path, packages), source, tree)
            self.modules[path] = info
            self._by_name.setdefault(info.name, info)
        # The module of a method name that one `def` alone of the project has.
        self._unique: dict[str, str | None] = {}
        self._checkers: dict[str, Checker] = {}
        self.returners: dict[ast.AST, Returner] | None = None
        self._names: set[str] = set()

    def checker(self, path: str) -> Checker:
        if path not in self._checkers:
            from ._scan_rules import Checker

            self._checkers[path] = Checker(self.modules[path].tree, self, path)
        return self._checkers[path]

    def findings(self, path: str) -> list[Finding]:
        """The findings in the module at ``path``."""
        returners = self._find_returners()
        info = self.modules[path]
        # A module that makes no task may only drop one a function returns.
        if not info.triggered and not any(name in info.source for name in self._names):
            return []
        return self.checker(path).run(returners)

    def recheck(self, path: str, source: str, tree: ast.Module) -> list[Finding]:
        """The findings in a new text of the module at ``path`` (after ``--fix``)."""
        from ._scan_rules import Checker

        returners = self._find_returners()
        info = self.modules[path]
        self.modules[path] = ModuleInfo(path, info.name, source, tree)
        self._checkers.pop(path, None)
        return Checker(tree, self, path).run(returners)

    def _find_returners(self) -> dict[ast.AST, Returner]:
        if self.returners is not None:
            return self.returners
        known: dict[ast.AST, Returner] = {}
        pending = [path for path, info in self.modules.items() if info.triggered]
        for _ in range(_ROUNDS):
            new: dict[ast.AST, Returner] = {}
            for path in pending:
                found = self.checker(path).returners(known)
                new.update((f, r) for f, r in found.items() if f not in known)
            if not new:
                break
            known.update(new)
            names = {returner.function.name for returner in new.values()}
            pending = [
                path
                for path, info in self.modules.items()
                if any(name in info.source for name in names)
            ]
        self.returners = known
        self._names = {returner.function.name for returner in known.values()}
        return known

    # Resolving a call

    def resolve(
        self, path: str, func: ast.expr, methods: Container[str] | None = None
    ) -> _Function | None:
        """The function of the project that ``func``, called in the module at
        ``path``, names, if it is known; a method by its name alone only if it is
        one of ``methods`` (None: any)."""
        info = self.modules.get(path)
        if info is None:
            return None
        if isinstance(func, ast.Name):
            imported = info.imports.get(func.id)
            return None if imported is None else self._imported(*imported, _DEPTH)
        if not isinstance(func, ast.Attribute):
            return None
        module = self._module_of(info, func.value)
        if module is not None:
            return self._imported(module.name, func.attr, _DEPTH)
        if methods is not None and func.attr not in methods:
            return None
        holder = self._unique_holder(func.attr)
        if holder is None:
            return None
        defined = self.modules[holder].methods
        return next((m for m in defined if m.name == func.attr), None)

    def _unique_holder(self, name: str) -> str | None:
        """The module of the only ``def name(`` of the project, if there is one.

        Every ``def`` at any depth counts, found as text: a name counted too often
        is only left unresolved.
        """
        if name not in self._unique:
            self._unique[name] = None
            if not name.startswith("__"):
                text = f"def {name}("
                holders = [
                    (path, info.source.count(text))
                    for path, info in self.modules.items()
                    if text in info.source
                ]
                if len(holders) == 1 and holders[0][1] == 1:
                    self._unique[name] = holders[0][0]
        return self._unique[name]

    def _module_of(self, info: ModuleInfo, expr: ast.expr) -> ModuleInfo | None:
        """The module of the project that ``expr`` names there, if any."""
        if isinstance(expr, ast.Name):
            imported = info.imports.get(expr.id)
            if imported is None:
                return None
            module, attribute = imported
            return self._by_name.get(
                module if attribute is None else f"{module}.{attribute}"
            )
        if isinstance(expr, ast.Attribute):
            outer = self._module_of(info, expr.value)
            return (
                None
                if outer is None
                else self._by_name.get(f"{outer.name}.{expr.attr}")
            )
        return None

    def _imported(
        self, module: str, attribute: str | None, depth: int
    ) -> _Function | None:
        info = self._by_name.get(module)
        if info is None or attribute is None or depth == 0:
            return None
        if attribute in info.functions:
            return info.functions[attribute]
        again = info.imports.get(attribute)  # a package's re-export
        return None if again is None else self._imported(*again, depth - 1)
