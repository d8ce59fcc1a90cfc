"""How ``tether scan --fix`` writes: never outside the paths given nor through a
symbolic link, all at once with the file's mode kept, and never over a change it did
not see (a hook in the test plays the editor that saves meanwhile).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any

import pytest

from helpers import DANGLING, SPAWNED, make_tree, run_scan
from tether._cli import _scan_fix, _scan_write

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NOT_FIXED = " (not fixed: {})"


def left_over(folder: Path) -> list[str]:
    """Temporary files of a fix left in ``folder``."""
    return [name for name in os.listdir(folder) if name.endswith(".tether-fix")]


def test_fix_never_writes_outside_the_folder_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defect: ``proj/linked.py`` linked to ``../outside/lib.py``, and ``--fix
    proj`` rewrote ``outside/lib.py``."""
    make_tree(tmp_path, {"outside/lib.py": DANGLING, "proj/pkg/a.py": DANGLING})
    os.symlink("../outside/lib.py", tmp_path / "proj" / "linked.py")
    monkeypatch.chdir(tmp_path)
    status, out, err = run_scan(capsys, "--fix", "proj")
    assert (tmp_path / "outside" / "lib.py").read_text() == DANGLING
    assert (tmp_path / "proj" / "pkg" / "a.py").read_text() == SPAWNED
    assert out == ""
    assert err.splitlines()[0].startswith(
        f"tether scan: skipped {os.path.join('proj', 'linked.py')}: a symbolic link "
        "(to ../outside/lib.py, outside the folder given)"
    )
    assert err.splitlines()[1] == (
        "Fixed 1 finding in 1 file; left: no findings (1 file scanned, "
        "1 symbolic link skipped)"
    )
    assert status == 0


def test_fix_never_writes_through_a_symbolic_link_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"outside/lib.py": DANGLING})
    link = tmp_path / "linked.py"
    os.symlink(tmp_path / "outside" / "lib.py", link)
    for option in ("--fix", "--diff"):
        status, out, err = run_scan(capsys, option, str(link))
        assert (tmp_path / "outside" / "lib.py").read_text() == DANGLING
        assert os.path.islink(link)
        report = out if option == "--fix" else err
        assert report.splitlines()[0].endswith(
            NOT_FIXED.format(
                "it is a symbolic link, and --fix never writes through one: fix the "
                "file it points to"
            )
        )
        assert status == 1


def test_fix_refuses_a_file_that_lies_outside_once_links_are_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"outside/lib.py": DANGLING, "proj/x.py": ""})
    os.symlink(tmp_path / "outside", tmp_path / "proj" / "linked")
    # Named through a linked folder, the file is read; written only if it is
    # inside the path given once resolved, which here it is not.
    from tether._cli._scan_write import NotWritten, check_writable

    path = str(tmp_path / "proj" / "linked" / "lib.py")
    with pytest.raises(NotWritten, match=r"outside .*proj once symbolic links"):
        check_writable(path, str(tmp_path / "proj"))
    check_writable(path, path)  # named itself: its own path given


def test_fix_replaces_the_file_in_one_step_and_keeps_its_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    path = tmp_path / "a.py"
    path.chmod(0o751)
    before = os.stat(path)
    assert run_scan(capsys, "--fix", str(path))[0] == 0
    after = os.stat(path)
    assert path.read_text() == SPAWNED
    assert stat.S_IMODE(after.st_mode) == 0o751
    assert after.st_ino != before.st_ino  # a new file renamed over the old one
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert left_over(tmp_path) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root gives files away"
)
def test_fix_keeps_the_owner_of_a_file_of_another_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    path = tmp_path / "a.py"
    os.chown(path, 1, 1)
    assert run_scan(capsys, "--fix", str(path))[0] == 0
    assert path.read_text() == SPAWNED
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (1, 1)


def test_fix_refuses_a_read_only_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    path = tmp_path / "a.py"
    path.chmod(0o444)
    status, out, _ = run_scan(capsys, "--fix", str(path))
    assert path.read_text() == DANGLING
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    first, second = out.splitlines()
    assert first == f"{path}:0:0: E902 fix not written: the file is read-only"
    assert second.endswith(NOT_FIXED.format("the file is read-only"))
    assert status == 2
    assert left_over(tmp_path) == []


