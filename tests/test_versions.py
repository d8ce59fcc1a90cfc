"""The version, the changelog and the docs' version notes agree.

The one source of the version is ``version`` in ``pyproject.toml``; ``tether
--version`` and ``tether.__version__`` read it (``tests/test_cli.py``), and so does
the docs' ``conf.py``. Between releases it is the next release's number with
``.devN`` (PEP 440: ``0.3.0.dev0`` sorts before ``0.3.0``); the release commit drops
the suffix (``docs/releasing.md``). These tests fail when a merge breaks the
agreement: a ``versionadded`` note naming a version newer than the package, a
release without its changelog section, a changelog section for a version not yet
released, or a changelog subsection that is not one of Keep a Changelog's.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from tether._version import source_version

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).resolve().parent.parent
CHANGELOG = ROOT / "CHANGELOG.md"

# `.. versionadded:: 0.3` in a docstring or an RST file, ```{versionadded} 0.3``` or
# `:::{versionchanged} 0.3` in a MyST page.
NOTE = re.compile(
    r"(?:\.\.\s+|\{)(versionadded|versionchanged|deprecated|versionremoved)"
    r"(?:::|\})[ \t]*(\S+)"
)
SECTION = re.compile(r"^## (.+)$", re.MULTILINE)
RELEASED = re.compile(r"^\[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$")
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def package_version() -> Version:
    return Version(source_version(ROOT))


def notes() -> list[tuple[str, str]]:
    """Every version note of the source and the docs: (where, version)."""
    files = [
        *sorted((ROOT / "src").rglob("*.py")),
        *sorted((ROOT / "docs").glob("*.md")),
    ]
    found: list[tuple[str, str]] = []
    for path in files:
        for match in NOTE.finditer(path.read_text(encoding="utf-8")):
            where = f"{path.relative_to(ROOT).as_posix()}: {match.group(1)}"
            found.append((where, match.group(2)))
    return found


def minor(version: Version) -> tuple[int, int]:
    return version.major, version.minor


def problems(
    version: Version, changelog: str, notes: list[tuple[str, str]]
) -> list[str]:
    """What disagrees between the package's version, the changelog and the notes."""
    found: list[str] = []
    if version.local is not None or version.post is not None:
        found.append(f"{version}: no local part (+...) and no .post in this scheme")
    if len(version.release) != 3:
        found.append(f"{version}: write MAJOR.MINOR.PATCH")
    if version.is_devrelease and version.dev != 0:
        found.append(f"{version}: between releases the version is X.Y.Z.dev0")
    # The notes: "New in version 0.3", never 0.3.0 or v0.3; none newer than the
    # package (the defect of issue #22: the package said 0.1.0.dev0 while the API
    # pages said "Changed in version 0.2"); a release carries the newest one
    # (DESIGN "Versions": if 0.3's features ship, the release is 0.3.x, not 0.2.x).
    noted: list[tuple[int, int]] = []
    for where, note in notes:
        if not re.fullmatch(r"\d+\.\d+", note):
            found.append(f"{where} {note}: name a minor version, as 0.3")
            continue
        noted.append(minor(Version(note)))
        if noted[-1] > minor(version):
            found.append(
                f"{where} {note} is newer than the package's version {version}: "
                f'set version = "{note}.0.dev0" in pyproject.toml'
            )
    final = not (version.is_devrelease or version.is_prerelease)
    if final and noted and max(noted) != minor(version):
        found.append(f"the release {version} must carry the newest noted version")
    # The changelog: "Unreleased" first (branches add their lines there), then one
    # section per release, newest first, none for a version not released yet.
    matches = list(SECTION.finditer(changelog))
    headings = [m.group(1) for m in matches]
    ends = [m.start() for m in matches[1:]] + [len(changelog)]
    bodies = [changelog[m.end() : end] for m, end in zip(matches, ends, strict=True)]
    if not headings or headings[0] != "[Unreleased]":
        found.append("CHANGELOG.md: the first section is '## [Unreleased]'")
    released: list[Version] = []
    for heading in headings[1:]:
        match = RELEASED.match(heading)
        if match is None:
            found.append(
                f"CHANGELOG.md: write {heading!r} as '## [X.Y.Z] - YYYY-MM-DD'"
            )
        else:
            released.append(Version(match["version"]))
    if released != sorted(released, reverse=True):
        found.append("CHANGELOG.md: the newest release first")
    if final and (not released or released[0] != version):
        found.append(f"CHANGELOG.md: no section '## [{version}] - DATE' on top")
    ahead = [
        str(v) for v in released if not final and v >= Version(version.base_version)
    ]
    if ahead:
        found.append(f"CHANGELOG.md: a section for {ahead}, the package is {version}")
    for heading, body in zip(headings, bodies, strict=True):
        kinds = re.findall(r"^### (.+)$", body, re.MULTILINE)
        for kind in kinds:
            if kind not in KINDS:
                found.append(f"CHANGELOG.md, {heading}: '### {kind}' is not in {KINDS}")
        for kind in sorted({kind for kind in kinds if kinds.count(kind) > 1}):
            found.append(f"CHANGELOG.md, {heading}: '### {kind}' twice")
    return found


