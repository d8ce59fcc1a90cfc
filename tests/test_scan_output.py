"""The formats CI reads (GitHub workflow commands, SARIF) and the exit status of each
outcome, as the migration page documents them."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

import tether
from helpers import DANGLING, SPAWNED, make_tree, run_scan

if TYPE_CHECKING:
    from pathlib import Path


UNDECLARED = "invalid or missing encoding declaration"


def message_of(capsys: pytest.CaptureFixture[str], path: str) -> str:
    """The message of the one finding in ``path``, as the text format prints it:
    the rules own its words, the formats only carry them."""
    _, out, _ = run_scan(capsys, path)
    return out.split(" ", 2)[2].rstrip("\n")


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One finding, one syntax error, one file that cannot be decoded; a name with a
    comma and a percent sign, which the formats must escape."""
    make_tree(
        tmp_path,
        {
            "a,b%.py": DANGLING,
            "bad.py": "def (:\n",
            "latin.py": b"x = '\xff'\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_github_workflow_commands(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = message_of(capsys, "a,b%.py")
    status, out, err = run_scan(capsys, "--format", "github", ".")
    assert out.splitlines() == [
        "::error file=a%2Cb%25.py,line=2,col=1,title=tether scan (TET001)::"
        f"a,b%25.py:2:1: TET001 {message}",
        "::error file=bad.py,line=1,col=5,title=tether scan (E999)::"
        "bad.py:1:5: E999 SyntaxError: invalid syntax",
        "::error file=latin.py,title=tether scan (E902)::latin.py:0:0: E902 cannot "
        "decode the file: invalid or missing encoding declaration",
    ]
    assert (status, err) == (2, "")


def test_sarif(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = message_of(capsys, "a,b%.py")
    status, out, err = run_scan(capsys, "--format", "sarif", ".", str(tree / "bad.py"))
    log = json.loads(out)
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("tether scan", tether.__version__)
    assert [rule["id"] for rule in driver["rules"]] == [
        *(f"TET00{n}" for n in range(1, 7)),
        "E902",
        "E999",
    ]
    assert run["results"] == [
        {
            "ruleId": "TET001",
            "level": "warning",
            "message": {"text": message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "a%2Cb%25.py"},
                        "region": {"startLine": 2, "startColumn": 1},
                    }
                }
            ],
        },
        {
            "ruleId": "E999",
            "level": "error",
            "message": {"text": "SyntaxError: invalid syntax"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": "bad.py"},
                        "region": {"startLine": 1, "startColumn": 5},
                    }
                }
            ],
        },
        {
            "ruleId": "E902",
            "level": "error",
            "message": {"text": f"cannot decode the file: {UNDECLARED}"},
            "locations": [
                {"physicalLocation": {"artifactLocation": {"uri": "latin.py"}}}
            ],
        },
        # A path given absolute is a file: URI.
        {
            "ruleId": "E999",
            "level": "error",
            "message": {"text": "SyntaxError: invalid syntax"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": (tree / "bad.py").as_uri()},
                        "region": {"startLine": 1, "startColumn": 5},
                    }
                }
            ],
        },
    ]
    assert (status, err) == (2, "")


def test_diff_prints_only_a_diff(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for form, name in [("github", "GitHub annotations"), ("sarif", "SARIF")]:
        assert run_scan(capsys, "--diff", "--format", form, ".") == (
            2,
            "",
            f"tether scan: --diff prints a diff, not {name}\n",
        )


@pytest.mark.parametrize(
    ("files", "argv", "status"),
    [
        pytest.param({"a.py": "x = 1\n"}, [], 0, id="nothing found"),
        pytest.param({"a.py": DANGLING}, [], 1, id="a finding"),
        pytest.param({"a.py": DANGLING, "b.py": "def (:\n"}, [], 2, id="a bad input"),
        pytest.param({"a.py": DANGLING}, ["--fix"], 0, id="fix: all fixed"),
        pytest.param(
            {"a.py": DANGLING + "asyncio.gather(g())\n"},
            ["--fix"],
            1,
            id="fix: something left",
        ),
        pytest.param({"a.py": DANGLING}, ["--diff"], 1, id="diff: would change"),
        pytest.param({"a.py": SPAWNED}, ["--diff"], 0, id="diff: nothing to change"),
        pytest.param(
            {"a.py": DANGLING, "pyproject.toml": "[tool.tether.scan]\nx = 1\n"},
            [],
            2,
            id="a table that cannot be used",
        ),
        pytest.param({"a.py": DANGLING}, ["--show-files"], 0, id="show-files"),
        pytest.param({"a.py": DANGLING}, ["--show-settings"], 0, id="show-settings"),
    ],
)
def test_exit_status(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    argv: list[str],
    status: int,
) -> None:
    make_tree(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    for form in ("text", "json", "github", "sarif"):
        if "--diff" in argv and form != "text":
            continue
        assert run_scan(capsys, *argv, "--format", form, ".")[0] == status
        make_tree(tmp_path, files)  # as it was before a fix


def test_a_fix_not_written_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    os.chmod(tmp_path / "a.py", 0o444)
    assert run_scan(capsys, "--fix", str(tmp_path))[0] == 2
