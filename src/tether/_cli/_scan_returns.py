"""What ``TET003`` knows of a function that returns a task, and what ``TET001``
knows of a coroutine that never ends.

A function returns a task when every ``return`` it can reach gives back a new task. One
that returns a task on one branch only (``if inline: return await x`` else
``return loop.create_task(x)``) counts at a call whose literal or default arguments
decide that branch: each ``return`` that gives no task must then sit under an ``if``
that those arguments surely send the other way.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

from ._scan_index import walk_scope

__all__ = ["Guard", "Returner", "guards_of", "loops_forever", "surely_ends"]

# One `if` a return sits under: its test, and whether the return is in its body
# (True) or in its `else` (False).
Guard = tuple[tuple[ast.expr, bool], ...]

_UNKNOWN: Final = object()
_Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Returner:
    """A function that returns a task it made (or that a function it calls made).

    ``made`` is the call that makes the task, at line ``made.lineno`` of ``path``
    (None: the module being checked), in the function named ``maker``. ``guards``
    holds, for each ``return`` that gives no task, the ``if`` tests around it: empty
    when every return gives a task.
    """

    function: _Function
    made: ast.Call
    path: str | None
    maker: str
    guards: tuple[Guard, ...] = ()

    def returns_task(self, call: ast.Call) -> bool:
        """Whether ``call`` of the function surely gets a task back."""
        if not self.guards:
            return True
        values = _arguments(self.function, call)
        if values is None:
            return False
        # Each return that gives no task is surely not reached: one `if` above it
        # goes the other way.
        return all(
            any(_truth(test, values) is (not in_body) for test, in_body in guard)
            for guard in self.guards
        )

    def where(self, path: str | None) -> str:
        """Where the task is made, as seen from the module at ``path``."""
        line = f"line {self.made.lineno}"
        return (
            line
            if self.path is None or self.path == path
            else f"{self.path}:{line[5:]}"
        )


def guards_of(
    node: ast.AST, function: ast.AST, parents: dict[ast.AST, ast.AST]
) -> Guard:
    """The ``if`` tests between ``function`` and ``node``, innermost first."""
    found: list[tuple[ast.expr, bool]] = []
    child, parent = node, parents.get(node)
    while parent is not None and parent is not function:
        if isinstance(parent, ast.If) and child is not parent.test:
            found.append((parent.test, child in parent.body))
        child, parent = parent, parents.get(parent)
    return tuple(found)


def surely_ends(body: list[ast.stmt]) -> bool:
    """Whether running ``body`` never falls off its end (it returns or raises)."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return surely_ends(last.body) and surely_ends(last.orelse)
    if isinstance(last, (ast.With, ast.AsyncWith)):
        return surely_ends(last.body)
    return False


def loops_forever(function: ast.AST) -> bool:
    """Whether ``function`` runs a ``while True`` that no ``break`` leaves and has no
    ``return``: a consumer or heartbeat that only cancellation ends."""
    nodes = list(walk_scope(function))
    if any(isinstance(node, ast.Return) for node in nodes):
        return False
    return any(
        isinstance(node, ast.While)
        and isinstance(node.test, ast.Constant)
        and bool(node.test.value)
        and not _breaks(node.body)
        for node in nodes
    )


def _breaks(body: list[ast.stmt]) -> bool:
    """Whether a ``break`` in ``body`` leaves the loop that holds it."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break):
            return True
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            stack += node.orelse  # a break in a nested loop's body leaves only it
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack += ast.iter_child_nodes(node)
    return False


def _arguments(function: _Function, call: ast.Call) -> dict[str, object] | None:
    """The parameters of ``function`` that ``call`` gives literal values, explicitly
    or by default; None if its ``*`` or ``**`` arguments hide which is which."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        kw.arg is None for kw in call.keywords
    ):
        return None
    spec = function.args
    positional = [*spec.posonlyargs, *spec.args]
    if _binds_self(function, call):
        positional = positional[1:]
    values: dict[str, object] = {}
    defaults = spec.defaults
    with_default = positional[len(positional) - len(defaults) :]
    for param, default in zip(with_default, defaults, strict=True):
        values[param.arg] = _literal(default)
    for param, kw_default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
        values[param.arg] = _UNKNOWN if kw_default is None else _literal(kw_default)
    for param, arg in zip(positional, call.args, strict=False):
        values[param.arg] = _literal(arg)
    for keyword in call.keywords:
        values[keyword.arg or ""] = _literal(keyword.value)
    return {name: value for name, value in values.items() if value is not _UNKNOWN}


def _binds_self(function: _Function, call: ast.Call) -> bool:
    """Whether ``call`` reaches the method ``function`` through an instance or class,
    which fills its first parameter."""
    decorators = {ast.unparse(d) for d in function.decorator_list}
    return (
        isinstance(call.func, ast.Attribute)
        and "staticmethod" not in decorators
        and bool(function.args.posonlyargs or function.args.args)
        and (function.args.posonlyargs or function.args.args)[0].arg in ("self", "cls")
    )


def _literal(expr: ast.expr) -> object:
    return expr.value if isinstance(expr, ast.Constant) else _UNKNOWN


def _truth(test: ast.expr, values: dict[str, object]) -> bool | None:
    """The truth of ``test`` given ``values`` of names, or None if unknown."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, ast.Name):
        return bool(values[test.id]) if test.id in values else None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = _truth(test.operand, values)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        parts = [_truth(value, values) for value in test.values]
        decisive = isinstance(test.op, ast.Or)  # True decides an `or`, False an `and`
        if decisive in parts:
            return decisive
        return None if None in parts else not decisive
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.left, ast.Name)
        and test.left.id in values
        and isinstance(test.comparators[0], ast.Constant)
    ):
        left, right = values[test.left.id], test.comparators[0].value
        op = test.ops[0]
        if isinstance(op, (ast.Is, ast.IsNot)) and right is None:
            return (left is None) is isinstance(op, ast.Is)
        if isinstance(op, (ast.Eq, ast.NotEq)):
            return (left == right) is isinstance(op, ast.Eq)
    return None
