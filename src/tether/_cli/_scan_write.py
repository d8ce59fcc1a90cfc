"""How ``tether scan --fix`` writes a file: only where it may, all at once, and never
over a change it did not see.

Where it may (:func:`check_writable`): a regular file, not a symbolic link (it never
writes through one), whose real location is inside the path given on the command line
that led to it, with a single hard link (replacing a file with several would leave the
others as they were). Otherwise the findings are left, with the reason.

All at once (:func:`replace_file`): the new bytes go to a temporary file in the same
folder, flushed to disk, given the original's mode (and owner, where the process may
set it), then renamed over the original in one step (``os.replace``), so a reader or
a crash sees the old file or the new one, never half of one.

Never over a change: the file is read again just before, and the fix is not written if
its bytes are not the ones the fix was made from (an editor saved it meanwhile), nor if
it changes while the temporary file is written. This narrows the window to the
instant between the last check and the rename; no portable lock closes it.

A read-only file (no write permission bit, or not writable by this process) is not
written.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from ._scan_ignore import inside

__all__ = ["NotWritten", "check_writable", "replace_file"]


class NotWritten(Exception):
    """The fix was not written; the message says why.

    ``error`` is True for a failure (the exit status says an input could not be
    processed) and False for a rule that keeps the file as it is.
    """

    def __init__(self, reason: str, *, error: bool) -> None:
        super().__init__(reason)
        self.error = error


def check_writable(path: str, given: str) -> None:
    """Raise :class:`NotWritten` if the rules forbid writing ``path``, which was
    found under the command-line path ``given``."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise NotWritten(exc.strerror or str(exc), error=True) from None
    if stat.S_ISLNK(info.st_mode):
        raise NotWritten(
            "it is a symbolic link, and --fix never writes through one: "
            "fix the file it points to",
            error=False,
        )
    if not stat.S_ISREG(info.st_mode):
        raise NotWritten("it is not a regular file", error=False)
    if not inside(os.path.realpath(path), os.path.realpath(given)):
        raise NotWritten(
            f"it lies outside {given} once symbolic links are resolved", error=False
        )
    if info.st_nlink > 1:
        raise NotWritten(
            f"it has {info.st_nlink} hard links, and replacing it would leave the "
            "others unchanged",
            error=False,
        )


def replace_file(path: str, given: str, before: bytes, after: bytes) -> None:
    """Replace the file at ``path``, read as ``before``, with ``after``.

    Raises:
        NotWritten: the rules of :func:`check_writable` forbid it, the file is
            read-only, it changed since it was read, or writing failed. The file is
            then as it was, and no temporary file is left.
    """
    check_writable(path, given)
    try:
        _replace(path, before, after)
    except OSError as exc:
        raise NotWritten(
            f"cannot write it: {exc.strerror or exc}", error=True
        ) from None


def _fingerprint(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def _replace(path: str, before: bytes, after: bytes) -> None:
    with open(path, "rb") as file:
        info = os.fstat(file.fileno())
        now = file.read()
    if not info.st_mode & 0o222 or not os.access(path, os.W_OK):
        raise NotWritten("the file is read-only", error=True)
    if now != before:
        raise NotWritten(_CHANGED, error=True)
    folder, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=".tether-fix", dir=folder or "."
    )
    try:
        with open(handle, "wb") as file:
            file.write(after)
            file.flush()
            os.fsync(file.fileno())
        keep_owner(temporary, info)
        os.chmod(temporary, stat.S_IMODE(info.st_mode))
        if _fingerprint(os.stat(path)) != _fingerprint(info):
            raise NotWritten(_CHANGED, error=True)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder or ".")


_CHANGED = (
    "the file changed on disk since tether read it (saved by an editor or another "
    "tool?): nothing was written; run the fix again"
)


def keep_owner(temporary: str, info: os.stat_result) -> None:
    """Give the temporary file the original's owner and group, or refuse: renaming
    a file of ours over it would hand it to us."""
    mine = os.stat(temporary)
    if (mine.st_uid, mine.st_gid) == (info.st_uid, info.st_gid) or os.name == "nt":
        return
    try:
        os.chown(temporary, info.st_uid, info.st_gid)
    except PermissionError:
        raise NotWritten(
            "replacing it would change its owner or group, which this user may not "
            "keep",
            error=True,
        ) from None


def _sync_folder(folder: str) -> None:
    """Flush the rename to disk where the system allows it (not on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
