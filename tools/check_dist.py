"""Check the release artifacts that ``python -m build`` wrote, and list what they carry.

    python tools/check_dist.py dist/

The folder must hold exactly one sdist and one wheel of the version in
``pyproject.toml``. Both must carry the LICENSE, and the wheel's metadata must name
it with the licence expression; the wheel carries ``tether/py.typed``; the sdist
carries every file that git tracks under its included paths (so the tests and the
docs build from it) and nothing else (no build output, no caches). Prints each
artifact's files, then ``ok``; exits 1 naming every problem found. ``twine check``
runs beside it (docs/releasing.md).
"""

from __future__ import annotations

import argparse
import email.parser
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The sdist: what pyproject.toml's [tool.hatch.build.targets.sdist] includes, the
# files every sdist has, and hatchling's own .gitignore copy.
SDIST_PATHS = ("src/tether", "tests", "tools", "docs")
SDIST_FILES = {"README.md", "CHANGELOG.md", "LICENSE", "pyproject.toml", "PKG-INFO"}
SDIST_EXTRA = {".gitignore"}


def project_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if found is None:
        sys.exit("pyproject.toml has no version")
    return found.group(1)


def tracked(paths: tuple[str, ...]) -> set[str]:
    """The files git tracks under ``paths`` (empty outside a git checkout)."""
    done = subprocess.run(
        ["git", "ls-files", "--", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return set(done.stdout.split()) if done.returncode == 0 else set()


def check_wheel(wheel: Path, version: str) -> list[str]:
    problems: list[str] = []
    names = zipfile.ZipFile(wheel).namelist()
    print(f"{wheel.name}: {len(names)} files")
    for name in names:
        print(f"  {name}")
    info = f"tether-{version}.dist-info"
    required_files = (f"{info}/licenses/LICENSE", "tether/py.typed")
    for required in required_files:
        if required not in names:
            problems.append(f"{wheel.name} lacks {required}")
    if f"{info}/METADATA" in names:
        raw = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
        metadata = email.parser.Parser().parsestr(raw)
        if metadata["License-Expression"] != "MIT":
            problems.append(f"{wheel.name}: License-Expression is not MIT")
        if "LICENSE" not in (metadata.get_all("License-File") or []):
            problems.append(f"{wheel.name}: no License-File: LICENSE in METADATA")
    else:
        problems.append(f"{wheel.name} lacks {info}/METADATA")
    if any(not name.startswith(("tether/", f"{info}/")) for name in names):
        problems.append(f"{wheel.name} carries files outside tether/ and {info}/")
    return problems


def check_sdist(sdist: Path, version: str) -> list[str]:
    problems: list[str] = []
    top = f"tether-{version}/"
    with tarfile.open(sdist) as archive:
        members = [m.name for m in archive.getmembers() if m.isfile()]
    print(f"{sdist.name}: {len(members)} files")
    outside = [name for name in members if not name.startswith(top)]
    if outside:
        problems.append(f"{sdist.name}: files outside {top}: {outside[:5]}")
    names = {name.removeprefix(top) for name in members}
    for name in sorted(names):
        print(f"  {name}")
    for required in SDIST_FILES:
        if required not in names:
            problems.append(f"{sdist.name} lacks {required}")
    expected = tracked(SDIST_PATHS)
    missing = sorted(expected - names)
    if missing:
        problems.append(f"{sdist.name} lacks tracked files: {missing[:10]}")
    unexpected = sorted(names - expected - SDIST_FILES - SDIST_EXTRA)
    if expected and unexpected:
        problems.append(f"{sdist.name} carries untracked files: {unexpected[:10]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    folder = parser.parse_args().folder
    version = project_version()
    wheels = sorted(folder.glob("*.whl"))
    sdists = sorted(folder.glob("*.tar.gz"))
    names = [path.name for path in [*wheels, *sdists]]
    expected = [f"tether-{version}-py3-none-any.whl", f"tether-{version}.tar.gz"]
    if names != expected:
        sys.exit(f"{folder} holds {names}; expected {expected} (rm -rf it, rebuild)")
    problems = check_sdist(sdists[0], version) + check_wheel(wheels[0], version)
    if problems:
        sys.exit("\n".join(problems))
    print(f"ok: tether {version}, sdist and wheel, each with its LICENSE")


if __name__ == "__main__":
    main()
