"""The rules of ``tether scan``, on the standard library :mod:`ast`.

- ``TET001`` a dangling task: a task from ``asyncio.create_task``, ``ensure_future`` or
  a loop's ``create_task`` that nothing keeps. The loop holds only a weak reference to
  it, so it can be garbage-collected mid-flight.
- ``TET002`` eager tasks made only to be gathered: ``gather`` wraps coroutines itself,
  so tasks created just before it (with no ``await`` in between) buy nothing.

Without types, asyncio is known by the module's imports (any alias), and an event loop
by what made it (``get_running_loop()`` and friends), by its annotation
(``AbstractEventLoop``) or by its name (``loop``, ``_loop``). A name bound by
``async with ... as tg`` or annotated ``TaskGroup`` is a task group, whose
``create_task`` keeps its tasks: it is never taken for a loop.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["RULES", "TRIGGERS", "Finding", "check_module"]

RULES: Final[dict[str, str]] = {
    "TET001": "dangling task",
    "TET002": "eager tasks made only to be gathered",
}

# A module whose text has none of these cannot make a task (an alias still names the
# original in its import), so it is parsed for errors but not analysed.
TRIGGERS: Final = ("create_task", "ensure_future")

_SPAWNERS = frozenset({"create_task", "ensure_future"})
_LOOP_GETTERS = frozenset({"get_running_loop", "get_event_loop", "new_event_loop"})
_LOOP_NAMES = frozenset({"loop", "_loop"})
_ASYNCIO = frozenset({"asyncio", "asyncio.tasks", "asyncio.events"})
# These use what the function they are given returns: a lambda handed to them is not a
# callback whose result is dropped.
_VALUE_CONSUMERS = frozenset({"map", "filter", "sorted", "min", "max", "reduce"})
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_SCOPES = (*_FUNCTIONS, ast.ClassDef)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_SUSPENDING = (ast.Await, ast.AsyncFor, ast.AsyncWith, ast.Yield, ast.YieldFrom)
# What a name is bound to, ranked: one task-group binding outweighs any loop binding.
_OTHER, _LOOP, _TASK_GROUP = 0, 1, 2
_END: Final = (sys.maxsize, 0)

_SPAWN_HINT = "use tether.spawn({}) inside `async with tether.TaskRegistry():`"
_GATHER_MESSAGE = (
    "eager tasks made only to be gathered: {}() wraps coroutines in tasks itself, and "
    "no await comes between creating these tasks and gathering them; "
    "use `await tether.run_all(coro1, coro2, ...)`"
)

_Binding = ast.Assign | ast.AnnAssign | ast.NamedExpr


@dataclass(frozen=True)
class Finding:
    """One rule violation, placed as :mod:`ast` places nodes.

    ``line`` is 1-based; ``col_offset`` is 0-based and counts UTF-8 bytes.
    """

    line: int
    col_offset: int
    code: str
    message: str


def check_module(tree: ast.Module) -> list[Finding]:
    """Return every ``TET001`` and ``TET002`` finding in ``tree``, in source order."""
    return _Checker(tree).run()


def _walk_scope(root: ast.AST) -> Iterator[ast.AST]:
    """Yield the nodes under ``root`` that run with it: not inside nested defs."""
    stack = list(ast.iter_child_nodes(root))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _suspends(node: ast.AST) -> bool:
    """Whether running ``node`` may let other tasks run: an await, or a yield."""
    return any(
        isinstance(child, _SUSPENDING)
        or (isinstance(child, ast.comprehension) and child.is_async)
        for child in (node, *_walk_scope(node))
    )


def _span(node: ast.expr | ast.stmt) -> tuple[tuple[int, int], tuple[int, int]]:
    end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
    return (node.lineno, node.col_offset), end


def _targets(node: _Binding) -> list[ast.expr]:
    return node.targets if isinstance(node, ast.Assign) else [node.target]


def _annotation_kind(annotation: ast.expr | None) -> int:
    # Unparsing also covers string annotations, Optional[...] and `X | None`.
    text = "" if annotation is None else ast.unparse(annotation)
    if "TaskGroup" in text:
        return _TASK_GROUP
    return _LOOP if "AbstractEventLoop" in text or "BaseEventLoop" in text else _OTHER


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _binding(stmt: ast.stmt, name: str) -> tuple[bool, ast.expr | None]:
    """Whether ``stmt`` binds ``name``, and the value when it is a plain assignment."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and any(
        isinstance(target, ast.Name) and target.id == name for target in _targets(stmt)
    ):
        return True, stmt.value
    stores = (n for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == name)
    return any(isinstance(n.ctx, ast.Store) for n in stores), None


