"""The fetch of one load: for each folder, memory cache -> second-level store -> Phase.

One request per folder is shared by the concurrent loads of a process (the memory cache's
single-flight); with a second-level store (the on-disk snapshot) the processes of a host share it
too: the leader reads the store, then takes the key's lock (polled for at most half the time
left), reads again, fetches, and writes once the settings class validated.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING

from .._core.retry import Deadline
from .._errors import fresh
from .._models import shown
from .cache import CacheKey, Fetched
from .deferred import write_after_validation
from .runtime import Runtime, SecondLevelStore, identity

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


def _stored_first(
    runtime: Runtime,
    store: SecondLevelStore | None,
    keys: Sequence[CacheKey],
    config: ResolvedConfig,
) -> dict[CacheKey, Fetched] | None:
    """The fresh second-level entries of the keys the memory cache misses: all of them, or None
    (a load of several paths uses the store only if every path is there)."""
    if store is None:
        return None
    found: dict[CacheKey, Fetched] = {}
    for key in keys:
        if config.cache_ttl > 0 and runtime.cache.get_fresh(key) is not None:
            continue
        entry = store.get_fresh(key, config)
        if entry is None:
            return None
        found[key] = entry
    return found


class _Fetch:
    """One folder's fetch by the in-process single-flight leader: the store read first, then
    under the key's lock (polled for at most half the time left) a second read, the request,
    and the write, held until the settings class validated."""

    def __init__(
        self,
        store: SecondLevelStore | None,
        key: CacheKey,
        config: ResolvedConfig,
        deadline: Deadline,
        *,
        reread: bool,
    ) -> None:
        self.store, self.key, self.config, self.deadline = store, key, config, deadline
        self.reread = reread
        self.held = ExitStack()

    def lock(self) -> Fetched | None:
        """Take the key's lock (or give up after the budget); a fresh entry if one appeared."""
        if self.store is None:
            return None
        lock = self.store.lock(self.key, self.config, self.deadline.remaining() / 2)
        self.held.enter_context(lock)
        if not self.reread:
            return None
        stored = self.store.get_fresh(self.key, self.config)
        if stored is not None:
            self.held.close()
        return stored

    def done(self, entry: Fetched) -> None:
        if self.store is None:
            self.held.close()
        else:
            write_after_validation(self.store, self.key, entry, self.config, self.held.close)


def fetch_entries(
    config: ResolvedConfig, options: LoadOptions, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], bool]:
    """The entries of every folder of this load, and whether none needed a request."""
    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    keys = cache_keys(config, client)
    store = runtime.store_for(config)
    wanted = [key for key in keys if key not in options.prefetched]
    stored = None if options.force else _stored_first(runtime, store, wanted, config)
    reread = not options.force and len(keys) == 1  # several paths: all from the store or none
    for key in keys:
        if key in options.errors:
            raise fresh(options.errors[key])
        entry = options.prefetched.get(key)
        if entry is None:

            def fetch(key: CacheKey = key) -> Fetched:
                if stored is not None and key in stored:
                    return stored[key]
                flight = _Fetch(store, key, config, deadline, reread=reread)
                try:
                    found = flight.lock()
                    if found is not None:
                        return found
                    if client is not None:
                        secrets = _list(client, key, deadline)
                    else:
                        with runtime.borrow_client(config) as pooled:
                            secrets = _list(pooled, key, deadline)
                    warn_unresolved(secrets)
                    entry = runtime.cache.new_entry(secrets, config.cache_ttl)
                except BaseException:
                    flight.held.close()
                    raise
                requested.append(key)
                flight.done(entry)
                return entry

            entry, _ = runtime.cache.fetch(
                key, fetch, ttl=config.cache_ttl, deadline=deadline, force=options.force
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
    client runs in a worker thread); never blocks the event loop (the store and its lock are
    used in worker threads)."""
    import anyio.to_thread

    from .runtime import new_client

    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    keys = cache_keys(config, client)
    store = await anyio.to_thread.run_sync(runtime.store_for, config)
    stored = (
        None
        if options.force
        else await anyio.to_thread.run_sync(
            _stored_first, runtime, store, [k for k in keys if k not in options.prefetched], config
        )
    )
    reread = not options.force and len(keys) == 1  # several paths: all from the store or none
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
            flight = _Fetch(store, key, config, deadline, reread=reread)
            try:
                found = await anyio.to_thread.run_sync(flight.lock)
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
                entry = runtime.cache.new_entry(secrets, config.cache_ttl)
            except BaseException:
                flight.held.close()
                raise
            requested.append(key)
            await anyio.to_thread.run_sync(flight.done, entry)
            return entry

        entry, _ = await runtime.cache.afetch(
            key, fetch, ttl=config.cache_ttl, deadline=deadline, force=options.force
        )
        fetched.append((key, entry))
    return fetched, not requested
