"""What the names of one module mean to ``tether scan``, read once with :mod:`ast`.

Without types, asyncio is known by the module's imports (any alias), and an event loop
by what made it (``get_running_loop()`` and friends), by its annotation
(``AbstractEventLoop``) or by its name (``loop``, ``_loop``). A name bound by
``async with ... as tg`` or annotated ``TaskGroup`` is a task group, whose
``create_task`` keeps its tasks: it is never taken for a loop.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "FUNCTIONS",
    "Index",
    "callee_name",
    "dotted_name",
    "pattern_name",
    "span",
    "suspends",
    "targets",
    "walk_scope",
]

_SPAWNERS = frozenset({"create_task", "ensure_future"})
_LOOP_GETTERS = frozenset({"get_running_loop", "get_event_loop", "new_event_loop"})
# A project's own helper of these names gives a loop too (`utils.get_event_loop()`).
_ANY_OWNER_GETTERS = frozenset({"get_running_loop", "get_event_loop"})
_LOOP_NAMES = frozenset({"loop", "_loop"})
# `ensure_future` gives these back as they are: they make no new task.
_FUTURE_MAKERS = frozenset(
    {
        "create_future",
        "Future",
        "wrap_future",
        "run_in_executor",
        "run_coroutine_threadsafe",
        "gather",
        "shield",
    }
)
_FUTURE_NAME = re.compile(r"fut|task|waiter", re.IGNORECASE)
_FUTURE_TYPE = re.compile(r"\b(Future|Task)\b")
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


def dotted_name(text: str) -> list[str] | None:
    """The parts of ``text`` if it is a name or a dotted name (``self._tasks``)."""
    try:
        expr = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    return [expr.id, *reversed(parts)] if isinstance(expr, ast.Name) else None


def callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _bindings(
    scope: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda,
) -> dict[str, ast.AST]:
    """The names ``scope`` binds as its own locals, each with its first binding node
    (the ``arg``, the statement or handler, the pattern)."""
    found: dict[str, ast.AST] = {
        arg.arg: arg for arg in ast.walk(scope.args) if isinstance(arg, ast.arg)
    }
    declared: set[str] = set()
    for node in walk_scope(scope):
        names: list[str] = []
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names = [node.id]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif (captured := pattern_name(node)) is not None:
            names = [captured]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        for name in names:
            found.setdefault(name, node)
    return {name: node for name, node in found.items() if name not in declared}


def pattern_name(node: ast.AST) -> str | None:
    """The name ``except ... as NAME`` or a ``case`` pattern binds, if any."""
    if isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)):
        return node.name
    return node.rest if isinstance(node, ast.MatchMapping) else None


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
        self._locals: dict[ast.AST, dict[str, ast.AST]] = {}
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

    def _is_loop_getter(
        self, expr: ast.expr | None, getters: frozenset[str], *, any_owner: bool = True
    ) -> bool:
        """Whether ``expr`` calls one of asyncio's ``getters`` or, with ``any_owner``,
        any function or method called ``get_running_loop`` or ``get_event_loop``."""
        if not isinstance(expr, ast.Call):
            return False
        if self.asyncio_member(expr.func) in getters:
            return True
        name = callee_name(expr.func) if any_owner else None
        return name in getters and name in _ANY_OWNER_GETTERS

    def _value_kind(self, node: _Binding) -> int:
        annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
        kind = _annotation_kind(annotation)
        if kind == _OTHER and self._is_loop_getter(node.value, _LOOP_GETTERS):
            return _LOOP
        return kind

    def is_task_factory(self, func: ast.expr) -> bool:
        if self.asyncio_member(func) in _SPAWNERS:
            if isinstance(func, ast.Name) and self.local_binding(func.id, func):
                # `create_task = tg.create_task` in the function: not asyncio's.
                value = self.rebound_to(func)
                return value is not None and self.is_task_factory(value)
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "create_task"
            and self._is_loop(func.value)
        )

    def creates_task(self, expr: ast.expr | None) -> bool:
        """Whether ``expr`` makes a new task: ``ensure_future`` of a task or a future
        gives back what it is given."""
        if not isinstance(expr, ast.Call) or not self.is_task_factory(expr.func):
            return False
        return not (
            self.asyncio_member(expr.func) == "ensure_future"
            and expr.args
            and self.is_future(expr.args[0])
        )

    def is_future(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is surely, or by its name, a task or a future: a call of
        what makes one, a local bound to one, a parameter annotated as one."""
        if isinstance(expr, ast.Call):
            return callee_name(expr.func) in _FUTURE_MAKERS or self.creates_task(expr)
        name = callee_name(expr)
        if name is None:
            return False
        if _FUTURE_NAME.search(name) and "coro" not in name.lower():
            return True
        if not isinstance(expr, ast.Name):
            return False
        bound = self.local_binding(expr.id, expr)
        if bound is not None and isinstance(bound[1], ast.arg):
            annotation = bound[1].annotation
            return annotation is not None and bool(
                _FUTURE_TYPE.search(ast.unparse(annotation))
            )
        value = self.rebound_to(expr)
        return value is not None and self.is_future(value)

    def is_task_group(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is a name bound to a task group (``async with ... as``,
        or annotated ``TaskGroup``)."""
        return isinstance(expr, ast.Name) and self._kind(expr) == _TASK_GROUP

    def is_current_loop(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is the loop of the calling thread: ``get_running_loop()``
        or ``get_event_loop()`` (any owner's), or a local bound only to one."""
        if not isinstance(expr, ast.Name):
            return self._is_loop_getter(expr, _ANY_OWNER_GETTERS)
        value = self.rebound_to(expr)
        return value is not None and self._is_loop_getter(value, _ANY_OWNER_GETTERS)

    def is_running_loop(self, expr: ast.expr) -> bool:
        """Whether ``expr`` is surely the running loop of this thread:
        asyncio's ``get_running_loop()`` (or ``get_event_loop()`` in a coroutine,
        where it gives the running loop), or a local bound to nothing else."""
        scope = self.scope_of(expr)
        running = frozenset({"get_running_loop"})
        if isinstance(scope, ast.AsyncFunctionDef):
            running |= {"get_event_loop"}
        if not isinstance(expr, ast.Name):
            return self._is_loop_getter(expr, running, any_owner=False)
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
            and self._is_loop_getter(assign.value, running, any_owner=False)
            for store in stores
        )

    def local_binding(
        self, name: str, node: ast.AST
    ) -> tuple[ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, ast.AST] | None:
        """The innermost function around ``node`` that binds ``name`` as its own local
        (a parameter, an assignment, ``except ... as``, a ``case`` pattern, an import,
        a ``def``), and the node that binds it; None if ``name`` is global there."""
        scope = self.scope_of(node)
        while scope is not None and not isinstance(scope, ast.Module):
            if isinstance(scope, FUNCTIONS):
                if scope not in self._locals:
                    self._locals[scope] = _bindings(scope)
                binding = self._locals[scope].get(name)
                if binding is not None:
                    return scope, binding
            scope = self.scope_of(scope)
        return None

    def rebound_to(self, name: ast.Name) -> ast.expr | None:
        """What the function around ``name`` assigns to it, if it binds it once by a
        plain ``=`` to another expression than a name."""
        bound = self.local_binding(name.id, name)
        if bound is None:
            return None
        assign = self.parents.get(bound[1])
        if (
            isinstance(assign, ast.Assign)
            and assign.targets == [bound[1]]
            and not isinstance(assign.value, ast.Name)
        ):
            return assign.value
        return None

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
        kind = self._kind(expr)
        return kind == _LOOP or (kind != _TASK_GROUP and expr.id in _LOOP_NAMES)

    def _kind(self, expr: ast.Name) -> int | None:
        """What the innermost scope that binds ``expr`` binds it to."""
        kind = None
        node: ast.AST = expr
        while kind is None and node in self.parents:
            # The innermost scope that binds the name says what it is.
            node = self.parents[node]
            if isinstance(node, (*FUNCTIONS, ast.Module)):
                if node not in self._kinds:
                    self._kinds[node] = self._scope_kinds(node)
                kind = self._kinds[node].get(expr.id)
        return kind

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
