"""Try the pre-commit hook of ``.pre-commit-hooks.yaml`` on a sample project.

    python tools/check_precommit_hook.py

What a user of the hook gets, with ``pre-commit try-repo``: pre-commit clones this
repository (its HEAD, plus uncommitted changes if any), installs it into a fresh
hook environment from the package index, and runs ``tether-scan`` in a sample git
project made here: the run must fail on a file with a dangling task, naming TET001
and the line, pass on a clean file, and leave out a file that the project's
``[tool.tether.scan]`` excludes, as ``tether scan .`` does. pre-commit's cache is a
fresh folder, so nothing installed before is reused; no standard input is read.
Needs ``pre-commit`` and ``git`` on PATH (``pip install --group release``). Exits 1
naming what failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DANGLING = textwrap.dedent(
    """\
    import asyncio


    async def notify(user_id: int) -> None:
        await asyncio.sleep(0)


    async def handle(user_id: int) -> None:
        asyncio.create_task(notify(user_id))
    """
)
CLEAN = textwrap.dedent(
    """\
    import tether


    async def notify(user_id: int) -> None:
        pass


    async def handle(user_id: int) -> None:
        tether.spawn(notify, user_id)
    """
)


def try_repo(project: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run(
        ["pre-commit", "try-repo", str(ROOT), "tether-scan", "--color", "never", *args],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,  # a guard against a hang: installing the hook takes ~30 s
    )
    return done.returncode, done.stdout + done.stderr


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tether-precommit-") as tmp:
        project = Path(tmp, "project")
        (project / "app").mkdir(parents=True)
        (project / "app" / "handlers.py").write_text(DANGLING, encoding="utf-8")
        (project / "app" / "clean.py").write_text(CLEAN, encoding="utf-8")
        # pre-commit names every file, excluded or not: the hook's --force-exclude
        # keeps the project's excludes (a hook without it reported this file).
        (project / "legacy").mkdir()
        (project / "legacy" / "old.py").write_text(DANGLING, encoding="utf-8")
        (project / "pyproject.toml").write_text(
            '[tool.tether.scan]\nexclude = ["legacy/"]\n', encoding="utf-8"
        )
        env = {**os.environ, "PRE_COMMIT_HOME": str(Path(tmp, "cache"))}
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        subprocess.run(["git", "add", "."], cwd=project, check=True)

        code, output = try_repo(project, env, "--all-files")
        print(output)
        finding = "app/handlers.py:9:5: TET001"
        if code != 1 or finding not in output or "Failed" not in output:
            sys.exit(f"expected the hook to fail with {finding!r} (exit {code})")
        if "legacy/old.py" in output:
            sys.exit("the hook scanned legacy/old.py, which pyproject.toml excludes")

        code, output = try_repo(project, env, "--files", "app/clean.py")
        print(output)
        if code != 0 or "Passed" not in output:
            sys.exit(f"expected the hook to pass on app/clean.py (exit {code})")
    print(
        "ok: the tether-scan hook fails on a dangling task, passes clean code and "
        "keeps the project's excludes"
    )


if __name__ == "__main__":
    main()
