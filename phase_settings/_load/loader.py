"""The load pipeline: a resolved configuration in, the key/value pairs of one load out.

``load(config, options, runtime)`` (and its async twin :func:`load_async`) goes, for each folder
of the load: memory cache -> each shared tier (the on-disk snapshot, when configured) -> Phase,
one request per folder shared by concurrent loads. When Phase cannot answer and falling back is
allowed: the newest of the process's last good values and the shared tiers' copies, then
(``phase_fallback="dotenv"``) the env files. Every other error is raised at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._errors import PhaseConfigError, PhaseConnectionError, PhaseError, PhaseUnavailableError
from .._models import LoadStatus
from .fetch import afetch_entries, cache_keys, fetch_entries, warn_unresolved
from .result import LoadOptions, LoadResult, merge_secrets, signature_of
from .runtime import Runtime
from .tiers import newest_copy

if TYPE_CHECKING:
    from .._client.client import PhaseClient
    from .._settings.config import ResolvedConfig
    from .cache import CacheKey, Fetched

__all__ = ["cache_keys", "enabled", "fetch_entries", "load", "load_async", "warn_unresolved"]

logger = logging.getLogger("phase_settings.loader")


def _now() -> datetime:
    return datetime.now(UTC)


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
    exc = _unknown_host_error(config, runtime, client, exc)
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
                "Phase is unavailable (%s); serving the %s values of %s, %s old (fetched at %s)",
                cause,
                "last good" if source == "stale" else "on-disk snapshot's",
                name,
                _age(_now() - fetched_at),
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


# Phase Cloud's hosts: a resolver that does not know them is offline or broken, never a typo
_PHASE_CLOUD_HOSTS = frozenset({"api.phase.dev", "console.phase.dev"})


def _unknown_host_error(
    config: ResolvedConfig, runtime: Runtime, client: PhaseClient | None, exc: PhaseError
) -> PhaseError:
    """DESIGN §3: a host the resolver says does not exist (EAI_NONAME) is a configuration
    error when it is not Phase Cloud's and no copy of the load exists (a typo'd host can
    never have one: the API base is part of the key); otherwise ``exc`` as it is, to fall
    back (offline laptops and split-horizon DNS off the VPN answer EAI_NONAME too)."""
    host = exc.unknown_host if isinstance(exc, PhaseConnectionError) else None
    if host is None or host.lower().rstrip(".") in _PHASE_CLOUD_HOSTS:
        return exc
    if _last_good(config, runtime, client) is not None:
        return exc
    error = PhaseConfigError(
        f"The resolver does not know the host {host}: is PHASE_HOST (or the proxy's host) "
        "spelled right? No copy of these values exists to serve instead"
    )
    error.__cause__ = exc
    return error


def _age(age: timedelta) -> str:
    """An age as people say it: 42 s, 5 min, 3 h, 2 days."""
    seconds = max(0, int(age.total_seconds()))
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "days" else 1):
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _last_good(
    config: ResolvedConfig, runtime: Runtime, client: PhaseClient | None
) -> tuple[list[tuple[CacheKey, Fetched]], str] | None:
    """For every folder, the newest of the process's last good entry and the shared tiers'
    copies; None unless every folder has one."""
    tiers = runtime.tiers_for(config)
    chosen: list[tuple[CacheKey, Fetched]] = []
    from_store = False
    for key in cache_keys(config, client):
        memory = runtime.cache.last_good(key)
        stored = newest_copy(tiers, key)
        if stored is not None and (memory is None or stored.fetched_at > memory.fetched_at):
            chosen.append((key, runtime.cache.stale(stored)))
            from_store = True
        elif memory is not None:
            chosen.append((key, memory))
        else:
            return None
    return chosen, ("snapshot" if from_store else "stale")
