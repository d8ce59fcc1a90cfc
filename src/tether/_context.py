"""The two context variables under everything: the ambient registry and the lineage.

They sit at the bottom of the import graph so that every module can read them
without importing the registry. Both follow the code as contexts do: a task runs in
a copy of its spawner's context, so nested code finds what its spawner saw.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["ambient", "lineage"]

#: The registry :func:`tether.spawn` uses; set by entering a registry and by
#: ``bind()``. Typed ``object`` so this module needs no registry import;
#: :mod:`tether._spawn` checks what it reads.
ambient: ContextVar[object] = ContextVar("tether.registry", default=None)

#: The registries whose tasks the current code descends from: while a registry
#: drains, only they may still spawn follow-up work into it.
lineage: ContextVar[tuple[object, ...]] = ContextVar("tether.lineage", default=())
