"""``TET002``: eager tasks made only to be gathered.

``gather`` wraps coroutines in tasks itself, so tasks created just before it (with no
``await`` in between) buy nothing. A ``name=`` is allowed on tasks made in a
comprehension or a list passed straight to the gather: it only labels them while they
run. A ``context=``, or a task that is named one by one, is made for more.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ._scan_index import callee_name, suspends, targets

if TYPE_CHECKING:
    from ._scan_index import Index

__all__ = ["gather_hint", "gathers_tasks"]

_LONG = 60


def gather_hint(gather: ast.Call, coroutines: str = "...") -> str:
    """The tether form of ``gather``: ``settle_all`` if it returns exceptions."""
    returns = next(
        (kw.value for kw in gather.keywords if kw.arg == "return_exceptions"), None
    )
    settle = f"`await tether.settle_all({coroutines})`"
    run = f"`await tether.run_all({coroutines})`"
    if isinstance(returns, ast.Constant) and returns.value is True:
        return f"use {settle}, which returns each result or the exception it raised"
    cancels = (
        "which cancels the others on the first failure, where gather leaves them "
        "running"
    )
    if returns is None or (isinstance(returns, ast.Constant) and not returns.value):
        return f"use {run}, {cancels}"
    return f"use {run}, {cancels}, or {settle} where return_exceptions is true"


def gathers_tasks(index: Index, gather: ast.Call) -> str | None:
    """The hint if ``gather`` is given tasks made for it alone, else None.

    The hint shows the coroutines in place of the tasks when they are written in the
    call itself and short, and ``...`` otherwise.
    """
    rule = _Rule(index)
    made = False
    names: set[str] = set()
    shown: list[str | None] = []
    for arg in gather.args:
        star = isinstance(arg, ast.Starred)
        value = arg.value if isinstance(arg, ast.Starred) else arg
        if rule.makes_tasks(value, named=True):
            made = True
            shown.append(_coroutines(value, star=star))
        else:
            names |= {value.id} if isinstance(value, ast.Name) else set()
            shown.append(None)
    if made or (names and rule.bound_to_fresh(names, gather)):
        text = ", ".join(item for item in shown if item is not None)
        complete = None not in shown and len(text) <= _LONG and "\n" not in text
        return gather_hint(gather, text if complete else "...")
    return None


def _coroutines(value: ast.expr, *, star: bool) -> str | None:
    """The coroutines that the tasks of ``value`` wrap, as source, if it shows them."""
    callee = callee_name(value.func) if isinstance(value, ast.Call) else None
    if isinstance(value, ast.Call) and callee == "map":
        return f"*{ast.unparse(value.args[1])}" if len(value.args) == 2 else None
    if isinstance(value, ast.Call) and callee in ("list", "tuple", "set"):
        return _coroutines(value.args[0], star=star)
    if isinstance(value, ast.Call):
        return ast.unparse(value.args[0]) if value.args and not star else None
    if isinstance(value, (ast.List, ast.Tuple, ast.Set)) and star:
        parts = [_coroutines(item, star=False) for item in value.elts]
        return None if None in parts else ", ".join(map(str, parts))
    if (
        star
        and isinstance(value, (ast.ListComp, ast.SetComp, ast.GeneratorExp))
        and isinstance(value.elt, ast.Call)
        and value.elt.args
    ):
        generator = ast.GeneratorExp(value.elt.args[0], value.generators)
        return f"*{ast.unparse(generator)}"
    return None


class _Rule:
    def __init__(self, index: Index) -> None:
        self._index = index

    def _makes_plain_task(self, expr: ast.expr, *, named: bool = False) -> bool:
        # A task given a context, or a name one by one, is made for more than the
        # gather.
        allowed: set[str | None] = {"name"} if named else set()
        plain = isinstance(expr, ast.Call) and all(
            kw.arg in allowed for kw in expr.keywords
        )
        return plain and self._index.creates_task(expr)

    def makes_tasks(self, expr: ast.expr, *, named: bool = False) -> bool:
        """Whether ``expr`` makes one new task or a collection of new tasks."""
        if isinstance(expr, (ast.List, ast.Tuple, ast.Set)):
            return bool(expr.elts) and all(
                self._makes_plain_task(elt, named=named) for elt in expr.elts
            )
        if isinstance(expr, (ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            # An async comprehension awaits between two tasks: they do run early.
            return self._makes_plain_task(expr.elt, named=named) and not suspends(expr)
        if not isinstance(expr, ast.Call) or self._index.creates_task(expr):
            return self._makes_plain_task(expr)
        callee = callee_name(expr.func)
        if callee in ("list", "tuple", "set") and len(expr.args) == 1:
            return self.makes_tasks(expr.args[0], named=named)
        return callee == "map" and any(map(self._index.is_task_factory, expr.args[:1]))

    def bound_to_fresh(self, names: set[str], gather: ast.Call) -> bool:
        """Whether every one of ``names`` holds tasks made just before ``gather``.

        Walks back through the statements run just before the gather: each name's
        tasks must come from its assignment (or from `append` calls after an empty
        one), with no statement in between that awaits or reads the name in another
        way, and no read after the gather. One task made for more (started earlier,
        cancelled by a sibling) makes the order of the others matter too.
        """
        pending = set(names)
        filled: set[str] = set()
        for stmt in self._index.preceding(gather):
            for name in sorted(pending):
                binds, value = _binding(stmt, name)
                if not binds:
                    continue
                empty = isinstance(value, (ast.List, ast.Set)) and not value.elts
                fresh = value is not None and (
                    self.makes_tasks(value, named=True) or (name in filled and empty)
                )
                if not fresh or self._index.read_later(name, gather, until_bound=True):
                    return False
                pending.discard(name)
            if not pending:
                return True
            if suspends(stmt):
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
                method = self._index.parents[node]
                call = self._index.parents.get(method)
                if not (
                    isinstance(method, ast.Attribute)
                    and isinstance(call, ast.Call)
                    and call.func is method
                    and len(call.args) == 1
                    and method.attr in ("append", "add", "extend")
                ):
                    return False
                if method.attr == "extend":
                    fills = self.makes_tasks(call.args[0])
                else:
                    fills = self._makes_plain_task(call.args[0])
                if not fills:
                    return False
        return fills


def _binding(stmt: ast.stmt, name: str) -> tuple[bool, ast.expr | None]:
    """Whether ``stmt`` binds ``name``, and the value when it is a plain assignment."""
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and any(
        isinstance(target, ast.Name) and target.id == name for target in targets(stmt)
    ):
        return True, stmt.value
    stores = (n for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == name)
    return any(isinstance(n.ctx, ast.Store) for n in stores), None