def release_commit(changelog: str, version: str, date: str) -> str:
    """The changelog of the release commit, as docs/releasing.md says to write it."""
    return changelog.replace(
        "## [Unreleased]\n", f"## [Unreleased]\n\n## [{version}] - {date}\n", 1
    )


def test_the_version_the_changelog_and_the_notes_agree() -> None:
    changelog = CHANGELOG.read_text(encoding="utf-8")
    assert notes(), "no versionadded note found: is the pattern still right?"
    assert problems(package_version(), changelog, notes()) == []


def test_the_release_commit_of_the_procedure_agrees() -> None:
    """Dropping ``.dev0`` and opening the version's section, as the procedure says,
    gives a tree these checks accept: the procedure and the checks fit. (Until a
    note names the version being prepared, the checks say that a release today
    would carry an older number.) On a release commit, the tree is checked as is."""
    version = Version(package_version().base_version)
    changelog = CHANGELOG.read_text(encoding="utf-8")
    if package_version().is_devrelease:
        changelog = release_commit(changelog, str(version), "2026-12-31")
    expected: list[str] = []
    if minor(version) not in {minor(Version(note)) for _, note in notes()}:
        expected = [f"the release {version} must carry the newest noted version"]
    assert problems(version, changelog, notes()) == expected


def test_a_release_without_its_changelog_section_is_refused() -> None:
    changelog = "## [Unreleased]\n\n### Added\n\n- A feature.\n"
    assert problems(Version("0.3.0"), changelog, [("x.py", "0.3")]) == [
        "CHANGELOG.md: no section '## [0.3.0] - DATE' on top"
    ]


def test_a_note_newer_than_the_package_is_refused() -> None:
    """Issue #22's state: 0.1.0.dev0 beside "Changed in version 0.2"."""
    found = problems(Version("0.1.0.dev0"), "## [Unreleased]\n", [("x.py", "0.2")])
    assert found == [
        "x.py 0.2 is newer than the package's version 0.1.0.dev0: "
        'set version = "0.2.0.dev0" in pyproject.toml'
    ]


def test_a_release_older_than_its_notes_is_refused() -> None:
    changelog = "## [Unreleased]\n\n## [0.2.0] - 2026-01-01\n"
    found = problems(Version("0.2.0"), changelog, [("x.py", "0.3")])
    assert "the release 0.2.0 must carry the newest noted version" in found


def test_a_section_ahead_of_the_version_and_a_foreign_kind_are_refused() -> None:
    changelog = "## [Unreleased]\n\n### Added (0.2)\n\n## [0.3.0] - 2026-01-01\n"
    found = problems(Version("0.3.0.dev0"), changelog, [])
    assert len(found) == 2
    assert "CHANGELOG.md: a section for ['0.3.0'], the package is 0.3.0.dev0" in found
    assert "CHANGELOG.md, [Unreleased]: '### Added (0.2)' is not in" in found[1]


def test_the_docs_show_the_version_of_the_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # conf.py prepends src
    conf = runpy.run_path(str(ROOT / "docs" / "conf.py"))
    assert conf["release"] == str(package_version())
    assert conf["version"] == "{}.{}".format(*minor(package_version()))
