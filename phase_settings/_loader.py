"""The load pipeline: a resolved configuration in, the key/value pairs of one load out.

``load(config, options, runtime)`` (and its async twin :func:`load_async`) goes, for each folder
of the load: memory cache -> second-level store (the on-disk snapshot, when the runtime has
one) -> Phase, one request per folder shared by concurrent loads. When Phase cannot answer and
falling back is allowed: the newer of the process's last good values and the second-level
store's, then (``phase_fallback="dotenv"``) the env files. Every other error is raised at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._cache import CacheKey, Fetched
from ._errors import PhaseConfigError, PhaseError, PhaseUnavailableError, fresh
from ._loaded import LoadOptions, LoadResult, merge_secrets, signature_of
from ._models import LoadStatus
from ._retry import Deadline
from ._runtime import Runtime, identity

if TYPE_CHECKING:
    from ._client import PhaseClient
    from ._config import ResolvedConfig
    from ._models import Secret

__all__ = ["cache_keys", "enabled", "fetch_entries", "load", "load_async", "warn_unresolved"]

logger = logging.getLogger("phase_settings.loader")

_UNRESOLVED = r"\$\{(?!\{)[^{}]+\}"  # compiled on first use (re caches it)


def _now() -> datetime:
    return datetime.now(UTC)


def warn_unresolved(secrets: Sequence[Secret]) -> None:
    """One WARNING per value that still holds a ``${…}`` reference (the key only)."""
    for secret in secrets:
        if "${" in secret.value and re.search(_UNRESOLVED, secret.value):
            logger.warning(
                "Phase secret %s (path %s) holds a reference that Phase could not resolve",
                secret.key,
                secret.path,
            )


def enabled(
    config: ResolvedConfig, settings_cls: type, client: PhaseClient | None, runtime: Runtime
) -> bool:
    """False when no token is configured (local development); raises if one is required."""
    if client is not None or config.token is not None:
        if not config.app_id:
            raise PhaseConfigError(
                "A Phase token is set but no app id: set phase_app_id in model_config, "
                "PHASE_APP_ID in the environment, or appId in .phase.json"
            )
        return True
    if config.required:
        raise PhaseConfigError(
            f"{settings_cls.__name__} requires Phase (phase_required=True) but no token "
            "is set: set PHASE_SERVICE_TOKEN"
        )
    if runtime.first_announcement(settings_cls):
        logger.info(
            "No Phase token (PHASE_SERVICE_TOKEN): Phase disabled for %s; using environment "
            "variables and .env",
            settings_cls.__name__,
        )
    return False


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


def _from_store(runtime: Runtime, key: CacheKey, config: ResolvedConfig) -> Fetched | None:
    store = runtime.second_level
    return store.get_fresh(key, config) if store is not None else None


def _keep(runtime: Runtime, key: CacheKey, entry: Fetched, config: ResolvedConfig) -> None:
    store = runtime.second_level
    if store is not None:
        store.put(key, entry, config)


def fetch_entries(
    config: ResolvedConfig, options: LoadOptions, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], bool]:
    """The entries of every folder of this load, and whether none needed a request."""
    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    for key in cache_keys(config, client):
        if key in options.errors:
            raise fresh(options.errors[key])
        entry = options.prefetched.get(key)
        if entry is None:

            def fetch(key: CacheKey = key) -> Fetched:
                if not options.force:
                    stored = _from_store(runtime, key, config)
                    if stored is not None:
                        return stored
                if client is not None:
                    secrets = _list(client, key, deadline)
                else:
                    with runtime.borrow_client(config) as pooled:
                        secrets = _list(pooled, key, deadline)
                warn_unresolved(secrets)
                entry = runtime.cache.new_entry(secrets, config.cache_ttl)
                requested.append(key)
                _keep(runtime, key, entry, config)
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
    client runs in a worker thread); never blocks the event loop."""
    import anyio.to_thread

    from ._runtime import new_client

    deadline = Deadline(config.deadline)
    fetched: list[tuple[CacheKey, Fetched]] = []
    requested: list[CacheKey] = []
    for key in cache_keys(config, client):
        if key in options.errors:
            raise fresh(options.errors[key])
        prefetched = options.prefetched.get(key)
        if prefetched is not None:
            fetched.append((key, prefetched))
            requested.append(key)
            continue

        async def fetch(key: CacheKey = key) -> Fetched:
            if not options.force:
                stored = await anyio.to_thread.run_sync(_from_store, runtime, key, config)
                if stored is not None:
                    return stored
            if client is not None:
                secrets = await anyio.to_thread.run_sync(_list, client, key, deadline)
            else:
                async with new_client(config, asynchronous=True) as own:
                    secrets = await own.list_secrets(
                        key.app_id, key.env, path=key.path, tags=key.tags or None, deadline=deadline
                    )
            warn_unresolved(secrets)
            entry = runtime.cache.new_entry(secrets, config.cache_ttl)
            requested.append(key)
            await anyio.to_thread.run_sync(_keep, runtime, key, entry, config)
            return entry

        entry, _ = await runtime.cache.afetch(
            key, fetch, ttl=config.cache_ttl, deadline=deadline, force=options.force
        )
        fetched.append((key, entry))
    return fetched, not requested


