"""Where tasks are: the tree that ``TaskRegistry.dump()`` and ``tether.dump()``
return, and the one walker of a coroutine's await chain under it and under the
shutdown WARNINGs.

The registry collects the facts (its own state and each live task's); this module
lays them out, and reads where a coroutine is suspended: :func:`frames` walks the
``cr_await`` chain once for every reader, :func:`await_chain` shows all of it but
tether's own frames (``dump()``), :func:`suspended_at` the one frame that is the
application's own (the shutdown WARNING, the test plugin's leak report). It also
keeps the gathers that run now (run_all, settle_all, race, as_completed, amap) by
the task that awaits each, so that a task's line can show the children doing its
work.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Gather",
    "Node",
    "await_chain",
    "draw",
    "enter_gather",
    "frames",
    "gather_roots",
    "gathers_under",
    "leave_gather",
    "snapshot",
    "suspended_at",
]

T = TypeVar("T")

_PACKAGE_DIR = os.path.dirname(__file__) + os.sep


class Node:
    """One line of the tree and the lines nested under it. (A plain class: a
    dataclass is made by running generated code, at import.)"""

    __slots__ = ("children", "label")

    def __init__(self, label: str, children: list[Node] | None = None) -> None:
        self.label: str = label
        self.children: list[Node] = [] if children is None else children

    def __repr__(self) -> str:
        return f"Node({self.label!r}, {self.children!r})"


def draw(roots: list[Node]) -> str:
    """The tree as text, one node per line, nested with box-drawing lines."""
    lines: list[str] = []

    def walk(node: Node, lead: str, tail: str) -> None:
        lines.append(lead + node.label)
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            walk(
                child,
                tail + ("└── " if last else "├── "),
                tail + ("    " if last else "│   "),
            )

    for root in roots:
        walk(root, "", "")
    return "\n".join(lines)


def await_chain(coro: object) -> str:
    """Where a coroutine is suspended: each frame of its await chain outside
    tether, outermost first, as ``function (file:line)`` joined by `` > ``."""
    return " > ".join(frames(coro, skip=_is_tether)) or "not started"


def _is_tether(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR)


def suspended_at(coro: object) -> str:
    """Where a coroutine is suspended, as ``"function (file:line)"``: the innermost
    frame of its await chain that is the application's own, not the standard
    library's (asyncio's), anyio's, trio's, tether's nor an installed package's
    (under site-packages: an HTTP client's internals); failing that, the innermost
    that is not the standard library's, anyio's, trio's or tether's (an
    application installed in site-packages); the innermost frame when none is;
    ``"not started"`` before its first step."""
    found = (
        frames(coro, skip=_is_installed)
        or frames(coro, skip=_is_library)
        or frames(coro)
    )
    return found[-1] if found else "not started"


def frames(coro: object, *, skip: Callable[[str], bool] | None = None) -> list[str]:
    """The await chain of ``coro``, outermost first, less the frames whose file
    ``skip`` is true of."""
    found: list[str] = []
    while coro is not None:
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "gi_frame", None)
            or getattr(coro, "ag_frame", None)  # an async generator
        )
        if frame is not None:
            code = frame.f_code
            if skip is None or not skip(code.co_filename):
                name = getattr(code, "co_qualname", code.co_name)  # 3.10: no qualname
                found.append(f"{name} ({code.co_filename}:{frame.f_lineno})")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return found


def _package_dir(name: str) -> str | None:
    """The folder of an installed package, found without importing it."""
    import importlib.util  # here: only dump() and the shutdown WARNINGs need it

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # pragma: no cover - a broken install
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "")


@functools.cache
def _library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The folders whose code is not the application's, and the folders of
    installed packages inside them that are (site-packages under the stdlib)."""
    import sysconfig  # here: only dump() and the shutdown WARNINGs need it

    paths = sysconfig.get_paths()
    libraries = [os.path.join(paths[key], "") for key in ("stdlib", "platstdlib")]
    for package in ("anyio", "trio", "sniffio", "outcome", "tether"):
        folder = _package_dir(package)
        if folder is not None:
            libraries.append(folder)
    installed = [os.path.join(paths[key], "") for key in ("purelib", "platlib")]
    return tuple(libraries), tuple(installed)


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return True
    libraries, installed = _library_dirs()
    if not filename.startswith(libraries):
        return False
    # Under the stdlib's folder, site-packages holds installed packages: only
    # the ones named above are libraries.
    named = libraries[2:]
    return not filename.startswith(installed) or filename.startswith(named)


def _is_installed(filename: str) -> bool:
    """A library's, or an installed package's (under site-packages)."""
    return _is_library(filename) or filename.startswith(_library_dirs()[1])


class Gather(Protocol):
    """A running gather, as :func:`gathers_under` draws it (the engine)."""

    @property
    def backend(self) -> _TaskReader: ...

    @property
    def tasks(self) -> dict[int, object]: ...

    def node(self, now: float) -> Node: ...


class _TaskReader(Protocol):
    def tasks_of(self, held: list[object]) -> list[object]: ...


#: The gathers running now, by the task that awaits each (a task awaits one at a
#: time, but a stream's block may await a gather while the stream runs).
_gathers: dict[object, list[Gather]] = {}


def enter_gather(task: object, gather: Gather) -> None:
    """``gather`` runs now, awaited by (or read in) ``task``."""
    _gathers.setdefault(task, []).append(gather)


def leave_gather(task: object, gather: Gather) -> None:
    """``gather`` has ended: its last child has."""
    running = _gathers.get(task)
    if running is not None:
        running.remove(gather)
        if not running:
            del _gathers[task]


def gathers_under(task: object, now: float) -> list[Node]:
    """The gathers ``task`` awaits, each with its running children."""
    return [gather.node(now) for gather in snapshot(_gathers.get(task, ()))]


def gather_roots(drawn: set[int], now: float) -> list[Node]:
    """The gathers awaited by tasks that no tree draws (the main task, a task of
    no registry), each under a line naming that task."""
    running = snapshot(_gathers.items)
    inner = {
        id(task)
        for _, gathers in running
        for gather in gathers
        for task in gather.backend.tasks_of(snapshot(gather.tasks.values))
    }
    roots: list[Node] = []
    for task, gathers in running:
        if id(task) in drawn or id(task) in inner:
            continue
        name = getattr(task, "get_name", None)
        label = name() if callable(name) else getattr(task, "name", repr(task))
        roots.append(
            Node(
                f"task {label!r} (in no registry)",
                [gather.node(now) for gather in gathers],
            )
        )
    return roots


def snapshot(items: Iterable[T] | Callable[[], Iterable[T]]) -> list[T]:
    """A list of ``items``, taken again if another thread changed them meanwhile
    (``dump()`` may be called from a watchdog thread)."""
    while True:
        try:
            return list(items() if callable(items) else items)
        except RuntimeError:  # changed size during iteration
            continue
