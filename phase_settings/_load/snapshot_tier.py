"""The on-disk snapshot as the loader's second-level store.

Between the memory cache and Phase: a snapshot younger than the load's TTL is served without a
request and keeps its remaining lifetime (``fetched_at`` + the drawn lifetime); during an outage
one no older than ``phase_snapshot_max_age`` is offered next to the process's last good values;
a fetch is written to it (after the settings validated) and the key's lock file lets the
processes of one host share that fetch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from .._snapshot.store import SnapshotKey, SnapshotStore
from .cache import CacheKey, Fetched

if TYPE_CHECKING:
    from .._settings.config import ResolvedConfig

__all__ = ["SnapshotLayer"]


def _snapshot_mode(config: ResolvedConfig) -> str:
    """The mode a snapshot is sealed for (part of its associated data and file name): the
    configured one, so that a process started during an outage finds the file its
    predecessor wrote with the same configuration."""
    return config.mode


class SnapshotLayer:
    """A :class:`SnapshotStore` seen as a second-level store.

    Args:
        store: the store of one folder and token.
        lifetime: draws an entry's lifetime from a TTL (the memory cache's draw).
        fingerprint: the token fingerprint snapshot names are bound to (the bearer part's,
            ``Credentials.header_fingerprint``: the cache keys' covers the key parts too, and
            the snapshots written before it must stay readable).
    """

    def __init__(
        self, store: SnapshotStore, lifetime: Callable[[float], float], fingerprint: str
    ) -> None:
        self.store = store
        self._lifetime = lifetime
        self._fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"SnapshotLayer({self.store!r})"

    def _key(self, key: CacheKey, config: ResolvedConfig) -> SnapshotKey:
        return SnapshotKey(
            _snapshot_mode(config), *key._replace(token_fingerprint=self._fingerprint)
        )

    def get_fresh(self, key: CacheKey, config: ResolvedConfig) -> Fetched | None:
        """The snapshot if it is younger than the TTL, with its remaining lifetime."""
        ttl = config.cache_ttl
        if ttl <= 0 or not self.store.enabled:
            return None
        now: datetime = self.store.now()
        snapshot = self.store.read(self._key(key, config), now=now)
        if snapshot is None:
            return None
        age = snapshot.age(now)
        if age >= ttl:
            return None
        left = self._lifetime(ttl) - age
        if left <= 0:  # younger than the TTL but past the drawn lifetime: until the TTL ends
            left = ttl - age
        return Fetched(snapshot.secrets, snapshot.fetched_at, left)

    def get_last_good(self, key: CacheKey, config: ResolvedConfig) -> Fetched | None:
        """The snapshot if it is no older than ``phase_snapshot_max_age``."""
        snapshot = self.store.read(self._key(key, config))
        return None if snapshot is None else Fetched(snapshot.secrets, snapshot.fetched_at, 0.0)

    def put(self, key: CacheKey, entry: Fetched, config: ResolvedConfig) -> None:
        """Write ``entry`` unless the file holds a fetch as new or newer (never raises). Without
        the key's lock it tries the lock once and does not wait."""
        self.store.write(self._key(key, config), entry.secrets, entry.fetched_at, wait=0.0)

    @contextmanager
    def lock(self, key: CacheKey, config: ResolvedConfig, wait: float) -> Iterator[bool]:
        """Hold the key's lock file, polled without blocking for at most ``wait`` seconds."""
        with self.store.lock(self._key(key, config), wait) as got:
            yield got
