"""Drawing what runs: the tree that ``TaskRegistry.dump()`` and ``tether.dump()``
return.

The registry collects the facts (its own state and each live task's); this module
only lays them out, and reads a coroutine's await chain. It also keeps the gathers
that run now (run_all, settle_all, race, as_completed, amap) by the task that awaits
each, so that a task's line can show the children doing its work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Gather",
    "Node",
    "await_chain",
    "draw",
    "enter_gather",
    "gather_roots",
    "gathers_under",
    "leave_gather",
    "snapshot",
]

T = TypeVar("T")

_PACKAGE_DIR = os.path.dirname(__file__) + os.sep


@dataclass
class Node:
    """One line of the tree and the lines nested under it."""

    label: str
    children: list[Node] = field(default_factory=list["Node"])


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
    frames: list[str] = []
    while coro is not None:
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "gi_frame", None)
            or getattr(coro, "ag_frame", None)  # an async generator
        )
        if frame is not None:
            code = frame.f_code
            if not code.co_filename.startswith(_PACKAGE_DIR):
                name = getattr(code, "co_qualname", code.co_name)  # 3.10: no qualname
                frames.append(f"{name} ({code.co_filename}:{frame.f_lineno})")
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    return " > ".join(frames) if frames else "not started"


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
