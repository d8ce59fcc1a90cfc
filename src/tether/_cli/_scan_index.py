"""What the names of one module mean to ``tether scan``, read once with :mod:`ast`.

Without types, asyncio is known by the module's imports (any alias), and an event loop
by what made it (``get_running_loop()`` and friends), by its annotation
(``AbstractEventLoop``) or by its name (``loop``, ``_loop``). A name bound by
``async with ... as tg`` or annotated ``TaskGroup`` is a task group, whose
``create_task`` keeps its tasks: it is never taken for a loop.
"""

from __future__ import annotations

import ast
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "FUNCTIONS",
    "Index",
    "callee_name",
    "span",
    "suspends",
    "targets",
    "walk_scope",
]

_SPAWNERS = frozenset({"create_task", "ensure_future"})
_LOOP_GETTERS = frozenset({"get_running_loop", "get_event_loop", "new_event_loop"})
_LOOP_NAMES = frozenset({"loop", "_loop"})
_ASYNCIO = frozenset({"asyncio", "asyncio.tasks", "asyncio.events"})
FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*FUNCTIONS, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SUSPENDING = (ast.Await, ast.AsyncFor, ast.AsyncWith, ast.Yield, ast.YieldFrom)
# What a name is bound to, ranked: one task-group binding outweighs any loop binding.
_OTHER, _LOOP, _TASK_GROUP = 0, 1, 2
_END: Final = (sys.maxsize, 0)
# Shared leaves no rule asks the parent of: `Load()`, `Add()`, `Eq()`...
_LEAVES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

_Binding = ast.Assign | ast.AnnAssign | ast.NamedExpr


