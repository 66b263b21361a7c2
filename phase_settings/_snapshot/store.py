"""The encrypted on-disk snapshot: the last good values of one cache key, sealed in a folder.

A process started while Phase is down boots from it, and the processes of one host share one
fetch per TTL through it (with the lock of :mod:`.lock`).

- *Sealing*: XChaCha20-Poly1305 (libsodium through PyNaCl, imported only here and only when a
  store is used). The key is derived with keyed BLAKE2b (fixed personalisation, the format
  version in the message) from the parts of a ``pss_`` token that never leave the client,
  ``share0`` and ``wrapKey``; the console's REST form (``ServiceAccount <token>``) has no such
  parts, so its key comes from the bearer value, which the server also knows. The associated
  data binds the format version, the mode and the cache key (each length-prefixed), so a file
  copied to another key's name fails authentication. The payload holds the secrets and
  ``fetched_at``, never key material.
- *File name*: a keyed hash of the associated data: no app, environment or folder name shows.
- *Writing*: a temporary file in the folder, fsync, rename (a reader sees the old or the new
  file, never a torn one), mode 0600, under the key's lock, and only when strictly newer than
  the file on disk, so an old copy put back can never win.
- *Folder* (:mod:`.files`): created 0700; a container volume of another mode holds the
  snapshots in its ``phase`` subfolder; anything else is refused with one WARNING and the store
  stays off. Each use opens the folder anew and handles its files relative to it, so a FIFO, a
  link or a huge file in place of a snapshot is refused like a damaged one. Nothing here raises:
  a damaged, foreign or unreadable file is one WARNING and a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from .._core.credentials import Credentials
from .._defaults import DEFAULT_SNAPSHOT_MAX_AGE
from .._errors import scrubbed
from .._models import Secret
from .envelope import NONCE_BYTES, Snapshot, seal, unseal
from .files import HostileFile, read_file, write_atomically
from .folder import AlreadySaid, SnapshotFolder
from .keys import FORMAT_VERSION, SnapshotKey, associated_data, blake2b_32, derive_keys
from .lock import FileLock, HeldLocks

__all__ = [
    "DEFAULT_MAX_AGE",
    "FORMAT_VERSION",
    "Snapshot",
    "SnapshotKey",
    "SnapshotStore",
]

log = logging.getLogger("phase_settings.snapshot")

DEFAULT_MAX_AGE = DEFAULT_SNAPSHOT_MAX_AGE  # seconds: an older snapshot is never served
FUTURE_TOLERANCE = 300.0  # seconds a fetched_at may lie ahead of this host's clock
WRITE_LOCK_WAIT = 5.0  # seconds write() waits for the key's lock when the caller holds none
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # phase_max_response_bytes' default

_SUFFIX = ".snapshot"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SnapshotStore:
    """Snapshots of one token in one folder.

    Args:
        directory: the snapshot folder (``phase_snapshot_dir``).
        token: the Phase token (or its parsed ``Credentials``); only keys derived from it
            are kept.
        max_age: seconds after which a snapshot is never served (``phase_snapshot_max_age``).
        max_response_bytes: ``phase_max_response_bytes``: no snapshot file is larger than twice
            this plus 1 MiB, so a larger file is refused before a byte is read.
        clock: the current time, aware UTC (injectable for tests).
        random_bytes: the nonce source (injectable for tests).
        held: the locks this process holds (the runtime's, which it tells of a fork; one of the
            store's own by default).
        monotonic, sleep: drive the lock's polling (injectable for tests).

    Raises:
        PhaseConfigError: the token is in no known form.
    """

    @scrubbed()
    def __init__(
        self,
        directory: str | os.PathLike[str],
        token: str | SecretStr | Credentials,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], datetime] = _utcnow,
        random_bytes: Callable[[int], bytes] = os.urandom,
        held: HeldLocks | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.directory = os.path.abspath(os.fspath(directory))
        self.max_age = max_age
        self._limit = 2 * max_response_bytes + 1024 * 1024
        self._clock = clock
        self._random_bytes = random_bytes
        self._held = held or HeldLocks()
        self._monotonic = monotonic
        self._sleep = sleep
        self._version = FORMAT_VERSION  # read at construction: tests build other versions
        self._keys = derive_keys(token, self._version)
        self._guard = threading.Lock()
        self._locks: dict[str, FileLock] = {}
        self._write_guards: dict[str, threading.Lock] = {}  # writers of one key take turns
        self._warned: set[str] = set()
        self._folder = SnapshotFolder(self.directory, self._warn_once)
        self.enabled = self._folder.prepare()

    def __repr__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"SnapshotStore({self.directory!r}, {state})"

    def after_fork_in_child(self) -> None:
        """A parent thread may have held this store's guards at fork time: start afresh (the
        lock files' descriptors are closed by the runtime's :class:`HeldLocks`)."""
        self._guard = threading.Lock()
        self._write_guards = {}

    def now(self) -> datetime:
        """The store's current time (aware UTC)."""
        return self._clock()

    # --- names and folder -----------------------------------------------------------------

    @property
    def folder(self) -> str:
        """The folder actually used: ``<directory>/phase`` for a container volume."""
        return self._folder.path

    def path_for(self, key: SnapshotKey) -> str:
        """The snapshot file of ``key``: a keyed hash of its associated data."""
        return os.path.join(self.folder, self._name_for(key))

    def _name_for(self, key: SnapshotKey) -> str:
        digest = blake2b_32(associated_data(key, self._version), key=self._keys.name).hex()
        return digest + _SUFFIX

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        with self._guard:
            if what in self._warned:
                return
            self._warned.add(what)
        log.warning(message, *args)

    # --- reading --------------------------------------------------------------------------

    def read(self, key: SnapshotKey, *, now: datetime | None = None) -> Snapshot | None:
        """The snapshot of ``key`` if one may be served at ``now``, else None.

        None without a word when there is none, or when the store is off; one WARNING when the
        file is damaged, foreign, of another format version or dated in the future; an INFO
        line when it is older than ``max_age``. Never raises.
        """
        if not self.enabled:
            return None
        now = now or self._clock()
        snapshot = self._load(key)
        if snapshot is None:
            return None
        age = (now - snapshot.fetched_at).total_seconds()
        if age < -FUTURE_TOLERANCE:
            self._warn_once(
                f"future {self.path_for(key)} {snapshot.fetched_at.isoformat()}",
                "snapshot %s is dated %.0f s in the future: not served",
                os.path.basename(self.path_for(key)),
                -age,
            )
            return None
        if age > self.max_age:
            log.info(
                "snapshot %s is %.0f s old, older than phase_snapshot_max_age (%.0f s): not served",
                os.path.basename(self.path_for(key)),
                age,
                self.max_age,
            )
            return None
        return snapshot

    def _load(self, key: SnapshotKey, *, writing: bool = False) -> Snapshot | None:
        with self._folder.use() as fd:
            return None if fd is None else self._load_in(fd, key, writing=writing)

    def _load_in(self, fd: int, key: SnapshotKey, *, writing: bool = False) -> Snapshot | None:
        name = self._name_for(key)
        try:
            data = read_file(fd, name, self._limit)
        except FileNotFoundError:
            return None
        except HostileFile as hostile:
            if not writing:  # a write replaces it: the reads say so
                self._warn_once(
                    f"hostile {name} {hostile.what}",
                    "snapshot %s %s: not served",
                    name,
                    hostile.what,
                )
            return None
        except OSError as exc:
            if writing:
                return None  # the write that follows fails too, and says so
            self._warn_once(
                f"read {name} {exc.errno}",
                "snapshot %s cannot be read (%s): not served",
                name,
                exc.strerror or type(exc).__name__,
            )
            return None
        problem = self._unseal(data, key)
        if isinstance(problem, str):
            # Once per file contents: the reads of one load (and of the loads after it) say
            # it once; a new damaged file is news again.
            seen = hashlib.blake2b(data, digest_size=16).hexdigest()
            self._warn_once(f"file {name} {seen}", "snapshot %s %s: not served", name, problem)
            return None
        return problem

    def _unseal(self, data: bytes, key: SnapshotKey) -> Snapshot | str:
        return unseal(data, associated_data(key, self._version), self._keys.seal, self._version)

    # --- writing --------------------------------------------------------------------------

    def seal(self, key: SnapshotKey, secrets: Sequence[Secret], fetched_at: datetime) -> bytes:
        """The file contents for these secrets (a fresh random nonce each time)."""
        aad = associated_data(key, self._version)
        nonce = self._random_bytes(NONCE_BYTES)
        return seal(secrets, fetched_at, aad, self._keys.seal, self._version, nonce)

    def write(
        self,
        key: SnapshotKey,
        secrets: Sequence[Secret],
        fetched_at: datetime,
        *,
        wait: float | None = None,
    ) -> bool:
        """Store ``secrets`` fetched at ``fetched_at`` unless the file on disk is as new or newer.

        Writers of one key in this process take turns; the key's lock file is taken unless
        this process already holds it through this store (waiting at most ``wait`` seconds,
        ``WRITE_LOCK_WAIT`` by default; without the lock nothing is written, except where there is
        no ``fcntl`` at all). Atomic: temporary file, fsync, rename. A file system that refuses
        is one WARNING (once per store), never an exception.

        Returns:
            True when the file now holds these values.

        Raises:
            ValueError: ``fetched_at`` is naive (a caller's bug, not a condition of the disk).
        """
        if not self.enabled:
            return False
        if fetched_at.tzinfo is None:
            raise ValueError("fetched_at must be an aware datetime")
        wait = WRITE_LOCK_WAIT if wait is None else wait
        lock = self._lock_for(key)
        guard = self._write_guard(key)
        if not guard.acquire(timeout=max(wait, 0.001)):
            return False
        try:
            if lock.held_here():
                return self._replace_if_newer(key, secrets, fetched_at)
            with lock.acquire(wait) as got:
                if isinstance(lock.open_error, AlreadySaid):
                    return False  # the lock file's opener said why, once
                if lock.open_error is not None:
                    raise lock.open_error
                if not got and _has_fcntl():
                    log.debug("snapshot lock busy: this fetch is not written")
                    return False
                return self._replace_if_newer(key, secrets, fetched_at)
        except OSError as exc:
            self._warn_once(
                "write",
                "snapshot folder %s cannot be written (%s): loads go on without a snapshot",
                self.directory,
                exc.strerror or type(exc).__name__,
            )
            return False
        finally:
            guard.release()

    def _write_guard(self, key: SnapshotKey) -> threading.Lock:
        with self._guard:
            return self._write_guards.setdefault(self.path_for(key), threading.Lock())

    def _replace_if_newer(
        self, key: SnapshotKey, secrets: Sequence[Secret], fetched_at: datetime
    ) -> bool:
        with self._folder.use() as fd:
            if fd is None:
                return False
            on_disk = self._load_in(fd, key, writing=True)
            if on_disk is not None:
                now = self._clock()
                from_future = (on_disk.fetched_at - now) > timedelta(seconds=FUTURE_TOLERANCE)
                if on_disk.fetched_at >= fetched_at and not from_future:
                    return False
            data = self.seal(key, secrets, fetched_at)
            # one temporary file per key: writers take turns
            write_atomically(fd, self._name_for(key), data)
            return True

    # --- lock -----------------------------------------------------------------------------

    def _lock_for(self, key: SnapshotKey) -> FileLock:
        name = self._name_for(key)[: -len(_SUFFIX)] + ".lock"
        path = os.path.join(self.folder, name)
        with self._guard:
            lock = self._locks.get(path)
            if lock is None:
                lock = FileLock(
                    path,
                    held=self._held,
                    clock=self._monotonic,
                    sleep=self._sleep,
                    opener=lambda: self._folder.open_lock_file(name),
                )
                self._locks[path] = lock
            return lock

    @contextlib.contextmanager
    def lock(self, key: SnapshotKey, wait_seconds: float) -> Iterator[bool]:
        """Hold the key's lock file for the ``with`` block, polling at most ``wait_seconds``.

        Yields whether this caller got it: False after the wait budget, without ``fcntl``, or
        when the store is off. A forked child never holds its parent's lock.
        """
        if not self.enabled:
            yield False
            return
        with self._lock_for(key).acquire(wait_seconds) as got:
            yield got

    def holds_lock(self, key: SnapshotKey) -> bool:
        """True while this process holds the key's lock through this store."""
        return self.enabled and self._lock_for(key).held_here()


def _has_fcntl() -> bool:
    from .lock import fcntl_module

    return fcntl_module() is not None