class _Checker:
    """One pass over a module: an index of its nodes, then each rule on each call."""

    def __init__(self, tree: ast.Module) -> None:
        self._parents: dict[ast.AST, ast.AST] = {}
        self._calls: list[ast.Call] = []
        # A bare `asyncio` always counts, imported or not: a false alarm costs a noqa.
        self._asyncio = {"asyncio"}
        self._members: dict[str, str] = {}
        self._loop_attributes = set(_LOOP_NAMES)
        self._kinds: dict[ast.AST, dict[str, int]] = {}
        assignments: list[ast.Assign | ast.AnnAssign] = []
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self._parents[child] = node
            if isinstance(node, ast.Call):
                self._calls.append(node)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                assignments.append(node)
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
            in_class = isinstance(self._parents.get(node), ast.ClassDef)
            for target in _targets(node) if self._value_kind(node) == _LOOP else ():
                if isinstance(target, ast.Attribute):
                    self._loop_attributes.add(target.attr)
                elif isinstance(target, ast.Name) and in_class:
                    self._loop_attributes.add(target.id)

    def run(self) -> list[Finding]:
        """Apply every rule to every call of the module."""
        findings: list[Finding] = []
        for call in self._calls:
            if self._creates_task(call):
                finding = self._dangling(call)
                findings += [] if finding is None else [finding]
            elif self._asyncio_member(call.func) == "gather" and self._gathers_tasks(
                call
            ):
                message = _GATHER_MESSAGE.format(ast.unparse(call.func))
                findings.append(
                    Finding(call.lineno, call.col_offset, "TET002", message)
                )
        return sorted(findings, key=lambda f: (f.line, f.col_offset, f.code))

    # What names mean

    def _asyncio_member(self, expr: ast.expr) -> str | None:
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

    def _is_loop_getter(self, expr: ast.expr | None) -> bool:
        return (
            isinstance(expr, ast.Call)
            and self._asyncio_member(expr.func) in _LOOP_GETTERS
        )

    def _value_kind(self, node: _Binding) -> int:
        annotation = node.annotation if isinstance(node, ast.AnnAssign) else None
        kind = _annotation_kind(annotation)
        return _LOOP if kind == _OTHER and self._is_loop_getter(node.value) else kind

    def _is_task_factory(self, func: ast.expr) -> bool:
        if self._asyncio_member(func) in _SPAWNERS:
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "create_task"
            and self._is_loop(func.value)
        )

    def _creates_task(self, expr: ast.expr) -> bool:
        return isinstance(expr, ast.Call) and self._is_task_factory(expr.func)

    def _is_loop(self, expr: ast.expr) -> bool:
        if isinstance(expr, ast.Call):
            return self._is_loop_getter(expr)
        if isinstance(expr, ast.Attribute):
            return expr.attr in self._loop_attributes
        if not isinstance(expr, ast.Name):
            return False
        kind = None
        node: ast.AST = expr
        while kind is None and node in self._parents:
            # The innermost scope that binds the name says what it is.
            node = self._parents[node]
            if isinstance(node, (*_FUNCTIONS, ast.Module)):
                if node not in self._kinds:
                    self._kinds[node] = self._scope_kinds(node)
                kind = self._kinds[node].get(expr.id)
        return kind == _LOOP or (kind != _TASK_GROUP and expr.id in _LOOP_NAMES)

    def _scope_kinds(self, scope: ast.AST) -> dict[str, int]:
        kinds: dict[str, int] = {}
        nodes = list(_walk_scope(scope))
        if isinstance(scope, _FUNCTIONS):
            nodes += ast.walk(scope.args)
        for node in nodes:
            if isinstance(node, ast.arg):
                bound = {node.arg: _annotation_kind(node.annotation)}
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
                kind = self._value_kind(node)
                bound = {t.id: kind for t in _targets(node) if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AsyncWith):
                names = [item.optional_vars for item in node.items]
                bound = {n.id: _TASK_GROUP for n in names if isinstance(n, ast.Name)}
            else:
                continue
            for name, kind in bound.items():
                kinds[name] = max(kind, kinds.get(name, _OTHER))
        return kinds

    # TET001

    def _dangling(self, call: ast.Call) -> Finding | None:
        """A TET001 finding if nothing keeps the task ``call`` makes."""
        node: ast.AST = call
        parent = self._parents.get(node)
        # `flag and create_task(...)` or `a if c else create_task(...)` as a statement
        while isinstance(parent, ast.BoolOp) or (
            isinstance(parent, ast.IfExp) and parent.test is not node
        ):
            node, parent = parent, self._parents.get(parent)
        callee = ast.unparse(call.func)
        reason = f"the result of {callee}() is discarded"
        if isinstance(parent, ast.Lambda) and self._is_callback(parent):
            reason = (
                f"the result of {callee}() is returned by a lambda callback, "
                "whose return value is discarded"
            )
        elif isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            targets = _targets(parent)
            if len(targets) > 1 or not isinstance(targets[0], ast.Name):
                return None
            if self._read_later(targets[0].id, parent, until_bound=False):
                return None
            reason = (
                f"the result of {callee}() is stored in {targets[0].id!r}, "
                "which is never used again"
            )
        elif not isinstance(parent, ast.Expr):
            return None
        coro = ast.unparse(call.args[0]) if call.args else "coro"
        if len(coro) > 40 or "\n" in coro:
            coro = "coro"
        message = (
            f"dangling task: {reason}, so the task may be garbage-collected "
            f"mid-flight; {_SPAWN_HINT.format(coro)}"
        )
        return Finding(call.lineno, call.col_offset, "TET001", message)

    def _is_callback(self, lambda_: ast.Lambda) -> bool:
        holder = self._parents.get(lambda_)
        if isinstance(holder, ast.keyword):
            holder = self._parents.get(holder)
        return (
            isinstance(holder, ast.Call)
            and holder.func is not lambda_
            and _callee_name(holder.func) not in _VALUE_CONSUMERS
        )

    def _read_later(
        self, name: str, node: ast.expr | ast.stmt, *, until_bound: bool
    ) -> bool:
        """Whether the local ``name`` is read after ``node`` has run.

        A read counts if it comes later in the source (and, with ``until_bound``,
        before the name's next binding), in a loop around ``node`` (the next
        iteration), or in a nested function (called later). A name that is not a
        function's local may be read from anywhere: it always counts.
        """
        # Reads anywhere in these count: loops around `node`, nested functions.
        anywhere: list[ast.expr | ast.stmt] = []
        scope = self._parents.get(node)
        while scope is not None and not isinstance(scope, (*_SCOPES, ast.Module)):
            anywhere += [scope] if isinstance(scope, _LOOPS) else []
            scope = self._parents.get(scope)
        if not isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
        start, after = _span(node)
        uses: list[ast.Name] = []
        for n in ast.walk(scope):
            if isinstance(n, (ast.Global, ast.Nonlocal)) and name in n.names:
                return True
            if isinstance(n, _FUNCTIONS) and n is not scope:
                anywhere.append(n)
            elif isinstance(n, ast.Name) and n.id == name:
                uses.append(n)
        stores = [_span(n)[0] for n in uses if isinstance(n.ctx, ast.Store)]
        until = min((at for at in stores if until_bound and at > after), default=_END)
        for here in (_span(n)[0] for n in uses if isinstance(n.ctx, ast.Load)):
            if not start <= here <= after and (
                after < here < until
                or any(_span(a)[0] <= here <= _span(a)[1] for a in anywhere)
            ):
                return True
        return False

    # TET002

    def _makes_plain_task(self, expr: ast.expr) -> bool:
        # A task given a name or a context is made for more than the gather.
        plain = isinstance(expr, ast.Call) and not expr.keywords
        return plain and self._creates_task(expr)

    def _makes_tasks(self, expr: ast.expr) -> bool:
        """Whether ``expr`` makes one new task or a collection of new tasks."""
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            return bool(expr.elts) and all(map(self._makes_plain_task, expr.elts))
        if isinstance(expr, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            # An async comprehension awaits between two tasks: they do run early.
            return self._makes_plain_task(expr.elt) and not _suspends(expr)
        if not isinstance(expr, ast.Call) or self._creates_task(expr):
            return self._makes_plain_task(expr)
        callee = _callee_name(expr.func)
        if callee in ("list", "tuple", "set") and len(expr.args) == 1:
            return self._makes_tasks(expr.args[0])
        return callee == "map" and any(map(self._is_task_factory, expr.args[:1]))

    def _gathers_tasks(self, gather: ast.Call) -> bool:
        """Whether ``gather`` is given tasks made for it alone (TET002)."""
        names: set[str] = set()
        for arg in gather.args:
            value = arg.value if isinstance(arg, ast.Starred) else arg
            if self._makes_tasks(value):
                return True
            names |= {value.id} if isinstance(value, ast.Name) else set()
        return bool(names) and self._bound_to_fresh_tasks(names, gather)

    def _bound_to_fresh_tasks(self, names: set[str], gather: ast.Call) -> bool:
        """Whether every one of ``names`` holds tasks made just before ``gather``.

        Walks back through the statements run just before the gather: each name's
        tasks must come from its assignment (or from `append` calls after an empty
        one), with no statement in between that awaits or reads the name in another
        way, and no read after the gather. One task made for more (started earlier,
        cancelled by a sibling) makes the order of the others matter too.
        """
        pending = set(names)
        filled: set[str] = set()
        for stmt in self._preceding(gather):
            for name in sorted(pending):
                binds, value = _binding(stmt, name)
                if not binds:
                    continue
                empty = isinstance(value, (ast.List, ast.Set)) and not value.elts
                fresh = value is not None and (
                    self._makes_tasks(value) or (name in filled and empty)
                )
                if not fresh or self._read_later(name, gather, until_bound=True):
                    return False
                pending.discard(name)
            if not pending:
                return True
            if _suspends(stmt):
                return False
            for name in sorted(pending):
                if self._fills_with_tasks(stmt, name):
                    filled.add(name)
                elif any(
                    isinstance(n, ast.Name) and n.id == name for n in ast.walk(stmt)
                ):
                    return False
        return False

    def _fills_with_tasks(self, stmt: ast.stmt, name: str) -> bool:
        """Whether ``stmt`` reads the list or set ``name`` only to add new tasks."""
        fills = False
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id == name:
                method = self._parents[node]
                call = self._parents.get(method)
                if not (
                    isinstance(method, ast.Attribute)
                    and isinstance(call, ast.Call)
                    and call.func is method
                    and len(call.args) == 1
                    and method.attr in ("append", "add", "extend")
                ):
                    return False
                make = (
                    self._makes_tasks
                    if method.attr == "extend"
                    else self._makes_plain_task
                )
                fills = make(call.args[0])
                if not fills:
                    return False
        return fills

    def _preceding(self, node: ast.AST) -> Iterator[ast.stmt]:
        """Yield the statements run just before ``node``, nearest first.

        Back through its block, then out of an `if`, `with` or `try` body around it;
        not out of a loop, whose earlier iterations also come before.
        """
        child, parent = node, self._parents.get(node)
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
                if not (header or leaves_try) or any(map(_suspends, header)):
                    return
            child, parent = parent, self._parents.get(parent)
