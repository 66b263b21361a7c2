"""The shared tiers of a load: the stores that processes share, between the memory cache and
Phase.

A load goes memory cache -> each shared tier in order (the host's snapshot; a fleet's copy is
one more entry of the list) -> Phase. A tier knows keys and records, never the loader or the
configuration: it is asked for a copy younger than the reader's TTL, for its newest copy during
an outage, to keep a fetch, and for the key's lock among the processes that share it. The memory
cache owns the TTL rules: it turns a tier's copy into an entry (drawing its lifetime), and with
a TTL of 0 no tier is asked for a fresh copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .cache import serves_fresh
from .scope import write_after_validation

if TYPE_CHECKING:
    from .._core.deadline import Deadline
    from .._models import Secret
    from .cache import CacheKey, Fetched, SecretCache

__all__ = ["Copy", "SharedTier", "TierFetch", "fresh_copy", "newest_copy", "write_all"]


class Copy(NamedTuple):
    """A tier's copy of one key: what was fetched, when, and its age by the tier's clock."""

    secrets: tuple[Secret, ...]
    fetched_at: datetime
    age: float  # seconds since the fetch, never negative

    def __repr__(self) -> str:
        return f"Copy({len(self.secrets)} secrets, fetched_at={self.fetched_at.isoformat()})"


class SharedTier(Protocol):
    """A store shared by processes (the host's snapshot, a fleet's copy): consulted in order when
    the memory cache misses, written after each fetch once the settings class validated (the
    key's lock held from before the fetch until after the write), and offered as a fallback next
    to the process's last good values (the newest wins)."""

    def fresh(self, key: CacheKey, ttl: float) -> Copy | None:
        """The copy of ``key`` if it is younger than ``ttl`` seconds; else None."""

    def last_good(self, key: CacheKey) -> Copy | None:
        """The newest copy still allowed as a fallback during an outage; else None."""

    def put(self, key: CacheKey, entry: Fetched) -> None:
        """Keep ``entry`` (replacing only an older copy); never raises."""

    def lock(self, key: CacheKey, wait: float) -> AbstractContextManager[bool]:
        """Hold ``key`` exclusively among the processes sharing the tier for the ``with`` block,
        polling at most ``wait`` seconds; yields whether it was got (a caller that did not get
        it goes on without it)."""


def fresh_copy(
    cache: SecretCache, tiers: Sequence[SharedTier], key: CacheKey, ttl: float
) -> Fetched | None:
    """The first tier's copy of ``key`` younger than ``ttl``, as an entry of the cache (with the
    rest of a drawn lifetime); None when no tier has one or the TTL serves nothing fresh."""
    if not serves_fresh(ttl):
        return None
    for tier in tiers:
        copy = tier.fresh(key, ttl)
        if copy is not None:
            return cache.adopt(copy, ttl)
    return None


def newest_copy(tiers: Sequence[SharedTier], key: CacheKey) -> Copy | None:
    """The newest of the tiers' outage copies of ``key``, or None."""
    copies = [copy for tier in tiers if (copy := tier.last_good(key)) is not None]
    return max(copies, key=lambda copy: copy.fetched_at, default=None)


def write_all(tiers: Sequence[SharedTier], key: CacheKey, entry: Fetched) -> None:
    """Keep ``entry`` in every tier, in order."""
    for tier in tiers:
        tier.put(key, entry)


class TierFetch:
    """The tiers' part of one folder's fetch by the in-process single-flight leader: each tier's
    lock in order (each polled for at most half the time left), a second read of that tier once
    its lock is held, and the release once the fetch was written (or failed).

    Args:
        cache: the memory cache (it builds entries from copies).
        tiers: the shared tiers of the load, in order.
        key, ttl, deadline: the folder's cache key, the load's TTL and deadline.
        reread: read each tier again once its lock is held (a load of one folder).
    """

    def __init__(
        self,
        cache: SecretCache,
        tiers: Sequence[SharedTier],
        key: CacheKey,
        ttl: float,
        deadline: Deadline,
        *,
        reread: bool,
    ) -> None:
        self.cache, self.tiers, self.key, self.ttl = cache, tiers, key, ttl
        self.deadline, self.reread = deadline, reread
        self.held = ExitStack()

    def lock(self) -> Fetched | None:
        """Take each tier's lock (or give up after its budget); a fresh entry if one appeared."""
        for tier in self.tiers:
            self.held.enter_context(tier.lock(self.key, self.deadline.remaining() / 2))
            if not self.reread:
                continue
            found = fresh_copy(self.cache, (tier,), self.key, self.ttl)
            if found is not None:
                self.held.close()
                return found
        return None

    def done(self, entry: Fetched) -> None:
        """Write ``entry`` to every tier, then release the locks, once the load's settings
        validated (now outside a load); without tiers, release now."""
        if not self.tiers:
            self.held.close()
            return
        write_after_validation(partial(write_all, self.tiers, self.key, entry), self.held.close)

    def failed(self) -> None:
        """Release the locks after a fetch that failed."""
        self.held.close()
