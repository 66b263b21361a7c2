"""The lock file that lets the processes of one host share one fetch per TTL.

An exclusive ``fcntl.flock`` on a separate lock file, polled without blocking so that a waiter
never waits past its own budget. The kernel releases the lock when its holder dies, however it
dies. Where ``fcntl`` does not exist (Windows) there is no lock: callers are told they did not get
it and go on without it.

``flock`` belongs to an open file description, which a forked child shares with its parent: a
child that unlocked its copy would release the parent's lock, and a child that kept its copy open
would keep the lock held after the parent died. So the child closes its inherited copies right
after the fork (never unlocking them) and never believes it holds a lock it did not take itself:
the locks a process holds are kept in one :class:`HeldLocks`, which the process's ``Runtime``
creates, hands to the stores it builds and tells of a fork.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType

__all__ = ["FileLock", "HeldLocks", "fcntl_module"]

POLL_START = 0.005  # seconds between two attempts at first ...
POLL_MAX = 0.05  # ... growing to this, so a waiter notices a release within 50 ms


def fcntl_module() -> ModuleType | None:
    """``fcntl``, or None where it does not exist (Windows)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    return fcntl


class HeldLocks:
    """The lock descriptors a process holds (fd -> the pid that took it)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"HeldLocks({len(self._held)} held)"

    def add(self, fd: int) -> None:
        """Record a lock this process just took on ``fd``."""
        with self._guard:
            self._held[fd] = os.getpid()

    def holds(self, fd: int) -> bool:
        """True while this process holds the lock it took on ``fd``."""
        with self._guard:
            return self._held.get(fd) == os.getpid()

    def discard(self, fd: int) -> bool:
        """Forget ``fd``; True when this process had taken it (so it may unlock it)."""
        with self._guard:
            if self._held.get(fd) != os.getpid():
                return False
            del self._held[fd]
            return True

    def after_fork_in_child(self) -> None:
        """Close the child's copies of its parent's lock descriptors, never unlocking them
        (unlocking would release the parent's lock, keeping them would outlive the parent)."""
        self._guard = threading.Lock()  # a parent thread may have held it at fork time
        for fd in list(self._held):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()


class FileLock:
    """An exclusive lock on one file, taken by polling.

    Args:
        path: the lock file; created with mode 0600 if missing, never written.
        held: the locks this process holds (the runtime's; one of its own by default).
        clock: monotonic seconds (injectable for tests).
        sleep: waits between two attempts (injectable for tests).
        opener: opens the lock file and returns its descriptor (the snapshot store opens it
            relative to its folder's descriptor, refusing links and FIFOs); by default ``path``
            is opened, created mode 0600, without following a link.
    """

    def __init__(
        self,
        path: str,
        *,
        held: HeldLocks | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        opener: Callable[[], int] | None = None,
    ) -> None:
        self.path = path
        self._opener = opener
        self._held = held or HeldLocks()
        self._clock = clock
        self._sleep = sleep
        self._owner: dict[int, int] = {}  # fd -> pid of the holds taken through this object
        self.open_error: OSError | None = None  # why the lock file could not be opened, last

    def __repr__(self) -> str:
        return f"FileLock({self.path!r})"

    def held_here(self) -> bool:
        """True while a thread of this process holds the lock through this object (whichever
        thread took it: async callers take it in a worker thread). A forked child never does."""
        me = os.getpid()
        return any(self._held.holds(fd) for fd, owner in list(self._owner.items()) if owner == me)

    @contextlib.contextmanager
    def acquire(self, wait_seconds: float) -> Iterator[bool]:
        """Take the lock, polling without blocking for at most ``wait_seconds``.

        Yields:
            True when this caller holds the lock for the ``with`` block, False when the wait
            budget ran out, the lock file cannot be opened, or there is no ``fcntl``. The
            caller goes on in every case; only a True caller may assume exclusivity.
        """
        fcntl = fcntl_module()
        if fcntl is None:  # pragma: no cover - Windows
            yield False
            return
        fd = self._open()
        if fd is None:
            yield False
            return
        got = False
        try:
            got = self._poll(fd, fcntl, wait_seconds)
            if got:
                self._held.add(fd)
                self._owner[fd] = os.getpid()
        finally:
            if not got:
                os.close(fd)
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            self._release(fd, fcntl)

    def _open(self) -> int | None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o600) if self._opener is None else self._opener()
            if hasattr(os, "fchmod"):
                os.fchmod(fd, 0o600)  # whatever the umask: never narrower, never wider
        except OSError as exc:
            self.open_error = exc
            return None
        self.open_error = None
        return fd

    def _poll(self, fd: int, fcntl: ModuleType, wait_seconds: float) -> bool:
        give_up_at = self._clock() + max(0.0, wait_seconds)
        interval = POLL_START
        # Bounded in count as well as in time, whatever the injected clock does.
        for _ in range(int(max(0.0, wait_seconds) / POLL_START) + 2):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            except OSError:
                return False  # e.g. a file system without locks: go on without one
            left = give_up_at - self._clock()
            if left <= 0:
                return False
            self._sleep(min(interval, left))
            interval = min(interval * 2, POLL_MAX)
        return False

    def _release(self, fd: int, fcntl: ModuleType) -> None:
        owner = self._owner.pop(fd, None)
        if owner != os.getpid() or not self._held.discard(fd):
            # A forked child leaving a block its parent entered: its copy of the descriptor
            # was closed at the fork and the number may now be another file's.
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:  # pragma: no cover - closing releases it too
            pass
        finally:
            os.close(fd)