def walk_scope(root: ast.AST) -> Iterator[ast.AST]:
    """Yield the nodes under ``root`` that run with it: not inside nested defs."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def suspends(node: ast.AST) -> bool:
    """Whether running ``node`` may let other tasks run: an await, or a yield."""
    return any(
        isinstance(child, _SUSPENDING)
        or (isinstance(child, ast.comprehension) and child.is_async)
        for child in (node, *walk_scope(node))
    )


def span(node: ast.expr | ast.stmt) -> tuple[tuple[int, int], tuple[int, int]]:
    end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
    return (node.lineno, node.col_offset), end


def targets(node: _Binding) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _annotation_kind(annotation: ast.expr | None) -> int:
    # Unparsing also covers string annotations, Optional[...] and `X | None`.
    text = "" if annotation is None else ast.unparse(annotation)
    if "TaskGroup" in text:
        return _TASK_GROUP
    return _LOOP if "AbstractEventLoop" in text or "BaseEventLoop" in text else _OTHER


class Index:
    """The parents and calls of a module, its asyncio imports and its loops."""

    def __init__(self, tree: ast.Module) -> None:
        self.parents: dict[ast.AST, ast.AST] = {}
        self.calls: list[ast.Call] = []
        # A bare `asyncio` always counts, imported or not: a false alarm costs a noqa.
        self._asyncio = {"asyncio"}
        self._members: dict[str, str] = {}
        self._loop_attributes = set(_LOOP_NAMES)
        self._kinds: dict[ast.AST, dict[str, int]] = {}
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        assignments: list[ast.Assign | ast.AnnAssign] = []
        parents = self.parents
        stack: list[ast.AST] = [tree]
        while stack:
            # ast.iter_child_nodes, inlined: this loop is most of a scan's time.
            node = stack.pop()
            for field in node._fields:
                value = getattr(node, field, None)
                if type(value) is list:
                    for item in value:  # pyright: ignore[reportUnknownVariableType]
                        if isinstance(item, ast.AST):
                            parents[item] = node
                            stack.append(item)
                elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
                    parents[value] = node
                    stack.append(value)
            if isinstance(node, ast.Call):
                self.calls.append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                assignments.append(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions.append(node)
            elif isinstance(node, ast.Import):
                # `import asyncio.tasks` binds `asyncio`, which is already known.
                self._asyncio.update(
                    alias.asname
                    for alias in node.names
                    if alias.name in _ASYNCIO and alias.asname
                )
            elif isinstance(node, ast.ImportFrom) and node.module in _ASYNCIO:
                for alias in node.names:
                    self._members[alias.asname or alias.name] = alias.name
        # Attributes holding a loop: `self._ev = asyncio.new_event_loop()`, or a
        # class-level `_ev: AbstractEventLoop`. This needs every import read first.
        for node in assignments:
            in_class = isinstance(self.parents.get(node), ast.ClassDef)
            for target in targets(node) if self._value_kind(node) == _LOOP else ():
                if isinstance(target, ast.Attribute):
                    self._loop_attributes.add(target.attr)
                elif isinstance(target, ast.Name) and in_class:
                    self._loop_attributes.add(target.id)

    def asyncio_member(self, expr: ast.expr) -> str | None:
        """The asyncio attribute ``expr`` names (``"create_task"``), if any."""
        if isinstance(expr, ast.Name):
            return self._members.get(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = expr.value
            if isinstance(owner, ast.Attribute) and owner.attr in ("tasks", "events"):
                owner = owner.value
            if isinstance(owner, ast.Name) and owner.id in self._asyncio:
                return expr.attr
        return None

    def _is_loop_getter(self, expr: ast.expr | None, getters: frozenset[str]) -> bool:
        return isinstance(expr, ast.Call) and self.asyncio_member(expr.func) in getters

    def _value_kind(self, node: _Binding) -> int:
        annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
        kind = _annotation_kind(annotation)
        if kind == _OTHER and self._is_loop_getter(node.value, _LOOP_GETTERS):
            return _LOOP
        return kind

    def is_task_factory(self, func: ast.expr) -> bool:
        if self.asyncio_member(func) in _SPAWNERS:
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "create_task"
            and self._is_loop(func.value)
        )

    def creates_task(self, expr: ast.expr | None) -> bool:
        return isinstance(expr, ast.Call) and self.is_task_factory(expr.func)

    def is_running_loop(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is surely the running loop of this thread:
        ``get_running_loop()``, or a local bound to nothing else."""
        running = frozenset({"get_running_loop"})
        if not isinstance(expr, ast.Name):
            return self._is_loop_getter(expr, running)
        scope = self.scope_of(expr)
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) or any(
            arg.arg == expr.id
            for arg in ast.walk(scope.args)
            if isinstance(arg, ast.arg)
        ):
            return False
        stores = [
            node
            for node in walk_scope(scope)
            if isinstance(node, ast.Name)
            and node.id == expr.id
            and isinstance(node.ctx, ast.Store)
        ]
        return bool(stores) and all(
            isinstance(assign := self.parents.get(store), ast.Assign)
            and assign.targets == [store]
            and self._is_loop_getter(assign.value, running)
            for store in stores
        )

    def scope_of(self, node: ast.AST) -> ast.AST | None:
        """The function, class or module ``node`` runs in."""
        scope = self.parents.get(node)
        while scope is not None and not isinstance(scope, (*_SCOPES, ast.Module)):
            scope = self.parents.get(scope)
        return scope

    def _is_loop(self, expr: ast.expr) -> bool:
        if isinstance(expr, ast.Call):
            return self._is_loop_getter(expr, _LOOP_GETTERS)
        if isinstance(expr, ast.Attribute):
            return expr.attr in self._loop_attributes
        if not isinstance(expr, ast.Name):
            return False
        kind = None
        node: ast.AST = expr
        while kind is None and node in self.parents:
            # The innermost scope that binds the name says what it is.
            node = self.parents[node]
            if isinstance(node, (*FUNCTIONS, ast.Module)):
                if node not in self._kinds:
                    self._kinds[node] = self._scope_kinds(node)
                kind = self._kinds[node].get(expr.id)
        return kind == _LOOP or (kind != _TASK_GROUP and expr.id in _LOOP_NAMES)

    def _scope_kinds(self, scope: ast.AST) -> dict[str, int]:
        kinds: dict[str, int] = {}
        nodes = list(walk_scope(scope))
        if isinstance(scope, FUNCTIONS):
            nodes += ast.walk(scope.args)
        for node in nodes:
            if isinstance(node, ast.arg):
                bound = {node.arg: _annotation_kind(node.annotation)}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
                kind = self._value_kind(node)
                bound = {t.id: kind for t in targets(node) if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AsyncWith):
                names = [item.optional_vars for item in node.items]
                bound = {n.id: _TASK_GROUP for n in names if isinstance(n, ast.Name)}
            else:
                continue
            for name, kind in bound.items():
                kinds[name] = max(kind, kinds.get(name, _OTHER))
        return kinds

    def later_reads(
        self, name: str, node: ast.expr | ast.stmt, *, until_bound: bool
    ) -> list[ast.Name] | None:
        """The reads of the local ``name`` that may run after ``node`` has run.

        A read counts if it comes later in the source (and, with ``until_bound``,
        before the name's next binding), in a loop around ``node`` (the next
        iteration), or in a nested function (called later). None if ``name`` is not
        a function's local: it may be read from anywhere.
        """
        # Reads anywhere in these count: loops around `node`, nested functions.
        anywhere: list[ast.expr | ast.stmt] = []
        scope = self.parents.get(node)
        while scope is not None and not isinstance(scope, (*_SCOPES, ast.Module)):
            anywhere += [scope] if isinstance(scope, _LOOPS) else []
            scope = self.parents.get(scope)
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return None
        start, after = span(node)
        uses: list[ast.Name] = []
        for n in ast.walk(scope):
            if isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names:
                return None
            if isinstance(n, FUNCTIONS) and n is not scope:
                anywhere.append(n)
            elif isinstance(n, ast.Name) and n.id == name:
                uses.append(n)
        stores = [span(n)[0] for n in uses if isinstance(n.ctx, ast.Store)]
        until = min((at for at in stores if until_bound and at > after), default=_END)
        return [
            n
            for n in uses
            if isinstance(n.ctx, ast.Load)
            and not start <= span(n)[0] <= after
            and (
                after < span(n)[0] < until
                or any(span(a)[0] <= span(n)[0] <= span(a)[1] for a in anywhere)
            )
        ]

    def read_later(
        self, name: str, node: ast.expr | ast.stmt, *, until_bound: bool
    ) -> bool:
        """Whether the local ``name`` may be read after ``node`` (see above)."""
        reads = self.later_reads(name, node, until_bound=until_bound)
        return reads is None or bool(reads)

    def preceding(self, node: ast.AST) -> Iterator[ast.stmt]:
        """Yield the statements run just before ``node``, nearest first.

        Back through its block, then out of an `if`, `with` or `try` body around it;
        not out of a loop, whose earlier iterations also come before.
        """
        child, parent = node, self.parents.get(node)
        while parent is not None:
            if isinstance(child, ast.stmt):
                for field in ("body", "orelse", "finalbody"):
                    # A statement's parent holds it in one of these lists.
                    block: list[ast.stmt] = getattr(parent, field, [])
                    if child in block:
                        yield from reversed(block[: block.index(child)])
                        break
                header = [parent.test] if isinstance(parent, ast.If) else []
                if isinstance(parent, ast.With):
                    header = [item.context_expr for item in parent.items]
                leaves_try = isinstance(parent, ast.Try) and child in parent.body
                if not (header or leaves_try) or any(map(suspends, header)):
                    return
            child, parent = parent, self.parents.get(parent)
