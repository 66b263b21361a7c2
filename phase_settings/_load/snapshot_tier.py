"""The on-disk snapshot as a shared tier of the load (the host's tier).

Between the memory cache and Phase: a snapshot younger than the reader's TTL is served without
a request (the memory cache gives it the rest of a drawn lifetime); during an outage one no older
than ``phase_snapshot_max_age`` is offered next to the process's last good values; a fetch is
written to it (after the settings validated) and the key's lock file lets the processes of one
host share that fetch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .._snapshot.store import SnapshotKey, SnapshotStore
from .cache import CacheKey, Fetched
from .tiers import Copy

__all__ = ["SnapshotTier"]


class SnapshotTier:
    """A :class:`SnapshotStore` seen as a shared tier.

    Args:
        store: the store of one folder and token.
        mode: the configured API mode, which a snapshot is sealed for (part of its associated
            data and file name), so that a process started during an outage finds the file its
            predecessor wrote with the same configuration.
        fingerprint: the token fingerprint snapshot names are bound to (the bearer part's,
            ``Credentials.header_fingerprint``: the cache keys' covers the key parts too, and
            the snapshots written before it must stay readable).
    """

    def __init__(self, store: SnapshotStore, mode: str, fingerprint: str) -> None:
        self.store = store
        self.mode = mode
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"SnapshotTier({self.store!r}, mode={self.mode!r})"

    def _key(self, key: CacheKey) -> SnapshotKey:
        return SnapshotKey(self.mode, *key._replace(token_fingerprint=self._fingerprint))

    def fresh(self, key: CacheKey, ttl: float) -> Copy | None:
        """The snapshot if it is younger than ``ttl`` by the store's clock."""
        if not self.store.enabled:
            return None
        now = self.store.now()
        snapshot = self.store.read(self._key(key), now=now)
        if snapshot is None:
            return None
        age = snapshot.age(now)
        return Copy(snapshot.secrets, snapshot.fetched_at, age) if age < ttl else None

    def last_good(self, key: CacheKey) -> Copy | None:
        """The snapshot if it is no older than ``phase_snapshot_max_age``."""
        now = self.store.now()
        snapshot = self.store.read(self._key(key), now=now)
        return None if snapshot is None else Copy(*snapshot, snapshot.age(now))

    def put(self, key: CacheKey, entry: Fetched) -> None:
        """Write ``entry`` unless the file holds a fetch as new or newer (never raises). Without
        the key's lock it tries the lock once and does not wait."""
        self.store.write(self._key(key), entry.secrets, entry.fetched_at, wait=0.0)

    @contextmanager
    def lock(self, key: CacheKey, wait: float) -> Iterator[bool]:
        """Hold the key's lock file, polled without blocking for at most ``wait`` seconds."""
        with self.store.lock(self._key(key), wait) as got:
            yield got
