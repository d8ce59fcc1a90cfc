"""The rules of ``tether scan``, on the standard library :mod:`ast`.

- ``TET001`` a dangling task: a task from ``asyncio.create_task``, ``ensure_future`` or
  a loop's ``create_task`` that nothing keeps. The loop holds only a weak reference to
  it, so it can be garbage-collected mid-flight.
- ``TET002`` eager tasks made only to be gathered (in :mod:`._scan_gather`).
- ``TET003`` a task returned by a function of the module, dropped by a caller in it.
- ``TET004`` a task kept only by its done callback, which does not keep it alive.
- ``TET005`` a discarded ``run_coroutine_threadsafe`` future: its task may be
  collected, and its failure is lost without a trace.
- ``TET006`` a discarded ``gather``: nothing waits for its tasks, nor sees a failure.

What the module's names mean (asyncio aliases, loops, task groups) is read once by
:class:`._scan_index.Index`. A hint never invents a name: an argument too long to
repeat is shown as ``...``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Final

from ._scan_gather import gather_hint, gathers_tasks
from ._scan_index import FUNCTIONS, Index, callee_name, targets, walk_scope

__all__ = ["RULES", "TRIGGERS", "Finding", "check_module", "spawn_hint"]

RULES: Final[dict[str, str]] = {
    "TET001": "dangling task",
    "TET002": "eager tasks made only to be gathered",
    "TET003": "returned task dropped by its caller",
    "TET004": "task kept only by its done callback",
    "TET005": "discarded run_coroutine_threadsafe future",
    "TET006": "discarded gather",
}

# A module whose text has none of these cannot make a task (an alias still names the
# original in its import), so it is parsed for errors but not analysed.
TRIGGERS: Final = ("create_task", "ensure_future", "run_coroutine_threadsafe", "gather")

# These use what the function they are given returns: a lambda handed to them is not a
# callback whose result is dropped.
_VALUE_CONSUMERS = frozenset({"map", "filter", "sorted", "min", "max", "reduce"})
_LONG = 40
_NO_FIX = "no automatic fix for this code"

_REGISTRY = "inside `async with tether.TaskRegistry():`"
_LOST = "so the task may be garbage-collected mid-flight"


@dataclass(frozen=True)
class Finding:
    """One rule violation, placed as :mod:`ast` places nodes.

    ``line`` is 1-based; ``col_offset`` is 0-based and counts UTF-8 bytes.
    ``not_fixed`` says why ``--fix`` leaves it as it is; None if it rewrites it.
    """

    line: int
    col_offset: int
    code: str
    message: str
    not_fixed: str | None = _NO_FIX


def check_module(tree: ast.Module) -> list[Finding]:
    """Return every finding in ``tree``, in source order."""
    return _Checker(tree).run()


def _short(expr: ast.expr | None) -> str:
    text = "..." if expr is None else ast.unparse(expr)
    return "..." if len(text) > _LONG or "\n" in text else text


def spawn_hint(call: ast.Call, method: str = "tether.spawn") -> str:
    """``tether.spawn(<the coroutine>, name=<the name>)`` for a task-making ``call``."""
    single = len(call.args) == 1 and not isinstance(call.args[0], ast.Starred)
    coroutine = call.args[0] if single else None
    words = [_short(coroutine)]
    words += [f"name={_short(kw.value)}" for kw in call.keywords if kw.arg == "name"]
    return f"{method}({', '.join(words)})"


def _is_str(expr: ast.expr) -> bool:
    return isinstance(expr, ast.JoinedStr) or (
        isinstance(expr, ast.Constant) and isinstance(expr.value, str)
    )


class _Checker:
    """One pass over a module: the index, then each rule on each call."""

    def __init__(self, tree: ast.Module) -> None:
        self._index = index = Index(tree)
        self._parents = index.parents
        self._module = tree
        # The functions of the module and the methods of each class, by name.
        self._defs: dict[
            ast.AST, dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
        ] = {}
        for node in index.functions:
            self._defs.setdefault(self._parents[node], {})[node.name] = node

    def run(self) -> list[Finding]:
        """Apply every rule to every call of the module."""
        findings: list[Finding] = []
        returners = self._task_returners()
        for call in self._index.calls:
            member = self._index.asyncio_member(call.func)
            finding = None
            if self._index.creates_task(call):
                finding = self._dangling(call)
            elif member == "run_coroutine_threadsafe":
                finding = self._discarded_future(call)
            elif member == "gather":
                finding = self._gather(call)
            elif (function := self._target(call)) is not None and function in returners:
                finding = self._dropped_return(call, function, returners[function])
            findings += [] if finding is None else [finding]
        return sorted(findings, key=lambda f: (f.line, f.col_offset, f.code))

    # How a value is dropped

    def _dropped(self, call: ast.Call) -> str | None:
        """How the value of ``call`` is dropped, or None if something may keep it.

        Dropped: a statement of its own (also behind `and`, `or`, `if else`), the
        value of a lambda callback, or a local that is never read again.
        """
        node: ast.AST = call
        parent = self._parents.get(node)
        while isinstance(parent, ast.BoolOp) or (
            isinstance(parent, ast.IfExp) and parent.test is not node
        ):
            node, parent = parent, self._parents.get(parent)
        if isinstance(parent, ast.Expr):
            return "is discarded"
        if isinstance(parent, ast.Lambda) and self._is_callback(parent):
            return "is returned by a lambda callback, whose return value is discarded"
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            names = targets(parent)
            if len(names) == 1 and isinstance(names[0], ast.Name):
                name = names[0].id
                if not self._index.read_later(name, parent, until_bound=False):
                    return f"is stored in {name!r}, which is never used again"
        return None

    def _is_callback(self, lambda_: ast.Lambda) -> bool:
        holder = self._parents.get(lambda_)
        if isinstance(holder, ast.keyword):
            holder = self._parents.get(holder)
        return (
            isinstance(holder, ast.Call)
            and holder.func is not lambda_
            and callee_name(holder.func) not in _VALUE_CONSUMERS
        )

    def _kept_by_callback(self, call: ast.Call) -> bool:
        """Whether the task of ``call`` is used only to add a done callback."""
        parent = self._parents.get(call)
        if isinstance(parent, ast.Attribute):
            return self._adds_callback(parent)
        if not isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            return False
        names = targets(parent)
        if len(names) != 1 or not isinstance(names[0], ast.Name):
            return False
        reads = self._index.later_reads(names[0].id, parent, until_bound=False)
        return bool(reads) and all(
            self._adds_callback(self._parents[read]) for read in reads or ()
        )

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

    # TET001, TET004

    def _dangling(self, call: ast.Call) -> Finding | None:
        callee = ast.unparse(call.func)
        hint = f"use {spawn_hint(call)} {_REGISTRY}"
        how = self._dropped(call)
        if how is not None:
            message = f"dangling task: the result of {callee}() {how}, {_LOST}; {hint}"
            return Finding(
                call.lineno, call.col_offset, "TET001", message, self._refusal(call)
            )
        if self._kept_by_callback(call):
            message = (
                f"task kept only by its done callback: the task {callee}() makes is "
                "used only to add a done callback, which does not keep it alive, "
                f"{_LOST}; {hint}, and add the callback to the handle it returns "
                "(Handle.add_done_callback)"
            )
            return Finding(call.lineno, call.col_offset, "TET004", message)
        return None

    def _refusal(self, call: ast.Call) -> str | None:
        """Why ``--fix`` cannot prove ``tether.spawn`` the same, or None if it can."""
        if not isinstance(self._parents.get(call), ast.Expr):
            return "only a call that is a statement of its own is rewritten"
        func = call.func
        member = self._index.asyncio_member(func)
        if member is None and not (
            isinstance(func, ast.Attribute) and self._index.is_running_loop(func.value)
        ):
            return (
                "the loop is not known to be the running one, where tether.spawn "
                "runs the task"
            )
        if len(call.args) != 1 or isinstance(call.args[0], ast.Starred):
            return "it is not given exactly one coroutine"
        if member == "ensure_future" and not self._is_coroutine_call(call.args[0]):
            return (
                "ensure_future() also takes futures and awaitables, and its argument "
                "is not a call of an async def of this module"
            )
        for keyword in call.keywords:
            if keyword.arg != "name":
                given = "**" if keyword.arg is None else f"{keyword.arg}="
                return f"{given} has no tether.spawn equivalent"
            if not _is_str(keyword.value):
                return "name= is not a string literal, and tether.spawn takes a str"
        return None

    def _is_coroutine_call(self, expr: ast.expr) -> bool:
        """Whether ``expr`` calls an ``async def`` of the module (or of ``self``'s
        class) by name."""
        if not isinstance(expr, ast.Call):
            return False
        function = self._target(expr)
        return isinstance(function, ast.AsyncFunctionDef)

    # TET003

    def _target(self, call: ast.Call) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        """The function of this module ``call`` calls: ``f()`` for a module-level
        ``def f``, ``self.m()`` or ``cls.m()`` in the class that defines ``m``."""
        func = call.func
        if isinstance(func, ast.Name):
            return self._defs.get(self._module, {}).get(func.id)
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in ("self", "cls")
        ):
            return None
        owner = self._index.scope_of(call)
        while isinstance(owner, FUNCTIONS):
            owner = self._index.scope_of(owner)
        return self._defs.get(owner, {}).get(func.attr) if owner else None

    def _task_returners(self) -> dict[ast.AST, ast.Call]:
        """The functions whose every ``return`` gives back a new task, and the call
        that makes it: ``return create_task(...)``, or a local only returned (or
        given a done callback)."""
        found: dict[ast.AST, ast.Call] = {}
        # Only a function that makes a task can return one it made.
        makers = {
            self._index.scope_of(call)
            for call in self._index.calls
            if self._index.creates_task(call)
        }
        for function in makers:
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                made = self._returned_task(function)
                if made is not None:
                    found[function] = made
        return found

    def _returned_task(self, function: ast.AST) -> ast.Call | None:
        nodes = list(walk_scope(function))
        returns = [n for n in nodes if isinstance(n, ast.Return)]
        if not returns or any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in nodes):
            return None
        made: ast.Call | None = None
        for node in returns:
            value = node.value
            if isinstance(value, ast.Name):
                value = self._only_returned(value.id, nodes)
            if not isinstance(value, ast.Call) or not self._index.creates_task(value):
                return None
            made = made or value
        return made

    def _only_returned(self, name: str, nodes: list[ast.AST]) -> ast.expr | None:
        """The value of the local ``name`` if it is bound once and only returned."""
        value = None
        for node in nodes:
            if not (isinstance(node, ast.Name) and node.id == name):
                continue
            parent = self._parents[node]
            if isinstance(node.ctx, ast.Store):
                if value is not None or not isinstance(parent, ast.Assign):
                    return None
                value = parent.value
            elif not (isinstance(parent, ast.Return) or self._adds_callback(parent)):
                return None
        return value

    def _dropped_return(
        self,
        call: ast.Call,
        function: ast.FunctionDef | ast.AsyncFunctionDef,
        made: ast.Call,
    ) -> Finding | None:
        """TET003 if ``call`` drops the task ``function`` returns (``made``)."""
        node: ast.AST = call
        if isinstance(function, ast.AsyncFunctionDef):
            node = self._parents[call]
            if not isinstance(node, ast.Await):
                return None
        if not isinstance(self._parents.get(node), ast.Expr):
            return None
        callee = ast.unparse(call.func)
        message = (
            f"returned task dropped: {callee}() returns the task "
            f"{ast.unparse(made.func)}() makes at line {made.lineno}, and the result "
            f"is discarded here, {_LOST}; in {function.name}, use "
            f"{spawn_hint(made)} {_REGISTRY}"
        )
        return Finding(call.lineno, call.col_offset, "TET003", message)

    # TET005, TET006

    def _discarded_future(self, call: ast.Call) -> Finding | None:
        how = self._dropped(call)
        if how is None:
            return None
        coroutine = call.args[0] if call.args else None
        message = (
            f"discarded future: the result of {ast.unparse(call.func)}() {how}, "
            f"{_LOST} and its failure is lost without a trace; use "
            f"spawn_threadsafe({_short(coroutine)}) on a tether.TaskRegistry, which "
            "keeps the task and reports its failure"
        )
        return Finding(call.lineno, call.col_offset, "TET005", message)

    def _gather(self, call: ast.Call) -> Finding | None:
        how = self._dropped(call)
        if how is None:
            hint = gathers_tasks(self._index, call)
            if hint is None:
                return None
            message = (
                "eager tasks made only to be gathered: "
                f"{ast.unparse(call.func)}() wraps coroutines in tasks itself, and no "
                "await comes between creating these tasks and gathering them; "
                f"{hint}"
            )
            return Finding(call.lineno, call.col_offset, "TET002", message)
        shown = ", ".join(map(ast.unparse, call.args))
        hint = gather_hint(call, shown if len(shown) <= _LONG else "...")
        message = (
            f"discarded gather: the result of {ast.unparse(call.func)}() {how}, so "
            "nothing waits for its tasks, they may be garbage-collected mid-flight, "
            f"and a failure is reported late or never; to wait for them, {hint}; to "
            "run them in the background, tether.spawn each one"
        )
        return Finding(call.lineno, call.col_offset, "TET006", message)
