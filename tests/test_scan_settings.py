"""``[tool.tether.scan]`` in ``pyproject.toml``: the nearest table per file (nested
projects), the command line winning, ``--show-settings``, the ``--fix`` registry, and
tables that cannot be used.
"""

from __future__ import annotations

import os
import textwrap
from typing import TYPE_CHECKING

import pytest

from helpers import DANGLING, SPAWNED, make_tree, run_scan
from tether._cli import _scan_fix, _scan_settings

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from pathlib import Path

# TET001 at line 3, TET006 at line 4.
TWO_CODES = (
    "import asyncio\n"
    "async def f():\n"
    "    asyncio.create_task(g())\n"
    "    asyncio.gather(g())\n"
)


def table(text: str) -> str:
    return "[tool.tether.scan]\n" + textwrap.dedent(text)


def found(out: str) -> list[tuple[str, str]]:
    """(path relative to the current folder, code) of each report."""
    return [(line.split(":")[0], line.split(" ")[1]) for line in out.splitlines()]


@pytest.fixture
def nested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose ``pyproject.toml`` ignores TET006, with a sub-project that
    selects only TET006, and one whose ``pyproject.toml`` says nothing of tether."""
    make_tree(
        tmp_path,
        {
            "pyproject.toml": table('ignore = ["TET006"]\n'),
            "a.py": TWO_CODES,
            "sub/pyproject.toml": "[project]\nname = 'sub'\n"
            + table(
                """
                select = ["TET006"]
                exclude = ["gen/x.py"]
                per-file-ignores = {"tests/*" = ["TET006"]}
                """
            ),
            "sub/b.py": TWO_CODES,
            "sub/gen/x.py": TWO_CODES,
            "sub/tests/t.py": TWO_CODES,
            "gen/x.py": TWO_CODES,  # the sub-project's exclude is relative to it
            "other/pyproject.toml": "[project]\nname = 'other'\n",
            "other/c.py": TWO_CODES,
        },
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_file_gets_the_nearest_table(
    nested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_scan(capsys, ".")
    assert found(out) == [
        ("a.py", "TET001"),
        (os.path.join("gen", "x.py"), "TET001"),
        (os.path.join("other", "c.py"), "TET001"),
        (os.path.join("sub", "b.py"), "TET006"),
    ]
    assert status == 1
    # The same from inside the sub-project, or naming its file.
    status, out, _ = run_scan(capsys, os.path.join("sub", "tests", "t.py"))
    assert (status, out) == (0, "")


def test_the_command_line_wins(
    nested: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run_scan(capsys, "--select", "TET001", "--ignore", "", "sub")
    assert found(out) == [
        (os.path.join("sub", "b.py"), "TET001"),
        (os.path.join("sub", "tests", "t.py"), "TET001"),  # TET006 ignored there
    ]
    # --exclude replaces the table's, --extend-exclude adds to it.
    _, out, _ = run_scan(capsys, "--exclude", "tests", "sub")
    assert found(out) == [
        (os.path.join("sub", "b.py"), "TET006"),
        (os.path.join("sub", "gen", "x.py"), "TET006"),
    ]
    _, out, _ = run_scan(capsys, "--extend-exclude", "b.py", "sub")
    assert found(out) == []


def test_respect_gitignore_and_force_exclude_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(
        tmp_path,
        {
            "pyproject.toml": table(
                "respect-gitignore = false\nforce-exclude = true\n"
            ),
            ".gitignore": "ignored.py\n",
            "ignored.py": DANGLING,
            "build/b.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    assert run_scan(capsys, "--show-files", ".")[1] == "ignored.py\n"
    assert run_scan(capsys, "--show-files", "--respect-gitignore", ".")[1] == ""
    build = os.path.join("build", "b.py")
    assert run_scan(capsys, "--show-files", build)[1] == ""
    assert run_scan(capsys, "--show-files", "--no-force-exclude", build)[1] == (
        build + "\n"
    )


def test_show_settings(nested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_scan(
        capsys, "--show-settings", "--extend-exclude", "*_pb2.py", "sub", "other/c.py"
    )
    assert (status, err) == (0, "")
    default = (
        '".*/", "__pycache__", "__pypackages__", "_build", "buck-out", "build", '
        '"dist", "dist-packages", "node_modules", "site-packages", "venv"'
    )
    assert out.splitlines() == [
        f"# sub: [tool.tether.scan] of {os.path.join('sub', 'pyproject.toml')}, "
        "and the command line",
        "# codes reported: TET006",
        "# (in the files that no per-file-ignores pattern names)",
        'select = ["TET006"]',
        "ignore = []",
        'exclude = ["gen/x.py"]',
        'extend-exclude = ["*_pb2.py"]',
        'per-file-ignores = {"tests/*" = ["TET006"]}',
        "respect-gitignore = true",
        "force-exclude = false",
        "# registry: not set, so --fix writes tether.spawn(...)",
        "# other/c.py: [tool.tether.scan] of pyproject.toml, and the command line",
        "# codes reported: TET001, TET002, TET003, TET004, TET005",
        'select = ["TET"]',
        'ignore = ["TET006"]',
        f"exclude = [{default}]",
        'extend-exclude = ["*_pb2.py"]',
        "per-file-ignores = {}",
        "respect-gitignore = true",
        "force-exclude = false",
        "# registry: not set, so --fix writes tether.spawn(...)",
    ]


def test_show_settings_without_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _, out, _ = run_scan(capsys, "--show-settings", "--registry", "app.tasks", "x.py")
    lines = out.splitlines()
    assert lines[0] == (
        "# x.py: the built-in defaults (no [tool.tether.scan] above it), "
        "and the command line"
    )
    assert lines[-1] == 'registry = "app.tasks"'


def test_the_registry_reaches_the_fix_from_the_table_or_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(
        tmp_path,
        {
            "pyproject.toml": table('registry = "self._tasks"\n'),
            "lib/a.py": DANGLING,
            "app/pyproject.toml": table(""),
            "app/b.py": DANGLING,
        },
    )
    seen: list[tuple[str, str | None]] = []
    real_fix = _scan_fix.rewrite_source

    def fix(
        data: bytes,
        places: Sequence[tuple[int, int]],
        *,
        registry: str | None = None,
        daemon: Collection[tuple[int, int]] = (),
    ) -> _scan_fix.Fixed:
        seen.append((data.decode(), registry))
        return real_fix(data, places)

    monkeypatch.setattr(_scan_fix, "rewrite_source", fix)
    monkeypatch.chdir(tmp_path)
    assert run_scan(capsys, "--fix", ".")[0] == 0
    assert seen == [(DANGLING, None), (DANGLING, "self._tasks")]  # app/, then lib/
    assert (tmp_path / "lib" / "a.py").read_text() == SPAWNED
    seen.clear()
    make_tree(tmp_path, {"lib/a.py": DANGLING, "app/b.py": DANGLING})
    assert run_scan(capsys, "--diff", "--registry", " registry ", ".")[0] == 1
    assert seen == [(DANGLING, "registry"), (DANGLING, "registry")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'selects = ["TET001"]',
            "[tool.tether.scan] has no option 'selects'; the options are select, "
            "ignore, exclude, extend-exclude, per-file-ignores, respect-gitignore, "
            "force-exclude, registry",
        ),
        (
            'select = "TET001"',
            "[tool.tether.scan] select must be a list of codes, like "
            "select = [\"TET001\"]; got 'TET001'",
        ),
        (
            'ignore = ["TET9"]',
            "[tool.tether.scan] ignore: unknown code 'TET9': the codes are TET001, "
            "TET002, TET003, TET004, TET005, TET006",
        ),
        (
            "exclude = [1]",
            "[tool.tether.scan] exclude must be a list of strings, like exclude = "
            '["build"]; got [1]',
        ),
        (
            'per-file-ignores = ["tests/*"]',
            "[tool.tether.scan] per-file-ignores must be a table of patterns and "
            'codes, like {"tests/*" = ["TET002"]}; got [\'tests/*\']',
        ),
        (
            'per-file-ignores = {"tests/*" = "TET002"}',
            "[tool.tether.scan] per-file-ignores 'tests/*' must be a list of codes, "
            "like per-file-ignores 'tests/*' = [\"TET001\"]; got 'TET002'",
        ),
        (
            'force-exclude = "yes"',
            "[tool.tether.scan] force-exclude must be true or false; got 'yes'",
        ),
        (
            'registry = "self."',
            "[tool.tether.scan] registry: 'self.' is not a name or a dotted name: "
            "give the registry as the fixed code should name it, such as "
            "self._tasks or app_registry",
        ),
        (
            "registry = 3",
            "[tool.tether.scan] registry must be a name or a dotted name, like "
            '"self._tasks"; got 3',
        ),
    ],
)
def test_a_table_that_cannot_be_used_stops_everything(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str,
) -> None:
    # The file before the bad table is not fixed: nothing runs before all is read.
    make_tree(
        tmp_path,
        {"a/a.py": DANGLING, "b/pyproject.toml": table(text), "b/b.py": DANGLING},
    )
    monkeypatch.chdir(tmp_path)
    status, out, err = run_scan(capsys, "--fix", ".")
    where = os.path.join("b", "pyproject.toml")
    assert (status, out, err) == (2, "", f"tether scan: {where}: {message}\n")
    assert (tmp_path / "a" / "a.py").read_text() == DANGLING


def test_invalid_toml_and_a_bad_registry_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"pyproject.toml": "[tool.tether.scan\n", "a.py": DANGLING})
    monkeypatch.chdir(tmp_path)
    status, _, err = run_scan(capsys, ".")
    assert status == 2
    assert err.startswith("tether scan: pyproject.toml: not valid TOML: ")
    with pytest.raises(SystemExit) as exit_:
        run_scan(capsys, "--registry", "a b", ".")
    assert exit_.value.code == 2
    assert "argument --registry: 'a b' is not a name or a dotted name" in (
        capsys.readouterr().err
    )


def test_without_a_toml_reader_a_table_is_an_error_that_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.10 without tomli: a pyproject.toml that names tether is refused,
    one that does not is read as having no table."""
    monkeypatch.setattr(_scan_settings, "_toml_reader", lambda: None)
    make_tree(
        tmp_path,
        {
            "proj/pyproject.toml": table("ignore = []\n"),
            "proj/a.py": DANGLING,
            "plain/pyproject.toml": "[project]\nname = 'plain'\n",
            "plain/b.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    status, _, err = run_scan(capsys, "proj")
    where = os.path.join("proj", "pyproject.toml")
    assert (status, err) == (
        2,
        f"tether scan: {where} may configure tether scan, and reading TOML on "
        "Python 3.10 needs tomli: pip install 'tether[scan]' (or pip install tomli)\n",
    )
    assert run_scan(capsys, "plain")[0] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.tether]\nscan = 3\n", "[tool.tether.scan] must be a table"),
        ("tool = 3  # tether\n", None),  # not a table of tools: no table here
        ("[tool]\ntether = 3\n", None),
    ],
)
def test_a_document_of_another_shape(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    text: str,
    message: str | None,
) -> None:
    make_tree(tmp_path, {"pyproject.toml": text, "a.py": DANGLING})
    monkeypatch.chdir(tmp_path)
    status, _, err = run_scan(capsys, ".")
    if message is None:
        assert status == 1
    else:
        assert (status, err) == (2, f"tether scan: pyproject.toml: {message}\n")


