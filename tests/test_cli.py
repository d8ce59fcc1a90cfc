"""The ``tether`` command as a shell sees it: its version, and a reader that
stops early (``tether demo | head -1``)."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import tether
from tether._cli import main

if TYPE_CHECKING:
    from pathlib import Path


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"tether {tether.__version__}\n"


def test_the_version_is_the_one_in_pyproject() -> None:
    from tether._version import source_version

    root = __import__("pathlib").Path(__file__).resolve().parent.parent
    assert tether.__version__ == source_version(root)


def test_a_source_tree_without_a_pyproject_has_an_unknown_version(
    tmp_path: Path,
) -> None:
    from tether._version import source_version

    assert source_version(tmp_path) == "0+unknown"


def test_an_unknown_attribute_of_the_module_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tether.nope  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [["demo"], ["scan", "--select", "TET", "src"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(
    command: list[str], tmp_path: Path
) -> None:
    # Enough findings to fill any pipe buffer, so the write must fail.
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "many.py").write_text(
        "import asyncio\n" + "asyncio.create_task(work())\n" * 5000
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tether", *command],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.close()  # the reader is gone before the first write
    err = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 1  # a guard against a hang, not a timing
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err
