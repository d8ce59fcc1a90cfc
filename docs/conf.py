"""Sphinx configuration: MyST Markdown, the furo theme, offline (no intersphinx)."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tether._version import source_version  # noqa: E402  (needs src on sys.path)

project = "tether"
author = "The tether developers"
copyright = "2026, the tether developers"
# The version of the tree being built, from pyproject.toml (the one source): not the
# installed distribution's, which an editable install may hold from an older build.
release = source_version(ROOT)
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"tether {release}"
html_static_path = ["_static"]
html_css_files = ["wrap.css", "output.css"]


def _no_constructor(
    app: object,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    """Enums and ``Completions`` are never made by users: show no constructor (else
    ``Status(*values)`` and ``Completions``' private arguments would be shown)."""
    if what == "class" and (
        isinstance(obj, enum.EnumMeta)
        or name in ("tether.Completions", "tether.Pool")  # Pool: TaskRegistry.pool()
    ):
        return "", None
    return None


def _no_borrowed_docstring(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """A type alias has no docstring of its own: autodoc would show its type's
    (``str``'s for ``OnError``, ``types.UnionType``'s for ``Work``). The API page
    says what each alias is instead."""
    if what == "data" and getattr(obj, "__doc__", None) == type(obj).__doc__:
        lines.clear()


def setup(app: Any) -> None:
    app.connect("autodoc-process-signature", _no_constructor)
    app.connect("autodoc-process-docstring", _no_borrowed_docstring)
