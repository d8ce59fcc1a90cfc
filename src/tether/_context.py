"""The context variable under everything: the ambient registry and the lineage.

It sits at the bottom of the import graph so that every module can read it without
importing the registry. It follows the code as contexts do: a task runs in a copy of
its spawner's context, so nested code finds what its spawner saw.

One variable holds both facts, as a pair, so that a registry's block sets and
resets one variable instead of two and a spawner reads one (issue #27 item 4):

* ``[0]``, the ambient registry: the one :func:`tether.spawn` uses (``None``: none).
  Set by entering a registry (unless ``ambient=False``), by ``bind()`` and by the
  web integrations, which leave the lineage as it was.
* ``[1]``, the lineage: the registries whose tasks the current code descends from,
  outermost first. While a registry drains, only they may still spawn follow-up
  work into it. Entering a registry adds it; a task's context adds its registry.

Typed ``object`` so that this module needs no registry import; :mod:`tether._spawn`
checks what it reads.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TypeAlias

__all__ = ["Bound", "bound"]

#: (the ambient registry or ``None``, the lineage).
Bound: TypeAlias = "tuple[object, tuple[object, ...]]"

bound: ContextVar[Bound] = ContextVar("tether.registry", default=(None, ()))
