"""Which files ``tether scan`` reads: ``.gitignore`` (negations, nested files,
``info/exclude``), the built-in excludes, ``--exclude`` / ``--extend-exclude``, paths
given by name and ``--force-exclude``, and symbolic links in and out of the tree.

Each test builds its tree in ``tmp_path``; a folder holding ``.git`` is a repository
to the scan, as to git. ``--show-files`` prints what a scan would read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from helpers import DANGLING, make_tree, run_scan

if TYPE_CHECKING:
    from pathlib import Path


def shown_files(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    status, out, _ = run_scan(capsys, "--show-files", *argv)
    assert status == 0
    return out.splitlines()


def test_gitignore_negations_nested_files_and_info_exclude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git" / "info").mkdir(parents=True)
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "private.py\n",
            ".gitignore": (
                "# generated code\n"
                "generated/\n"
                "!generated/keep.py\n"  # cannot bring back a file of an ignored folder
                "*.gen.py\n"
                "!keep.gen.py\n"
                "/top_only.py\n"
                "docs/**/conf.py\n"
                "data[0-9].py\n"
                "\\#hash.py\n"
            ),
            "sub/.gitignore": "!x.gen.py\nlocal.py\n",
            "pkg/a.py": DANGLING,
            "generated/keep.py": DANGLING,
            "generated/lib/z.py": DANGLING,
            "x.gen.py": DANGLING,
            "keep.gen.py": DANGLING,
            "sub/x.gen.py": DANGLING,
            "sub/y.gen.py": DANGLING,
            "sub/local.py": DANGLING,
            "local.py": DANGLING,
            "top_only.py": DANGLING,
            "sub/top_only.py": DANGLING,
            "private.py": DANGLING,
            "docs/conf.py": DANGLING,
            "docs/a/b/conf.py": DANGLING,
            "data1.py": DANGLING,
            "dataX.py": DANGLING,
            "#hash.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    assert shown_files(capsys, ".") == [
        "dataX.py",
        "keep.gen.py",
        "local.py",
        os.path.join("pkg", "a.py"),
        os.path.join("sub", "top_only.py"),
        os.path.join("sub", "x.gen.py"),
    ]
    # Off, only the built-in excludes apply (and .git is a hidden folder).
    assert len(shown_files(capsys, "--no-respect-gitignore", ".")) == 17


def test_a_scan_below_the_top_of_the_repository_reads_the_gitignores_above(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".git").mkdir()
    make_tree(
        tmp_path,
        {".gitignore": "*_pb2.py\n", "pkg/a.py": DANGLING, "pkg/msg_pb2.py": DANGLING},
    )
    assert shown_files(capsys, str(tmp_path / "pkg")) == [str(tmp_path / "pkg/a.py")]


def test_a_nested_repository_starts_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A submodule or vendored checkout has its own ``.git``: as in git, the
    ``.gitignore`` files of the repository around it do not apply inside it."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "vendor" / "lib" / ".git").mkdir(parents=True)
    make_tree(
        tmp_path,
        {
            ".gitignore": "gen_*.py\n",
            "gen_a.py": DANGLING,
            "vendor/lib/gen_b.py": DANGLING,
        },
    )
    assert shown_files(capsys, str(tmp_path)) == [
        str(tmp_path / "vendor" / "lib" / "gen_b.py")
    ]


def test_outside_a_repository_only_the_gitignores_from_the_folder_given_down_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "a.py\n",
            "proj/.gitignore": "b.py\n",
            "proj/a.py": DANGLING,
            "proj/b.py": DANGLING,
        },
    )
    assert shown_files(capsys, str(tmp_path / "proj")) == [str(tmp_path / "proj/a.py")]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_patterns_match_as_git_matches_them(tmp_path: Path) -> None:
    """The walk keeps exactly the files ``git ls-files --others --exclude-standard``
    lists: git itself is the reference for the pattern syntax."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    patterns = [
        "*.tmp.py",
        "!important.tmp.py",
        "/root_only*.py",
        "a/**/deep.py",
        "**/anywhere.py",
        "nested/",
        "!nested/",  # a folder brought back
        "cache*/",
        "x?.py",
        "[abc]_class.py",
        "[!d-f]_neg.py",
        "trailing.py   ",
        "escaped\\ space.py",
        "sub/*.py",
        "!sub/keep.py",
        "lib/**",
        "!lib/**/",  # re-including folders does not re-include their files
        "kept\\ ",  # an escaped trailing space stays
        "x**y.py",  # not a whole `**` component: one `*`
        "[\\]]z.py",
        "[!\\!]w.py",
        "[unclosed.py",
        "\\!bang.py",
        "\\#hash.py",
        "# a comment",
        "",
    ]
    names = [
        "one.tmp.py", "important.tmp.py", "root_only1.py", "q/root_only2.py",
        "a/deep.py", "a/b/c/deep.py", "b/deep.py", "anywhere.py", "m/n/anywhere.py",
        "nested/n.py", "cache1/c.py", "cachefile.py", "xa.py", "xab.py",
        "a_class.py", "d_class.py", "c_neg.py", "e_neg.py", "trailing.py",
        "escaped space.py", "sub/s.py", "sub/keep.py", "sub/deeper/s.py",
        "lib/l.py", "lib/m/l.py", "plain.py", "kept /k.py", "xay.py", "xa/y.py",
        "]z.py", "az.py", "aw.py", "!w.py", "[unclosed.py", "!bang.py", "#hash.py",
    ]  # fmt: skip
    make_tree(tmp_path, {".gitignore": "\n".join(patterns) + "\n"})
    make_tree(tmp_path, dict.fromkeys(names, "x = 1\n"))
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    expected = sorted(name for name in listed if name.endswith(".py"))
    from tether._cli._scan_files import Finder, Target
    from tether._cli._scan_settings import Overrides, Resolver

    found = Finder(Resolver(Overrides(exclude=(".git/",)))).find([str(tmp_path)])
    walked = sorted(
        os.path.relpath(item.path, tmp_path).replace(os.sep, "/")
        for item in found
        if isinstance(item, Target)
    )
    assert walked == expected
    assert "plain.py" in walked  # the comparison is not empty
    assert "xa/y.py" in walked  # and not trivial
    assert "xay.py" not in walked


