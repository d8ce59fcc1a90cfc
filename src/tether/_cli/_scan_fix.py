"""``tether scan --fix`` and ``--diff``: rewrite the mechanical ``TET001`` cases.

A discarded ``asyncio.create_task(coro)``, ``asyncio.ensure_future(coro)`` or
``loop.create_task(coro)`` becomes ``tether.spawn(coro)``, keeping ``name=``, and
``import tether`` is added after the module's leading imports if it is missing. The
rules decide what is provably the same (:meth:`._scan_rules._Checker._refusal`); this
module only edits, on libcst's concrete syntax tree, so every byte it does not
rewrite (formatting, comments, line endings, encoding) stays as it was.

The edit is checked before it is returned: the result must parse, and every line must
be unchanged but the lines of the rewritten calls and the added import. libcst is an
optional dependency (``pip install 'tether[fix]'``), imported only here.
"""

from __future__ import annotations

import ast
import warnings
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from libcst.metadata import CodeRange

__all__ = ["FixRefused", "fix_source"]

_IMPORT = "import tether"


class FixRefused(Exception):
    """The file cannot be rewritten safely; the message says why."""


class _Spawn(cst.CSTTransformer):
    """Point the calls that start at the given places at ``tether.spawn``."""

    def __init__(
        self,
        places: set[tuple[int, int]],
        positions: Mapping[cst.CSTNode, CodeRange],
    ) -> None:
        super().__init__()
        self.places = places
        self.positions = positions
        self.lines: set[int] = set()

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        start = self.positions[original_node].start
        if (start.line, start.column) not in self.places:
            return updated_node
        self.lines.add(start.line)
        spawn = cst.Attribute(value=cst.Name("tether"), attr=cst.Name("spawn"))
        return updated_node.with_changes(func=spawn)


def fix_source(data: bytes, places: Sequence[tuple[int, int]]) -> tuple[bytes, int]:
    """Rewrite the task-making calls that start at ``places`` into ``tether.spawn``.

    Args:
        data: the file's bytes.
        places: (1-based line, 0-based column in characters) of each call.

    Returns:
        The new bytes and the number of calls rewritten. A call not found at its place
        (inside parentheses, say) is left as it is.

    Raises:
        FixRefused: the name ``tether`` means something else in the module, or the
            edit would not keep the rest of the file as it was.
    """
    tree = _parse(data)
    imported = _tether_imported(tree)
    wrapper = MetadataWrapper(cst.parse_module(data), unsafe_skip_copy=True)
    spawn = _Spawn(set(places), wrapper.resolve(PositionProvider))
    fixed = wrapper.module.visit(spawn)
    if not spawn.lines:
        return data, 0
    result = fixed.bytes
    _check_lines(data, result, spawn.lines)
    if not imported:
        rewritten, result = result, _add_import(fixed).bytes
        _check_import(rewritten, result)
    try:
        _parse(result)
    except (SyntaxError, ValueError) as exc:  # pragma: no cover - a libcst bug
        raise FixRefused(f"the rewritten file would not parse: {exc}") from None
    return result, len(spawn.lines)


def _parse(data: bytes) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences are not ours
        return ast.parse(data)


def _tether_imported(tree: ast.Module) -> bool:
    """Whether a top-level ``import tether`` exists; refuses if the name ``tether``
    is bound to anything else anywhere in the module."""
    for node in ast.walk(tree):
        bound: list[str] = []
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound = [node.id]
        elif isinstance(node, ast.arg):
            bound = [node.arg]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = [node.name]
        elif isinstance(node, ast.ImportFrom):
            bound = [alias.asname or alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            bound = [
                alias.asname or alias.name.split(".")[0]
                for alias in node.names
                if alias.asname or alias.name.split(".")[0] != "tether"
            ]
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound = node.names
        if "tether" in bound:
            raise FixRefused("the name tether is bound to something else here")
    return any(
        isinstance(stmt, ast.Import)
        and any(alias.name == "tether" and not alias.asname for alias in stmt.names)
        for stmt in tree.body
    )


def _is_import(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _add_import(module: cst.Module) -> cst.Module:
    """``import tether`` after the leading imports (after the docstring if none)."""
    body = list(module.body)
    at = 1 if body and _is_docstring(body[0]) else 0
    while at < len(body) and _is_import(body[at]):
        at += 1
    body.insert(at, cst.parse_statement(_IMPORT + "\n"))
    return module.with_changes(body=body)


def _check_lines(before: bytes, after: bytes, lines: set[int]) -> None:
    """Refuse a rewrite that changes a line other than those of the calls."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    if (
        len(old) != len(new)
        or not {
            n for n, (a, b) in enumerate(zip(old, new, strict=True), start=1) if a != b
        }
        <= lines
    ):  # pragma: no cover - a bug in the rewrite
        raise FixRefused("the rewrite would change lines beyond the calls it fixes")


def _check_import(before: bytes, after: bytes) -> None:
    """Refuse an added import that is more than one new ``import tether`` line."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    at = next(
        (n for n, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old)
    )
    if (
        at >= len(new)
        or new[at].rstrip(b"\r\n") != _IMPORT.encode()
        or new[:at] + new[at + 1 :] != old
    ):  # pragma: no cover - a bug in the rewrite
        raise FixRefused("adding `import tether` would change other lines")