def test_fix_refuses_a_file_with_several_hard_links(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    os.link(tmp_path / "a.py", tmp_path / "b.py")
    status, out, _ = run_scan(capsys, "--fix", str(tmp_path / "a.py"))
    assert (tmp_path / "a.py").read_text() == (tmp_path / "b.py").read_text()
    assert (tmp_path / "a.py").read_text() == DANGLING
    reason = "it has 2 hard links, and replacing it would leave the others unchanged"
    assert out.splitlines()[0].endswith(NOT_FIXED.format(reason))
    assert status == 1


CHANGED = (
    "the file changed on disk since tether read it (saved by an editor or another "
    "tool?): nothing was written; run the fix again"
)


def test_fix_refuses_a_file_changed_between_read_and_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING, "b.py": DANGLING})
    edited = DANGLING + "# saved by an editor\n"
    real_fix = _scan_fix.rewrite_source

    def fix_while_an_editor_saves(
        data: bytes, places: Sequence[tuple[int, int]], **options: Any
    ) -> _scan_fix.Fixed:
        (tmp_path / "a.py").write_text(edited)  # while the fix is computed
        return real_fix(data, places, **options)

    monkeypatch.setattr(_scan_fix, "rewrite_source", fix_while_an_editor_saves)
    status, out, _ = run_scan(capsys, "--fix", str(tmp_path))
    assert (tmp_path / "a.py").read_text() == edited
    error, finding = out.splitlines()
    assert error == f"{tmp_path / 'a.py'}:0:0: E902 fix not written: {CHANGED}"
    assert finding.startswith(f"{tmp_path / 'a.py'}:2:1: TET001 dangling task: ")
    assert finding.endswith(NOT_FIXED.format(CHANGED))
    assert (tmp_path / "b.py").read_text() == SPAWNED  # the others are still fixed
    assert status == 2
    assert left_over(tmp_path) == []


def test_fix_refuses_a_file_changed_while_the_new_one_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    path = tmp_path / "a.py"
    real_keep_owner = _scan_write.keep_owner

    def keep_owner_while_an_editor_saves(temporary: str, info: os.stat_result) -> None:
        path.write_text(DANGLING + "# saved\n")
        real_keep_owner(temporary, info)

    monkeypatch.setattr(_scan_write, "keep_owner", keep_owner_while_an_editor_saves)
    status, out, _ = run_scan(capsys, "--fix", str(path))
    assert path.read_text() == DANGLING + "# saved\n"
    assert out.splitlines()[0] == f"{path}:0:0: E902 fix not written: {CHANGED}"
    assert status == 2
    assert left_over(tmp_path) == []


def test_a_failed_write_leaves_the_file_and_no_temporary_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING, "b.py": DANGLING})

    def disk_full(source: str, target: str) -> None:
        if target.endswith("a.py"):
            raise OSError(28, "No space left on device")
        os.rename(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", disk_full)
        status, out, _ = run_scan(capsys, "--fix", str(tmp_path))
    assert (tmp_path / "a.py").read_text() == DANGLING
    assert (tmp_path / "b.py").read_text() == SPAWNED  # the others are still fixed
    assert out.splitlines()[0] == (
        f"{tmp_path / 'a.py'}:0:0: E902 fix not written: cannot write it: "
        "No space left on device"
    )
    assert status == 2
    assert left_over(tmp_path) == []


def test_check_writable_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    from tether._cli._scan_write import NotWritten, check_writable

    with pytest.raises(NotWritten, match="it is not a regular file") as refused:
        check_writable(str(tmp_path), str(tmp_path))
    assert not refused.value.error
    with pytest.raises(NotWritten, match="No such file or directory") as missing:
        check_writable(str(tmp_path / "gone.py"), str(tmp_path))
    assert missing.value.error


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root gives files away"
)
def test_fix_refuses_to_give_a_file_a_new_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a user who may not set the owner sees: played by root, whose chown
    the test makes fail."""
    make_tree(tmp_path, {"a.py": DANGLING})
    path = tmp_path / "a.py"
    os.chown(path, 1, 1)

    def chown(path: str, uid: int, gid: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    with monkeypatch.context() as patch:
        patch.setattr(os, "chown", chown)
        status, out, _ = run_scan(capsys, "--fix", str(path))
    assert path.read_text() == DANGLING
    assert out.splitlines()[0] == (
        f"{path}:0:0: E902 fix not written: replacing it would change its owner or "
        "group, which this user may not keep"
    )
    assert status == 2
    assert left_over(tmp_path) == []


def test_fix_reports_a_missing_path_and_fixes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(tmp_path, {"a.py": DANGLING})
    status, out, _ = run_scan(capsys, "--fix", str(tmp_path / "gone"), str(tmp_path))
    assert out == f"{tmp_path / 'gone'}:0:0: E902 No such file or directory\n"
    assert (tmp_path / "a.py").read_text() == SPAWNED
    assert status == 2