# --- the load ---------------------------------------------------------------------------------


def failure_status(previous: LoadStatus, exc: PhaseError) -> LoadStatus:
    """The status after a failed load: stale since the first failure, the error named."""
    stale_since = previous.stale_since or _now()
    return LoadStatus(
        previous.source, previous.fetched_at, stale_since, f"{type(exc).__name__}: {exc}"
    )


def load(
    config: ResolvedConfig,
    options: LoadOptions,
    runtime: Runtime,
    *,
    settings_cls: type,
    client: PhaseClient | None = None,
) -> LoadResult:
    """Fetch (or take from a cache) the key/value pairs of one load of ``settings_cls``.

    Raises:
        PhaseError: Phase refused, or could not answer and no fallback applies.
    """
    if not enabled(config, settings_cls, client, runtime):
        runtime.set_status(settings_cls, LoadStatus())
        return LoadResult({}, {}, None, LoadStatus())
    try:
        entries, cached = fetch_entries(config, options, runtime, client)
    except PhaseError as exc:
        return _failed(config, options, runtime, settings_cls, client, exc)
    return _served(config, runtime, settings_cls, entries, "cache" if cached else "phase")


async def load_async(
    config: ResolvedConfig,
    options: LoadOptions,
    runtime: Runtime,
    *,
    settings_cls: type,
    client: PhaseClient | None = None,
) -> LoadResult:
    """The async twin of :func:`load` (anyio: runs under asyncio and trio)."""
    if not enabled(config, settings_cls, client, runtime):
        runtime.set_status(settings_cls, LoadStatus())
        return LoadResult({}, {}, None, LoadStatus())
    try:
        entries, cached = await afetch_entries(config, options, runtime, client)
    except PhaseError as exc:
        return _failed(config, options, runtime, settings_cls, client, exc)
    return _served(config, runtime, settings_cls, entries, "cache" if cached else "phase")


def _served(
    config: ResolvedConfig,
    runtime: Runtime,
    settings_cls: type,
    entries: Sequence[tuple[CacheKey, Fetched]],
    source: Any,
    previous: LoadStatus | None = None,
) -> LoadResult:
    fetched = [(key.path, entry) for key, entry in entries]
    values, origins = merge_secrets(fetched, use_overrides=config.use_overrides)
    fetched_at = min(entry.fetched_at for _, entry in fetched)
    if previous is None:
        status = LoadStatus(source, fetched_at)
    else:
        status = LoadStatus(source, fetched_at, previous.stale_since, previous.last_error)
    runtime.set_status(settings_cls, status)
    return LoadResult(
        values,
        origins,
        signature_of(fetched),
        status,
        config.app_id,
        config.env,
        tuple(entries),
    )


def _failed(
    config: ResolvedConfig,
    options: LoadOptions,
    runtime: Runtime,
    settings_cls: type,
    client: PhaseClient | None,
    exc: PhaseError,
) -> LoadResult:
    failed = failure_status(runtime.status(settings_cls), exc)
    if not isinstance(exc, PhaseUnavailableError) or not options.fallback:
        runtime.set_status(settings_cls, failed)
        raise exc
    cause = f"{type(exc).__name__}: {exc}"
    name = settings_cls.__name__
    if config.fallback != "raise":
        chosen = _last_good(config, runtime, client)
        if chosen is not None:
            entries, source = chosen
            fetched_at = min(entry.fetched_at for _, entry in entries)
            logger.warning(
                "Phase is unavailable (%s); serving the %s values of %s, fetched at %s",
                cause,
                "last good" if source == "stale" else "snapshot's",
                name,
                fetched_at.isoformat(timespec="seconds"),
            )
            return _served(config, runtime, settings_cls, entries, source, failed)
    if config.fallback == "dotenv":
        existing = [p for p in config.env_files if p.is_file()]
        if existing:
            logger.warning(
                "Phase is unavailable (%s); %s falls back to %s",
                cause,
                name,
                ", ".join(str(p) for p in existing),
            )
            status = LoadStatus("dotenv", None, failed.stale_since, failed.last_error)
            runtime.set_status(settings_cls, status)
            return LoadResult({}, {}, None, status, config.app_id, config.env)
    runtime.set_status(settings_cls, failed)
    raise exc


def _last_good(
    config: ResolvedConfig, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], str] | None:
    """For every folder, the newer of the process's last good entry and the second-level
    store's; None unless every folder has one."""
    store = runtime.second_level
    chosen: list[tuple[CacheKey, Fetched]] = []
    from_store = False
    for key in cache_keys(config, client):
        memory = runtime.cache.last_good(key)
        stored = store.get_last_good(key, config) if store is not None else None
        if stored is not None and (memory is None or stored.fetched_at > memory.fetched_at):
            chosen.append((key, stored))
            from_store = True
        elif memory is not None:
            chosen.append((key, memory))
        else:
            return None
    return chosen, ("snapshot" if from_store else "stale")
