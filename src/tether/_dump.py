"""Drawing what runs: the tree that ``TaskRegistry.dump()`` and ``tether.dump()``
return.

The registry collects the facts (its own state and each live task's); this module
only lays them out, and reads a coroutine's await chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["Node", "await_chain", "draw"]

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
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            code = frame.f_code
            if not code.co_filename.startswith(_PACKAGE_DIR):
                name = getattr(code, "co_qualname", code.co_name)  # 3.10: no qualname
                frames.append(f"{name} ({code.co_filename}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(frames) if frames else "not started"
