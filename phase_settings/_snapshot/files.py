"""The snapshot folder and its files: the folder's checks, bounded reads, durable renames.

The folder is created with mode 0700; an existing one must be a folder of this user with mode
0700 and writable, otherwise the snapshot is not used (one WARNING, said by the caller). Files
are read without following a symbolic link and never past a size no snapshot reaches.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable

__all__ = ["MAX_FILE_BYTES", "folder_problem", "fsync_folder", "read_file", "write_atomically"]

MAX_FILE_BYTES = 256 * 1024 * 1024


def folder_problem(directory: str) -> tuple[str, str] | None:
    """Why ``directory`` cannot hold snapshots, as (what failed, why), or None when it can.

    Creates the folder (mode 0700, whatever the umask) when it is missing.
    """
    try:
        os.makedirs(directory, 0o700)  # missing parents get the usual mode
        os.chmod(directory, 0o700)  # a umask such as 0o200 must not narrow it
    except FileExistsError:
        pass
    except OSError as exc:
        return "cannot be created", exc.strerror or type(exc).__name__
    try:
        info = os.stat(directory)
    except OSError as exc:
        return "cannot be read", exc.strerror or type(exc).__name__
    return _ownership_problem(directory, info.st_mode, info.st_uid)


def _ownership_problem(directory: str, mode: int, uid: int) -> tuple[str, str] | None:
    getuid: Callable[[], int] | None = getattr(os, "getuid", None)
    problem = None
    if not stat.S_ISDIR(mode):
        problem = "is not a folder"
    elif getuid is not None and uid != getuid():
        problem = "does not belong to this user"
    elif getuid is not None and stat.S_IMODE(mode) != 0o700:
        problem = f"has mode {stat.S_IMODE(mode):04o}, not 0700"
    elif not os.access(directory, os.W_OK | os.X_OK):
        problem = "is not writable"
    return None if problem is None else (problem, "")


def read_file(path: str) -> bytes:
    """The file's bytes (a symbolic link is refused; an oversized file reads as empty)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        return b""  # read as truncated: nothing this library writes is that large
    return data


def fsync_folder(directory: str) -> None:
    """Make a rename in ``directory`` durable, where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it (mode 0600 whatever the
    umask), fsync, rename, fsync of the folder. A reader sees the old file or the new one, never
    a torn one; a crash at any point leaves the old file in place.

    Callers writing one ``path`` take turns: the temporary file's name is fixed.

    Raises:
        OSError: the file system refused; the temporary file is removed.
    """
    temporary = path + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_folder(os.path.dirname(path))
