"""How ``tether scan`` follows a call to the function it runs, and finds the functions
that return a task (for ``TET003``), in one module and, with a
:class:`._scan_project.Project`, across the scanned tree.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Protocol

from ._scan_index import FUNCTIONS, Index, callee_name, walk_scope
from ._scan_returns import Guard, Returner, guards_of, surely_ends

if TYPE_CHECKING:
    from collections.abc import Container

__all__ = ["Follow", "Resolver"]

_Function = ast.FunctionDef | ast.AsyncFunctionDef


class Resolver(Protocol):
    """What following a call needs of :class:`._scan_project.Project` (named by
    its shape, since the project imports the rules, which build on this)."""

    def resolve(
        self, path: str, func: ast.expr, methods: Container[str] | None = None, /
    ) -> _Function | None: ...


class Follow:
    """A module's index, and what its calls call; the base of the rules' checker."""

    def __init__(
        self,
        tree: ast.Module,
        project: Resolver | None = None,
        path: str | None = None,
    ) -> None:
        self._index = index = Index(tree)
        self._parents = index.parents
        self._module = tree
        self._project = project
        self._path = path
        # The functions of the module and the methods of each class, by name.
        self._defs: dict[
            ast.AST, dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
        ] = {}
        for node in index.functions:
            self._defs.setdefault(self._parents[node], {})[node.name] = node

    def _adds_callback(self, node: ast.AST) -> bool:
        """Whether ``node`` is ``X.add_done_callback`` in a statement of its own."""
        call = self._parents.get(node)
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "add_done_callback"
            and isinstance(call, ast.Call)
            and call.func is node
            and isinstance(self._parents.get(call), ast.Expr)
        )

    def _target(
        self, call: ast.Call, methods: Container[str] | None = None
    ) -> _Function | None:
        """The function of the project ``call`` calls: ``f()`` for a module-level
        ``def f``, ``self.m()`` or ``cls.m()`` in the class that defines ``m``; then,
        with a project, through imports and method names unique in it (only
        ``methods``, if given: the search costs)."""
        func = call.func
        if isinstance(func, ast.Name):
            found = self._defs.get(self._module, {}).get(func.id)
            if found is None and self._project is not None and self._path is not None:
                found = self._project.resolve(self._path, func, methods)
            # A parameter or local of that name is another function.
            return None if self._index.local_binding(func.id, func) else found
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in ("self", "cls")
        ):
            owner = self._index.scope_of(call)
            while isinstance(owner, FUNCTIONS):
                owner = self._index.scope_of(owner)
            method = self._defs.get(owner, {}).get(func.attr) if owner else None
            if method is not None:
                return method
        if self._project is None or self._path is None:
            return None
        found = self._project.resolve(self._path, func, methods)
        if (
            found is not None
            and isinstance(func, ast.Attribute)
            and self._index.is_task_group(func.value)
        ):
            return None  # `tg.create_task(...)` is the task group's
        return found

    def returners(self, known: dict[ast.AST, Returner]) -> dict[ast.AST, Returner]:
        """The functions of this module that return a task they make, or that a
        function of ``known`` (or of this module) returns to them."""
        found: dict[ast.AST, Returner] = {}
        names = {returner.function.name for returner in known.values()}
        names |= {function.name for function in self._index.functions}
        methods = {returner.function.name for returner in known.values()}
        targets = {
            call: self._target(call, methods)
            for call in self._index.calls
            if callee_name(call.func) in names
        }
        while True:
            # Only a function that makes a task, or gets one, can return it.
            makers = {
                self._index.scope_of(call)
                for call in self._index.calls
                if self._index.creates_task(call)
                or targets.get(call) in known
                or targets.get(call) in found
            }
            new: dict[ast.AST, Returner] = {
                function: returner
                for function in makers
                if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                and function not in found
                and (returner := self._returned_task(function, {**known, **found}))
            }
            if not new:
                return found
            found.update(new)

    def _returned_task(
        self, function: _Function, known: dict[ast.AST, Returner]
    ) -> Returner | None:
        nodes = list(walk_scope(function))
        returns = [n for n in nodes if isinstance(n, ast.Return)]
        if not returns or any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in nodes):
            return None
        made: tuple[ast.Call, str | None, str] | None = None
        others: list[Guard] = [] if surely_ends(function.body) else [()]
        for node in returns:
            value = node.value
            if isinstance(value, ast.Name):
                # A use that keeps the task counts as a return that gives none.
                value, keeps = self._only_returned(value.id, nodes, function)
                others += keeps
            task = self._task_of(value, known)
            if task is None:
                others.append(guards_of(node, function, self._parents))
            else:
                made = made or task
        if made is None or () in others:
            return None
        return Returner(function, *made, guards=tuple(others))

    def _task_of(
        self, value: ast.expr | None, known: dict[ast.AST, Returner]
    ) -> tuple[ast.Call, str | None, str] | None:
        """The call that makes the task ``value`` gives, the path of its module and
        the function it is in, if ``value`` surely gives a new task."""
        if not isinstance(value, ast.Call):
            return None
        if self._index.creates_task(value):
            scope = self._index.scope_of(value)
            return value, self._path, getattr(scope, "name", "<lambda>")
        target = self._target(value, {r.function.name for r in known.values()})
        returner = known.get(target) if target is not None else None
        if returner is None or not returner.returns_task(value):
            return None
        return returner.made, returner.path, returner.maker

    def _only_returned(
        self, name: str, nodes: list[ast.AST], function: ast.AST
    ) -> tuple[ast.expr | None, list[Guard]]:
        """The value of the local ``name`` if it is bound once, and the ``if`` tests
        around each use that may keep it (other than returning it or adding a done
        callback): ``if self.running: self._tasks.add(task)``."""
        value = None
        keeps: list[Guard] = []
        for node in nodes:
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            parent = self._parents[node]
            if isinstance(node.ctx, ast.Store):
                if value is not None or not isinstance(parent, ast.Assign):
                    return None, []
                value = parent.value
            elif not (isinstance(parent, ast.Return) or self._adds_callback(parent)):
                keeps.append(guards_of(node, function, self._parents))
        return value, keeps
