"""``tether scan --fix`` and ``--diff``: rewrite the mechanical ``TET001`` cases.

A discarded ``asyncio.create_task(coro)``, ``asyncio.ensure_future(coro)`` or
``loop.create_task(coro)`` becomes ``tether.spawn(coro)``, keeping ``name=``, and
``import tether`` is added after the module's leading imports if it is missing. The
rules decide what is provably the same (:meth:`._scan_rules.Checker._refusal`); this
module only edits, on libcst's concrete syntax tree, so every byte it does not
rewrite (formatting, comments, line endings, encoding) stays as it was.

The edit is checked before it is returned: the result must parse, and every line must
be unchanged but the lines of the rewritten calls and the added import. libcst is an
optional dependency (``pip install 'tether[fix]'``), imported only here.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import os
import warnings
from importlib.util import decode_source
from typing import TYPE_CHECKING, NamedTuple

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ._scan_index import Index, dotted_name, pattern_name, walk_scope

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from libcst.metadata import CodeRange

__all__ = [
    "FixRefused",
    "Fixed",
    "fix_source",
    "needs",
    "rewrite_source",
    "unified_diff",
]

_IMPORT = "import tether"


class FixRefused(Exception):
    """The file cannot be rewritten safely; the message says why."""


class Fixed(NamedTuple):
    """What :func:`fix_source` did."""

    #: the new bytes of the file
    data: bytes
    #: how many calls it rewrote
    calls: int
    #: why it left each place it was given and did not rewrite
    refused: dict[tuple[int, int], str]
    #: how many of the rewritten calls it gave ``daemon=True``
    daemons: int = 0


def needs(registry: str | None, daemons: int = 0) -> str:
    """What the rewritten code needs, for the summary of ``--fix`` and ``--diff``;
    ``daemons`` of the calls were given ``daemon=True``."""
    if registry is not None:
        text = (
            f"The rewritten calls need {registry} to be an open tether.TaskRegistry "
            f"where they run (await {registry}.open() where the object starts, and "
            f"await {registry}.aclose() where it closes)."
        )
    else:
        text = (
            "The rewritten calls need tether installed (pip install tether), and run "
            "wherever create_task ran: where no tether.TaskRegistry is bound, a task "
            "goes to the default registry of the event loop's run, which holds it, "
            "logs its failure and names it if the run ends with it running, but "
            "neither drains nor limits; bind a TaskRegistry around the program for a "
            "graceful shutdown."
        )
    if daemons == 1:
        text += (
            " One of them spawns a daemon (daemon=True): its coroutine loops forever, "
            "so a closing registry cancels it instead of waiting for it."
        )
    elif daemons:
        text += (
            f" {daemons} of them spawn daemons (daemon=True): their coroutines loop "
            "forever, so a closing registry cancels them instead of waiting for them."
        )
    return text


class _Spawn(cst.CSTTransformer):
    """Point the calls that start at the given places at ``spawn``."""

    def __init__(
        self,
        places: set[tuple[int, int]],
        daemon: set[tuple[int, int]],
        spawn: cst.BaseExpression,
        positions: Mapping[cst.CSTNode, CodeRange],
    ) -> None:
        super().__init__()
        self.places = places
        self.daemon = daemon
        self.spawn = spawn
        self.positions = positions
        self.lines: set[int] = set()
        self.count = self.daemons = 0

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        where = self.positions[original_node]
        start = (where.start.line, where.start.column)
        if start not in self.places:
            return updated_node
        self.count += 1
        self.lines.add(where.start.line)
        args = list(updated_node.args)
        if start in self.daemon and args:
            self.daemons += 1
            self.lines.update(range(where.start.line, where.end.line + 1))
            last = args[-1]
            flag = cst.Arg(
                keyword=cst.Name("daemon"),
                value=cst.Name("True"),
                equal=cst.AssignEqual(
                    whitespace_before=cst.SimpleWhitespace(""),
                    whitespace_after=cst.SimpleWhitespace(""),
                ),
                comma=last.comma,  # a trailing comma, and its comment, stay last
            )
            args[-1] = last.with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            )
            args.append(flag)
        return updated_node.with_changes(func=self.spawn, args=args)


def fix_source(
    data: bytes, places: Sequence[tuple[int, int]], *, registry: str | None = None
) -> tuple[bytes, int]:
    """The new bytes and the number of calls rewritten: :func:`rewrite_source`
    without the reasons and the daemons, for a caller that only writes files."""
    return rewrite_source(data, places, registry=registry)[:2]


def rewrite_source(
    data: bytes,
    places: Sequence[tuple[int, int]],
    *,
    registry: str | None = None,
    daemon: Collection[tuple[int, int]] = (),
) -> Fixed:
    """Rewrite the task-making calls that start at ``places`` into ``tether.spawn``.

    Args:
        data: the file's bytes.
        places: (1-based line, 0-based column in characters) of each call.
        registry: a name or dotted name (``self._tasks``): rewrite to
            ``<registry>.spawn(...)``, and add no import.
        daemon: the places whose call is also given ``daemon=True`` (its coroutine
            loops forever).

    Returns:
        The new bytes, the number of calls rewritten, why each place left as it was
        is left (placed in the new bytes), and how many calls were given
        ``daemon=True``. A call not found at its place (inside parentheses, say) is
        left as it is, without a reason.

    Raises:
        FixRefused: the name ``tether`` means something else in the module, or the
            edit would not keep the rest of the file as it was.
        ValueError: ``registry`` is not a name or a dotted name.
    """
    tree = _parse(data)
    if registry is not None and dotted_name(registry) is None:
        message = (
            "registry= takes a name or a dotted name, such as self._tasks: "
            f"got {registry!r}"
        )
        raise ValueError(message)
    imported = registry is not None or _tether_imported(tree)
    refused = _refusals(tree, decode_source(data), places, registry)
    chosen = set(places) - set(refused)
    target = cst.parse_expression(f"{registry or 'tether'}.spawn")
    wrapper = MetadataWrapper(cst.parse_module(data), unsafe_skip_copy=True)
    spawn = _Spawn(chosen, set(daemon), target, wrapper.resolve(PositionProvider))
    fixed = wrapper.module.visit(spawn)
    if not spawn.count:
        return Fixed(data, 0, refused, 0)
    result = fixed.bytes
    _check_lines(data, result, spawn.lines)
    if not imported:
        rewritten, result = result, _add_import(fixed).bytes
        at = _check_import(rewritten, result)
        # The places of the calls left, in the new text.
        refused = {
            (line + (line > at), column): reason
            for (line, column), reason in refused.items()
        }
    try:
        _parse(result)
    except (SyntaxError, ValueError) as exc:  # pragma: no cover - a libcst bug
        raise FixRefused(f"the rewritten file would not parse: {exc}") from None
    return Fixed(result, spawn.count, refused, spawn.daemons)


def _refusals(
    tree: ast.Module,
    source: str,
    places: Sequence[tuple[int, int]],
    registry: str | None,
) -> dict[tuple[int, int], str]:
    """Why each call at ``places`` cannot be rewritten where it is: the name the new
    call starts with means something else there, or nothing."""
    lines = source.split("\n")
    wanted = set(places)
    index: Index | None = None
    refused: dict[tuple[int, int], str] = {}
    root = "tether" if registry is None else (dotted_name(registry) or [""])[0]
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        text = lines[call.lineno - 1]
        column = len(text.encode()[: call.col_offset].decode(errors="replace"))
        if (call.lineno, column) not in wanted:
            continue
        index = index or Index(tree)
        bound = index.local_binding(root, call)
        if registry is None and bound is not None:
            refused[call.lineno, column] = _shadowed(bound[0], bound[1])
        elif registry is not None and bound is None and root not in _globals(tree):
            refused[call.lineno, column] = (
                f"{root} is not bound where this call runs, so {registry}.spawn "
                "cannot be reached there"
            )
    return refused


def _shadowed(scope: ast.AST, binding: ast.AST) -> str:
    where = f"{getattr(scope, 'name', '<lambda>')}()"
    if isinstance(binding, ast.arg):
        how = f"tether is a parameter of {where}"
    elif isinstance(binding, ast.ExceptHandler):
        how = f"`except ... as tether` binds it in {where}"
    elif isinstance(binding, (ast.MatchAs, ast.MatchStar, ast.MatchMapping)):
        how = f"a case pattern binds tether in {where}"
    else:
        how = f"tether is a local of {where}"
    return f"{how}, so tether.spawn would not be tether's there"


def _globals(tree: ast.Module) -> set[str]:
    """The names the module binds at its top level, and the builtins."""
    names = set(dir(builtins))
    for node in walk_scope(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def unified_diff(path: str, before: bytes, after: bytes) -> bytes:
    """A unified diff from ``before`` to ``after`` that ``patch -p1`` applies.

    Lines are split on ``\\n`` alone, as patch splits them, and kept as bytes, so a
    CRLF or CR-only file, a file in another encoding than UTF-8 and a last line
    without its newline (marked as patch marks it) all come through.
    """
    # Relative paths get git's a/ and b/ prefixes, so `patch -p1` applies the diff.
    before_name, after_name = (
        (path, path) if os.path.isabs(path) else (f"a/{path}", f"b/{path}")
    )
    lines = difflib.diff_bytes(
        difflib.unified_diff,
        _lines(before),
        _lines(after),
        os.fsencode(before_name),
        os.fsencode(after_name),
    )
    out: list[bytes] = []
    for line in lines:
        out.append(line)
        if not line.endswith(b"\n"):
            out.append(b"\n\\ No newline at end of file\n")
    return b"".join(out)


def _lines(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def _parse(data: bytes) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences are not ours
        return ast.parse(data)


def _tether_imported(tree: ast.Module) -> bool:
    """Whether a top-level ``import tether`` exists; refuses if the module binds the
    name ``tether`` to anything else at its top level (a function's own binding
    refuses only the calls in it: see :func:`_refusals`)."""
    for node in walk_scope(tree):
        bound: list[str] = []
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound = [node.id]
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
        elif (captured := pattern_name(node)) is not None:
            bound = [captured]
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
    """Whether ``stmt`` starts with a string: the docstring, alone on its line or
    followed by ``; import x``."""
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
        and all(
            isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body[1:]
        )
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


def _check_import(before: bytes, after: bytes) -> int:
    """Refuse an added import that is more than one new ``import tether`` line;
    return the number of the lines before it."""
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
    return at
