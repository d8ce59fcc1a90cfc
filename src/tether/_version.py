"""The version of tether, read once, when ``tether.__version__`` is first asked for.

The one source is ``version`` in ``pyproject.toml``: an installed tether reads it from
its distribution's metadata; a source tree on ``sys.path`` that was never installed
reads the file itself. ``importlib.metadata`` is imported only here, because it costs
more than the rest of ``import tether`` together.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["version"]

_UNKNOWN = "0+unknown"


def version() -> str:
    """The version of the tether being imported."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version

    try:
        return distribution_version("tether")
    except PackageNotFoundError:
        return source_version(Path(__file__).resolve().parent.parent.parent)


def source_version(root: Path) -> str:
    """The version in ``root/pyproject.toml``, for a source tree that was never
    installed (``PYTHONPATH=src``), or ``0+unknown``."""
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return _UNKNOWN
    project = re.search(r"^\[project\]$(.*?)(?=^\[)", text + "\n[", re.M | re.S)
    found = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
    return found.group(1) if found else _UNKNOWN