def test_an_unreadable_pyproject_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").mkdir()  # a folder by that name: reading it fails
    make_tree(tmp_path, {"a.py": DANGLING})
    real_isfile = os.path.isfile

    def isfile(path: str) -> bool:  # so that the resolver tries to read it
        return path.endswith("pyproject.toml") or real_isfile(path)

    monkeypatch.setattr(os.path, "isfile", isfile)
    monkeypatch.chdir(tmp_path)
    status, _, err = run_scan(capsys, "a.py")
    assert status == 2
    assert err == "tether scan: pyproject.toml: Is a directory\n"


def test_scan_paths_uses_the_settings_unless_given_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function the benchmarks call."""
    from tether._cli._scan import scan_paths

    make_tree(tmp_path, {"pyproject.toml": table('ignore = ["TET001"]\n')})
    make_tree(tmp_path, {"a.py": TWO_CODES})
    reports, scanned = scan_paths([str(tmp_path)])
    assert ([r.code for r in reports], scanned) == (["TET006"], 1)
    reports, _ = scan_paths([str(tmp_path)], frozenset({"TET001"}))
    assert [r.code for r in reports] == ["TET001"]


def test_a_bad_key_is_refused_even_when_the_command_line_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(
        tmp_path, {"pyproject.toml": table('select = "TET001"\n'), "a.py": DANGLING}
    )
    monkeypatch.chdir(tmp_path)
    status, _, err = run_scan(capsys, "--select", "TET001", ".")
    assert status == 2
    assert err.startswith("tether scan: pyproject.toml: [tool.tether.scan] select ")
