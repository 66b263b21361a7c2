"""The fetch of one load: for each folder, memory cache -> each shared tier -> Phase.

One request per folder is shared by the concurrent loads of a process (the memory cache's
single-flight); with shared tiers (the on-disk snapshot) the processes that share them share it
too: the leader reads the tiers, then takes each tier's lock for the key (polled for at most half
the time left), reads that tier again, fetches, and writes once the settings class validated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._core.retry import Deadline
from .._errors import fresh
from .._models import shown
from .cache import CacheKey, Fetched
from .runtime import Runtime, identity
from .tiers import SharedTier, TierFetch, fresh_copy

if TYPE_CHECKING:
    from .._client.client import PhaseClient
    from .._models import Secret
    from .._settings.config import ResolvedConfig
    from .result import LoadOptions

__all__ = ["afetch_entries", "cache_keys", "fetch_entries", "warn_unresolved"]

logger = logging.getLogger("phase_settings.fetch")

_UNRESOLVED = r"\$\{(?!\{)[^{}]+\}"  # compiled on first use (re caches it)


def warn_unresolved(secrets: Sequence[Secret]) -> None:
    """One WARNING per value that still holds a ``${…}`` reference (the key only)."""
    for secret in secrets:
        if "${" in secret.value and re.search(_UNRESOLVED, secret.value):
            logger.warning(
                "Phase secret %s (path %s) holds a reference that Phase could not resolve",
                shown(secret.key),
                shown(secret.path),
            )


def cache_keys(config: ResolvedConfig, client: PhaseClient | None = None) -> list[CacheKey]:
    """The cache keys of a load: one per folder (one for "every folder")."""
    if client is not None:
        base, fingerprint = client.base_url, client.token_fingerprint
    else:
        base, fingerprint = identity(config)
    assert config.app_id is not None
    return [
        CacheKey(base, config.app_id, config.env, path, config.tags, fingerprint)
        for path in (config.paths if config.paths is not None else (None,))
    ]


# --- the fetch ------------------------------------------------------------------------------


def _shared_first(
    runtime: Runtime, tiers: Sequence[SharedTier], keys: Sequence[CacheKey], ttl: float
) -> dict[CacheKey, Fetched] | None:
    """The fresh shared copies of the keys the memory cache misses: all of them, or None (a
    load of several paths uses the shared tiers only if every path is there)."""
    if not tiers:
        return None
    found: dict[CacheKey, Fetched] = {}
    for key in keys:
        if runtime.cache.get_fresh(key, ttl) is not None:
            continue
        entry = fresh_copy(runtime.cache, tiers, key, ttl)
        if entry is None:
            return None
        found[key] = entry
    return found


def fetch_entries(
    config: ResolvedConfig, options: LoadOptions, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], bool]:
    """The entries of every folder of this load, and whether none needed a request."""
    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    keys = cache_keys(config, client)
    tiers = runtime.tiers_for(config)
    ttl = config.cache_ttl
    wanted = [key for key in keys if key not in options.prefetched]
    stored = None if options.force else _shared_first(runtime, tiers, wanted, ttl)
    reread = not options.force and len(keys) == 1  # several paths: all from the tiers or none
    for key in keys:
        if key in options.errors:
            raise fresh(options.errors[key])
        entry = options.prefetched.get(key)
        if entry is None:

            def fetch(key: CacheKey = key) -> Fetched:
                if stored is not None and key in stored:
                    return stored[key]
                flight = TierFetch(runtime.cache, tiers, key, ttl, deadline, reread=reread)
                try:
                    found = flight.lock() if tiers else None
                    if found is not None:
                        return found
                    if client is not None:
                        secrets = _list(client, key, deadline)
                    else:
                        with runtime.borrow_client(config) as pooled:
                            secrets = _list(pooled, key, deadline)
                    warn_unresolved(secrets)
                    entry = runtime.cache.new_entry(secrets, ttl)
                except BaseException:
                    flight.failed()
                    raise
                requested.append(key)
                if tiers:
                    flight.done(entry)
                return entry

            entry, _ = runtime.cache.fetch(
                key, fetch, ttl=ttl, deadline=deadline, force=options.force
            )
        else:
            requested.append(key)
        fetched.append((key, entry))
    return fetched, not requested


def _list(client: PhaseClient, key: CacheKey, deadline: Deadline) -> list[Secret]:
    return client.list_secrets(
        key.app_id, key.env, path=key.path, tags=key.tags or None, deadline=deadline
    )


async def afetch_entries(
    config: ResolvedConfig, options: LoadOptions, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], bool]:
    """The async twin of :func:`fetch_entries`: ``AsyncPhaseClient`` (an injected synchronous
    client runs in a worker thread); never blocks the event loop (the shared tiers and their
    locks are used in worker threads)."""
    import anyio.to_thread

    from .runtime import new_client

    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    keys = cache_keys(config, client)
    tiers = await anyio.to_thread.run_sync(runtime.tiers_for, config)
    ttl = config.cache_ttl
    stored = (
        None
        if options.force
        else await anyio.to_thread.run_sync(
            _shared_first, runtime, tiers, [k for k in keys if k not in options.prefetched], ttl
        )
    )
    reread = not options.force and len(keys) == 1  # several paths: all from the tiers or none
    for key in keys:
        if key in options.errors:
            raise fresh(options.errors[key])
        prefetched = options.prefetched.get(key)
        if prefetched is not None:
            fetched.append((key, prefetched))
            requested.append(key)
            continue

        async def fetch(key: CacheKey = key) -> Fetched:
            if stored is not None and key in stored:
                return stored[key]
            flight = TierFetch(runtime.cache, tiers, key, ttl, deadline, reread=reread)
            try:
                found = await anyio.to_thread.run_sync(flight.lock) if tiers else None
                if found is not None:
                    return found
                if client is not None:
                    secrets = await anyio.to_thread.run_sync(_list, client, key, deadline)
                else:
                    async with new_client(config, asynchronous=True) as own:
                        secrets = await own.list_secrets(
                            key.app_id,
                            key.env,
                            path=key.path,
                            tags=key.tags or None,
                            deadline=deadline,
                        )
                warn_unresolved(secrets)
                entry = runtime.cache.new_entry(secrets, ttl)
            except BaseException:
                flight.failed()
                raise
            requested.append(key)
            if tiers:
                await anyio.to_thread.run_sync(flight.done, entry)
            return entry

        entry, _ = await runtime.cache.afetch(
            key, fetch, ttl=ttl, deadline=deadline, force=options.force
        )
        fetched.append((key, entry))
    return fetched, not requested
