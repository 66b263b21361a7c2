"""The snapshot folder and its files, handled relative to one folder descriptor per use.

DESIGN §4 "Hostile folders": anyone who can write the folder must not be able to make a load
hang, read a huge file or write through a link. So each use opens the folder once
(``O_DIRECTORY | O_NOFOLLOW``), checks it with ``fstat``, and opens, creates and renames its
files relative to that descriptor; a file is opened without following links and without
blocking (``O_NOFOLLOW | O_NONBLOCK``, so a FIFO cannot stall the open) and checked with
``fstat`` before a byte is read: a regular file of this user, not larger than the store's limit.

Which folder is used: the configured one when it is a folder of this user with mode 0700
(created so when missing). Container volumes come 0755 (Docker) or 0777 (Kubernetes
``emptyDir``): a real folder of this user or of root that is not 0700 holds the snapshots in
its subfolder ``phase``, created 0700, which must itself be a folder of this user with mode 0700
(the rule applies once, never to ``phase``). Anything else is refused, naming the folder to fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

__all__ = [
    "SUBFOLDER",
    "FolderRefused",
    "HostileFile",
    "open_file",
    "open_folder",
    "read_file",
    "write_atomically",
]

SUBFOLDER = "phase"
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC


class FolderRefused(Exception):
    """The snapshot folder cannot be used: ``folder`` ``what`` (``why``)."""

    def __init__(self, folder: str, what: str, why: str = "") -> None:
        super().__init__(folder, what, why)
        self.folder = folder
        self.what = what
        self.why = why


class HostileFile(Exception):
    """A file in the folder that is not what this library writes (a link, a FIFO, a device,
    another user's file, an oversized one): refused like a damaged file."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _uid() -> int | None:
    getuid = getattr(os, "getuid", None)
    return None if getuid is None else int(getuid())


def _open_checked(name: str, folder: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            link = False
            with contextlib.suppress(OSError):
                link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
            raise FolderRefused(
                folder, "is a symbolic link" if link else "is not a folder"
            ) from None
        raise FolderRefused(folder, "cannot be read", exc.strerror or type(exc).__name__) from None


def _private_problem(fd: int) -> str | None:
    """Why the folder open as ``fd`` is not a private folder of this user, or None."""
    info = os.fstat(fd)
    uid = _uid()
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if uid is not None and info.st_uid != uid:
        return "does not belong to this user"
    if uid is not None and stat.S_IMODE(info.st_mode) != 0o700:
        return f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    if os.access in os.supports_dir_fd and not os.access(
        ".", os.W_OK | os.X_OK, dir_fd=fd, effective_ids=os.access in os.supports_effective_ids
    ):
        return "is not writable"
    return None


def _takes_subfolder(fd: int) -> bool:
    """A volume made by a container runtime: this user's or root's folder, not 0700."""
    info = os.fstat(fd)
    uid = _uid()
    return (
        uid is not None
        and stat.S_ISDIR(info.st_mode)
        and info.st_uid in (uid, 0)
        and stat.S_IMODE(info.st_mode) != 0o700
    )


def _create(directory: str) -> None:
    try:
        os.makedirs(directory, 0o700)  # missing parents get the usual mode
    except FileExistsError:
        return
    except OSError as exc:
        raise FolderRefused(
            directory, "cannot be created", exc.strerror or type(exc).__name__
        ) from None
    os.chmod(directory, 0o700)  # a umask such as 0o200 must not narrow it


def _subfolder(fd: int, directory: str, create: bool) -> int:
    inner = os.path.join(directory, SUBFOLDER)
    if create:
        try:
            os.mkdir(SUBFOLDER, 0o700, dir_fd=fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise FolderRefused(
                inner, "cannot be created", exc.strerror or type(exc).__name__
            ) from None
        else:
            with contextlib.suppress(OSError):
                sub = os.open(SUBFOLDER, _FOLDER_FLAGS, dir_fd=fd)
                try:
                    os.fchmod(sub, 0o700)  # whatever the umask
                finally:
                    os.close(sub)
    sub = _open_checked(SUBFOLDER, inner, fd)
    problem = _private_problem(sub)
    if problem is not None:
        os.close(sub)
        raise FolderRefused(inner, problem)
    return sub


def open_folder(directory: str, *, create: bool = False) -> tuple[int, str]:
    """The descriptor of the folder the snapshots of ``directory`` live in, and its path.

    Args:
        directory: ``phase_snapshot_dir``, absolute.
        create: make ``directory`` (mode 0700) and the ``phase`` subfolder when missing.

    Raises:
        FolderRefused: the folder (or its ``phase`` subfolder) cannot be used.
    """
    if create:
        _create(directory)
    fd = _open_checked(directory, directory, None)
    try:
        if _takes_subfolder(fd):
            return _subfolder(fd, directory, create), os.path.join(directory, SUBFOLDER)
        problem = _private_problem(fd)
    except BaseException:
        os.close(fd)
        raise
    if problem is not None:
        os.close(fd)
        raise FolderRefused(directory, problem)
    return fd, directory


def open_file(folder_fd: int, name: str, flags: int, limit: int | None = None) -> int:
    """``name`` in the folder, opened without following a link or blocking, then checked: a
    regular file of this user, at most ``limit`` bytes.

    Raises:
        FileNotFoundError: there is no such file (and ``flags`` does not create it).
        HostileFile: the file is a link, a FIFO, a device, another user's or too large.
    """
    try:
        fd = os.open(name, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, 0o600, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise HostileFile("is a symbolic link") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):
            raise HostileFile("is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
        uid = _uid()
        if not stat.S_ISREG(info.st_mode):
            raise HostileFile("is not a regular file")
        if uid is not None and info.st_uid != uid:
            raise HostileFile("does not belong to this user")
        if limit is not None and info.st_size > limit:
            raise HostileFile(f"is larger than any snapshot ({info.st_size} bytes)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_file(folder_fd: int, name: str, limit: int) -> bytes:
    """The bytes of ``name`` in the folder, checked as :func:`open_file` says.

    Raises:
        FileNotFoundError: there is no such file.
        HostileFile: it is not a file this library could have written.
    """
    fd = open_file(folder_fd, name, os.O_RDONLY, limit)
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # it grew after the check
        raise HostileFile("is larger than any snapshot")
    return data


def write_atomically(folder_fd: int, name: str, data: bytes) -> None:
    """Replace ``name`` in the folder with ``data``: a temporary file beside it (mode 0600
    whatever the umask), fsync, rename, fsync of the folder. A reader sees the old file or the
    new one, never a torn one; a crash at any point leaves the old file in place.

    Callers writing one ``name`` take turns: the temporary file's name is fixed.

    Raises:
        OSError: the file system refused; the temporary file is removed.
    """
    temporary = name + ".tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=folder_fd)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=folder_fd)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise
    with contextlib.suppress(OSError):
        os.fsync(folder_fd)