def test_the_built_in_excludes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(
        tmp_path,
        {
            "pkg/a.py": DANGLING,
            "pkg/.hidden_module.py": DANGLING,  # a hidden file is not a hidden folder
            "build/lib/pkg/a.py": DANGLING,
            "dist/x.py": DANGLING,
            "pkg/build/x.py": DANGLING,
            ".tox/py313/x.py": DANGLING,
            "_build/html/x.py": DANGLING,
            "__pypackages__/3.13/lib/x.py": DANGLING,
            "env/pyvenv.cfg": "home = /usr/bin\n",
            "env/lib/x.py": DANGLING,
        },
    )
    assert shown_files(capsys, str(tmp_path)) == [
        str(tmp_path / "pkg/.hidden_module.py"),
        str(tmp_path / "pkg/a.py"),
    ]


def test_exclude_replaces_the_built_in_list_and_extend_exclude_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(
        tmp_path,
        {
            "pkg/a.py": DANGLING,
            "pkg/msg_pb2.py": DANGLING,
            "pkg/gen/x.py": DANGLING,
            "build/b.py": DANGLING,
            "other/gen/y.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    # Patterns given on the command line are relative to the current folder.
    assert shown_files(capsys, "--exclude", "pkg/gen,*_pb2.py", ".") == [
        os.path.join("build", "b.py"),
        os.path.join("other", "gen", "y.py"),
        os.path.join("pkg", "a.py"),
    ]
    assert shown_files(
        capsys, "--extend-exclude", "gen/", "--extend-exclude", "*_pb2.py", "."
    ) == [os.path.join("pkg", "a.py")]


def test_a_file_named_is_read_unless_force_exclude(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    make_tree(
        tmp_path,
        {
            ".gitignore": "generated/\n",
            "build/lib/z.py": DANGLING,
            "generated/g.py": DANGLING,
            "pkg/a.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    named = [os.path.join("build", "lib", "z.py"), os.path.join("generated", "g.py")]
    status, out, err = run_scan(capsys, *named, os.path.join("pkg", "a.py"))
    assert status == 1
    assert err == "3 findings in 3 files (3 files scanned)\n"
    # What a pre-commit hook runs: every changed file, named.
    status, out, err = run_scan(capsys, "--force-exclude", *named, "pkg/a.py")
    assert [line.split(":")[0] for line in out.splitlines()] == ["pkg/a.py"]
    # A folder named is walked, unless excluded and forced.
    assert shown_files(capsys, "build") == [os.path.join("build", "lib", "z.py")]
    assert shown_files(capsys, "--force-exclude", "build") == []


def test_force_exclude_ignores_hidden_folders_above_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / ".checkouts" / "proj"
    make_tree(project, {"pkg/a.py": DANGLING})
    monkeypatch.chdir(project)
    path = os.path.join("pkg", "a.py")
    assert shown_files(capsys, "--force-exclude", path) == [path]


def test_symbolic_links_in_a_folder_are_skipped_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(
        tmp_path,
        {
            "outside/lib.py": DANGLING,
            "outside/folder/deep.py": DANGLING,
            "proj/pkg/a.py": DANGLING,
            "proj/build/ignored.py": DANGLING,
        },
    )
    proj = tmp_path / "proj"
    os.symlink("../outside/lib.py", proj / "linked.py")
    os.symlink("../outside/folder", proj / "linked_folder")
    os.symlink("pkg/a.py", proj / "alias.py")
    os.symlink("nowhere.py", proj / "broken.py")
    os.symlink("../outside/lib.py", proj / "build" / "link.py")  # excluded: unsaid
    monkeypatch.chdir(tmp_path)
    status, out, err = run_scan(capsys, "proj")
    assert [line.split(":")[0] for line in out.splitlines()] == [
        os.path.join("proj", "pkg", "a.py")
    ]
    follow = "links inside a folder are not followed: name the target to scan it"
    assert err.splitlines() == [
        f"tether scan: skipped {os.path.join('proj', 'linked_folder')}: a symbolic "
        f"link (to ../outside/folder, outside the folder given); {follow}",
        f"tether scan: skipped {os.path.join('proj', 'alias.py')}: a symbolic link "
        f"(to pkg/a.py, inside the folder given); {follow}",
        f"tether scan: skipped {os.path.join('proj', 'broken.py')}: a symbolic link "
        f"(to nowhere.py, which does not exist); {follow}",
        f"tether scan: skipped {os.path.join('proj', 'linked.py')}: a symbolic link "
        f"(to ../outside/lib.py, outside the folder given); {follow}",
        "1 finding in 1 file (1 file scanned, 4 symbolic links skipped)",
    ]
    assert status == 1


def test_a_symbolic_link_named_is_read_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"outside/lib.py": DANGLING})
    os.symlink(tmp_path / "outside" / "lib.py", tmp_path / "linked.py")
    status, out, _ = run_scan(capsys, str(tmp_path / "linked.py"))
    assert out.startswith(f"{tmp_path / 'linked.py'}:2:1: TET001 ")
    assert status == 1


def test_an_unreadable_folder_is_an_error_and_the_rest_is_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a/x.py": DANGLING, "b/y.py": DANGLING})
    from tether._cli._scan_files import Finder
    from tether._cli._scan_output import Report
    from tether._cli._scan_settings import Overrides, Resolver

    real_walk = os.walk

    def walk_with_an_error(top: str, **options: object) -> object:
        onerror = options["onerror"]
        assert callable(onerror)
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "a")))
        return real_walk(str(tmp_path / "b"))

    finder = Finder(Resolver(Overrides()))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "walk", walk_with_an_error)
        items = finder.find([str(tmp_path)])
    assert items[-1] == Report(str(tmp_path / "a"), 0, 0, "E902", "Permission denied")
    assert len(items) == 2


@pytest.mark.parametrize("spelling", ["proj", "proj/", "./proj", "proj/."])
def test_any_spelling_of_a_folder_walks_the_same(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    spelling: str,
) -> None:
    (tmp_path / ".git").mkdir()
    make_tree(
        tmp_path,
        {
            ".gitignore": "/proj/gen/\n",
            "proj/pyproject.toml": '[tool.tether.scan]\nexclude = ["/skip.py"]\n',
            "proj/gen/g.py": DANGLING,
            "proj/skip.py": DANGLING,
            "proj/pkg/a.py": DANGLING,
        },
    )
    monkeypatch.chdir(tmp_path)
    files = shown_files(capsys, spelling)
    assert [os.path.relpath(path) for path in files] == [
        os.path.join("proj", "pkg", "a.py")
    ]
