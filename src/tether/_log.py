"""The logger ``"tether"``, defined once: every record tether writes goes to it.

Each record carries two extra fields, ``tether_registry`` and ``tether_task`` (the
names, or ``None``), so a handler or a filter can route by them.
"""

from __future__ import annotations

import logging

__all__ = ["logger"]

logger = logging.getLogger("tether")
