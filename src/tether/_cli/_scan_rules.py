"""The rules of ``tether scan``, on the standard library :mod:`ast`.

- ``TET001`` a dangling task: a task from ``asyncio.create_task``, ``ensure_future`` or
  a loop's ``create_task`` that nothing keeps. The loop holds only a weak reference to
  it, so it can be garbage-collected mid-flight.
- ``TET002`` eager tasks made only to be gathered (in :mod:`._scan_gather`).
- ``TET003`` a task returned by a function of the project (found and followed by
  :mod:`._scan_follow`), dropped by a caller
  (across modules through :mod:`._scan_project`; on one branch, see
  :mod:`._scan_returns`).
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

from ._scan_follow import Follow
from ._scan_gather import gather_hint, gathers_tasks
from ._scan_index import FUNCTIONS, callee_name, targets
from ._scan_returns import Returner, loops_forever

__all__ = [
    "ALIASES",
    "RULES",
    "TRIGGERS",
    "Finding",
    "check_module",
    "spawn_hint",
]

RULES: Final[dict[str, str]] = {
    "TET001": "dangling task",
    "TET002": "eager tasks made only to be gathered",
    "TET003": "returned task dropped by its caller",
    "TET004": "task kept only by its done callback",
    "TET005": "discarded run_coroutine_threadsafe future",
    "TET006": "discarded gather",
}

# Codes of other tools that mark the same hazard: their `noqa` silences ours too.
ALIASES: Final[dict[str, tuple[str, ...]]] = {"TET001": ("RUF006",)}

# A module whose text has none of these cannot make a task (an alias still names the
# original in its import), so it is parsed for errors but not analysed.
TRIGGERS: Final = ("create_task", "ensure_future", "run_coroutine_threadsafe", "gather")

# These use what the function they are given returns: a lambda handed to them is not a
# callback whose result is dropped.
_VALUE_CONSUMERS = frozenset({"map", "filter", "sorted", "min", "max", "reduce"})
_LONG = 40
_NO_FIX = "no automatic fix for this code"

_NEEDS = (
    "which keeps the task and logs its failure (needs `import tether`; bind a "
    "tether.TaskRegistry around it to drain it at shutdown)"
)
_LOST = "so the task may be garbage-collected mid-flight"


@dataclass(frozen=True)
class Finding:
    """One rule violation, placed as :mod:`ast` places nodes.

    ``line`` is 1-based; ``col_offset`` is 0-based and counts UTF-8 bytes.
    ``not_fixed`` says why ``--fix`` leaves it as it is; None if it rewrites it.
    ``endless``: the task's coroutine loops forever, so the fix spawns a daemon.
    """

    line: int
    col_offset: int
    code: str
    message: str
    not_fixed: str | None = _NO_FIX
    endless: bool = False


def check_module(tree: ast.Module) -> list[Finding]:
    """Return every finding in ``tree``, a module alone, in source order."""
    return Checker(tree).run()


def _short(expr: ast.expr | None) -> str:
    text = "..." if expr is None else ast.unparse(expr)
    return "..." if len(text) > _LONG or "\n" in text else text


def spawn_hint(
    call: ast.Call, method: str = "tether.spawn", *, daemon: bool = False
) -> str:
    """``tether.spawn(<the coroutine>, name=<the name>)`` for a task-making ``call``."""
    single = len(call.args) == 1 and not isinstance(call.args[0], ast.Starred)
    coroutine = call.args[0] if single else None
    words = [_short(coroutine)]
    words += [f"name={_short(kw.value)}" for kw in call.keywords if kw.arg == "name"]
    words += ["daemon=True"] if daemon else []
    return f"{method}({', '.join(words)})"


def _scope_name(scope: ast.AST) -> str:
    return getattr(scope, "name", "<lambda>")


def _is_str(expr: ast.expr) -> bool:
    return isinstance(expr, ast.JoinedStr) or (
        isinstance(expr, ast.Constant) and isinstance(expr.value, str)
    )


class Checker(Follow):
    """One pass over a module: the index, then each rule on each call."""

    def run(self, known: dict[ast.AST, Returner] | None = None) -> list[Finding]:
        """Apply every rule to every call of the module; ``known`` are the functions
        of the other modules that return a task."""
        findings: list[Finding] = []
        returners = {**(known or {}), **self.returners(known or {})}
        names = {returner.function.name for returner in returners.values()}
        for call in self._index.calls:
            member = self._index.asyncio_member(call.func)
            finding = None
            if self._index.creates_task(call):
                finding = self._dangling(call)
            elif member == "run_coroutine_threadsafe":
                finding = self._discarded_future(call)
            elif member == "gather":
                finding = self._gather(call)
            elif (
                callee_name(call.func) in names
                and (function := self._target(call)) is not None
                and function in returners
            ):
                finding = self._dropped_return(call, returners[function])
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
        if self._shields(parent, node):
            return (
                "is only shielded: asyncio.shield() keeps no reference to it once "
                "the wait on the shield is cancelled"
            )
        if isinstance(parent, ast.Lambda) and self._is_callback(parent):
            return "is returned by a lambda callback, whose return value is discarded"
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
            names = targets(parent)
            if len(names) == 1 and isinstance(names[0], ast.Name):
                name = names[0].id
                if not self._index.read_later(name, parent, until_bound=False):
                    return f"is stored in {name!r}, which is never used again"
        return None

    def _shields(self, parent: ast.AST | None, node: ast.AST) -> bool:
        return (
            isinstance(parent, ast.Call)
            and parent.args == [node]
            and not parent.keywords
            and self._index.asyncio_member(parent.func) == "shield"
        )

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

    # TET001, TET004

    def _dangling(self, call: ast.Call) -> Finding | None:
        how = self._dropped(call)
        if how is None and not self._kept_by_callback(call):
            return None
        callee = ast.unparse(call.func)
        endless = self._endless(call)
        hint = f"use {spawn_hint(call, daemon=endless)}, {_NEEDS}"
        if endless:
            coroutine = _short(getattr(call.args[0], "func", None))
            hint += (
                f"; {coroutine}() loops forever (a `while True` with no break or "
                "return), so it is a daemon, which a closing registry cancels instead "
                "of waiting for it (or use TaskRegistry.spawn_service to restart it "
                "when it fails)"
            )
        if how is not None and how.startswith("is only shielded"):
            hint = (
                f"use `await {spawn_hint(call)}`: cancelling a wait on a tether "
                "handle never cancels the task, and the registry keeps it"
            )
        if how is not None:
            message = f"dangling task: the result of {callee}() {how}, {_LOST}; {hint}"
            return Finding(
                call.lineno,
                call.col_offset,
                "TET001",
                message,
                self._refusal(call),
                endless=endless,
            )
        message = (
            f"task kept only by its done callback: the task {callee}() makes is "
            "used only to add a done callback, which does not keep it alive, "
            f"{_LOST}; {hint}, and add the callback to the handle it returns "
            "(Handle.add_done_callback)"
        )
        return Finding(call.lineno, call.col_offset, "TET004", message)

    def _refusal(self, call: ast.Call) -> str | None:
        """Why ``--fix`` cannot prove ``tether.spawn`` the same, or None if it can."""
        if not isinstance(self._parents.get(call), ast.Expr):
            return "only a call that is a statement of its own is rewritten"
        func = call.func
        member = self._index.asyncio_member(func)
        if isinstance(func, ast.Name) and (
            bound := self._index.local_binding(func.id, func)
        ):
            return (
                f"{func.id} is bound in {_scope_name(bound[0])}() to "
                f"{_short(self._index.rebound_to(func))}, not to asyncio's {member}"
            )
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

    def _endless(self, call: ast.Call) -> bool:
        """Whether the coroutine given to ``call`` is of an ``async def`` of the
        project that loops forever."""
        coroutine = call.args[0] if len(call.args) == 1 else None
        if not isinstance(coroutine, ast.Call):
            return False
        function = self._target(coroutine)
        return isinstance(function, ast.AsyncFunctionDef) and loops_forever(function)

    def _is_coroutine_call(self, expr: ast.expr) -> bool:
        """Whether ``expr`` calls an ``async def`` of the module (or of ``self``'s
        class) by name."""
        if not isinstance(expr, ast.Call):
            return False
        function = self._target(expr)
        return isinstance(function, ast.AsyncFunctionDef)

    # TET003

    def _dropped_return(self, call: ast.Call, returner: Returner) -> Finding | None:
        """TET003 if ``call`` drops the task ``returner``'s function returns."""
        node: ast.AST = call
        function = returner.function
        if isinstance(function, ast.AsyncFunctionDef):
            node = self._parents[call]
            if not isinstance(node, ast.Await):
                return None
        if not isinstance(self._parents.get(node), ast.Expr):
            return None
        if not returner.returns_task(call):
            return None
        callee = ast.unparse(call.func)
        made = returner.made
        message = (
            f"returned task dropped: {callee}() returns the task "
            f"{ast.unparse(made.func)}() makes at {returner.where(self._path)}, and "
            f"the result is discarded here, {_LOST}; in {returner.maker}, use "
            f"{spawn_hint(made)}, {_NEEDS}"
        )
        return Finding(call.lineno, call.col_offset, "TET003", message)

    # TET005, TET006

    def _discarded_future(self, call: ast.Call) -> Finding | None:
        how = self._dropped(call)
        if how is None:
            return None
        coroutine = call.args[0] if call.args else None
        if self._on_its_own_loop(call):
            message = (
                f"discarded future: {ast.unparse(call.func)}() is called in a "
                "coroutine with the loop that runs it, so the coroutine only gets "
                "scheduled on this same thread and nothing ever waits for it (a "
                ".result() here would block the loop for good); the result "
                f"{how}, {_LOST} and its failure is lost without a trace; use "
                f"tether.spawn({_short(coroutine)}), {_NEEDS}"
            )
            return Finding(call.lineno, call.col_offset, "TET005", message)
        message = (
            f"discarded future: the result of {ast.unparse(call.func)}() {how}, "
            f"{_LOST} and its failure is lost without a trace; use "
            f"spawn_threadsafe({_short(coroutine)}) on a tether.TaskRegistry, which "
            "keeps the task and reports its failure"
        )
        return Finding(call.lineno, call.col_offset, "TET005", message)

    def _on_its_own_loop(self, call: ast.Call) -> bool:
        """Whether ``call`` (``run_coroutine_threadsafe``) runs in an ``async def``
        and is given the loop of the calling thread."""
        loop = call.args[1] if len(call.args) > 1 else None
        loop = next((kw.value for kw in call.keywords if kw.arg == "loop"), loop)
        scope = self._index.scope_of(call)
        while scope is not None and not isinstance(scope, (*FUNCTIONS, ast.Module)):
            scope = self._index.scope_of(scope)
        return (
            isinstance(scope, ast.AsyncFunctionDef)
            and loop is not None
            and self._index.is_current_loop(loop)
        )

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
