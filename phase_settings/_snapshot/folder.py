"""The snapshot folder as a store uses it: checked at every use, refusals said once.

The rules are :mod:`.files`'; here is what a store does with their answers: the folder actually
used (``<directory>/phase`` for a container volume), one WARNING per refusal and cause (through
the store's own once-only warner), and the lock file opened like every other file.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator

from .files import FolderRefused, HostileFile, open_file, open_folder

__all__ = ["AlreadySaid", "SnapshotFolder"]


class AlreadySaid(OSError):
    """A failure to open the lock file that has been logged (once) where it happened."""


class SnapshotFolder:
    """``phase_snapshot_dir`` for one store.

    Args:
        directory: the configured folder, absolute.
        warn_once: ``(what, message, *args)``: logs ``message`` the first time ``what`` is seen.
    """

    def __init__(self, directory: str, warn_once: Callable[..., None]) -> None:
        self.directory = directory
        self.path = directory  # the folder actually used, once prepared
        self._warn_once = warn_once

    def prepare(self) -> bool:
        """Create and check the folder (and its ``phase`` subfolder for a volume): whether the
        store can use it."""
        try:
            fd, self.path = open_folder(self.directory, create=True)
        except FolderRefused as refused:
            self.refused(refused)
            return False
        os.close(fd)
        return True

    def refused(self, refused: FolderRefused) -> None:
        """One WARNING naming the folder to fix (once per folder and cause)."""
        key = f"folder {refused.folder} {refused.what}"
        if refused.why:
            self._warn_once(
                key,
                "snapshot folder %s %s (%s): loads go on without a snapshot",
                refused.folder,
                refused.what,
                refused.why,
            )
        else:
            self._warn_once(
                key,
                "snapshot folder %s %s: no snapshot is used or written",
                refused.folder,
                refused.what,
            )

    @contextlib.contextmanager
    def use(self) -> Iterator[int | None]:
        """The folder's descriptor for one use, checked anew (a folder swapped for a link or
        another user's while the process runs is refused from then on); None when refused."""
        try:
            fd, _ = open_folder(self.directory)
        except FolderRefused as refused:
            self.refused(refused)
            yield None
            return
        try:
            yield fd
        finally:
            os.close(fd)

    def open_lock_file(self, name: str) -> int:
        """The lock file, opened relative to the checked folder like every other file; a
        failure is one WARNING (once per cause), then the load goes on without it.

        Raises:
            AlreadySaid: the folder or the lock file cannot be used (logged already).
        """
        try:
            fd, _ = open_folder(self.directory)
        except FolderRefused as refused:
            self.refused(refused)
            raise AlreadySaid(errno.EACCES, f"the snapshot folder {refused.what}") from None
        try:
            lock = open_file(fd, name, os.O_RDWR | os.O_CREAT)
        except (HostileFile, OSError) as exc:
            why = (
                f"the lock file {exc.what}"
                if isinstance(exc, HostileFile)
                else exc.strerror or type(exc).__name__
            )
            self._warn_once(
                f"lock {name} {why}",
                "snapshot lock %s cannot be used (%s): loads go on without it, nothing is written",
                name,
                why,
            )
            raise AlreadySaid(errno.EACCES, why) from None
        finally:
            os.close(fd)
        os.fchmod(lock, 0o600)  # whatever the umask: never narrower, never wider
        return lock
