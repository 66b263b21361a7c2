"""``LiveSettings`` (refresh, hooks, background thread) and ``aload`` for asyncio apps."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    SecretsSettingsSource,
    SettingsError,
)

from ._cache import CacheKey, Fetched, process_cache
from ._client import AsyncPhaseClient
from ._config import ResolvedConfig
from ._errors import PhaseError
from ._models import LoadStatus
from ._retry import Deadline
from ._source import (
    LoadOptions,
    PhaseSettingsSource,
    load_options,
    signature_of,
    warn_unresolved,
)

__all__ = ["LiveSettings", "aload"]

logger = logging.getLogger("phase_settings")

S = TypeVar("S", bound=BaseSettings)
Hook = Callable[[Any, Any, frozenset[str]], object]

_MIN_INTERVAL = 1.0
_BACKOFF_START = 1.0
_BACKOFF_MAX = 300.0


def phase_sources(
    settings_cls: type[BaseSettings], init_kwargs: dict[str, Any]
) -> list[PhaseSettingsSource]:
    """The Phase sources ``settings_cls`` would load through, built as pydantic-settings
    builds them (building a source makes no request)."""
    sources = settings_cls.settings_customise_sources(
        settings_cls,
        init_settings=InitSettingsSource(settings_cls, init_kwargs=init_kwargs),
        env_settings=EnvSettingsSource(settings_cls),
        dotenv_settings=DotEnvSettingsSource(settings_cls),
        file_secret_settings=SecretsSettingsSource(settings_cls),
    )
    return [s for s in sources if isinstance(s, PhaseSettingsSource)]


def _plan(
    settings_cls: type[BaseSettings], init_kwargs: dict[str, Any]
) -> list[tuple[PhaseSettingsSource, ResolvedConfig]]:
    plan = []
    for source in phase_sources(settings_cls, init_kwargs):
        config = source.resolve()
        if source.enabled(config):
            plan.append((source, config))
    return plan


class LiveSettings(Generic[S]):
    """A settings instance kept current: ``refresh()`` on demand, ``start()`` in the background.

    Args:
        settings_cls: the settings class.
        **init_kwargs: passed to every construction of it.

    The first instance is built now. Instances are never mutated: a refresh builds a new one
    and swaps the reference, so ``current`` never blocks and never shows a half-updated object.
    """

    def __init__(self, settings_cls: type[S], **init_kwargs: Any):
        self.settings_cls = settings_cls
        self._init_kwargs = init_kwargs
        self._hooks: list[Hook] = []
        self._signature: tuple[Any, ...] | None = None
        self._current: S = settings_cls(**init_kwargs)
        self._reset_threading()
        self._interval: float | None = None
        _LIVE.add(self)

    def _reset_threading(self) -> None:
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        running = self._thread is not None and self._thread.is_alive()
        return f"LiveSettings({self.settings_cls.__name__}, running={running})"

    @property
    def current(self) -> S:
        """The current instance (a plain read: never waits for a refresh in progress)."""
        return self._current

    @property
    def status(self) -> LoadStatus:
        """How the last load or refresh went."""
        return process_cache.status(self.settings_cls)

    def on_change(self, callback: Hook) -> Hook:
        """Register ``callback(old, new, changed)``, called after a refresh that changed a field.

        ``changed`` is a frozenset of field names (never values). Hooks run in registration
        order; one that raises is logged and does not stop the others. Usable as a decorator.
        """
        self._hooks.append(callback)
        return callback

    # -- refresh --------------------------------------------------------------------------------

    def refresh(self) -> frozenset[str]:
        """Fetch now (bypassing the cache's TTL, never falling back), rebuild, swap, call hooks.

        Returns:
            The names of the fields whose validated value changed.

        Raises:
            PhaseError: Phase failed; the current instance is kept.
            ValidationError: the new values do not validate; the current instance is kept.
        """
        with self._refresh_lock:
            try:
                prefetched, signature = self._fetch_all()
                if signature is not None and signature == self._signature:
                    return frozenset()
                with load_options(prefetched=prefetched, fallback=False):
                    new = self.settings_cls(**self._init_kwargs)
            except (PhaseError, ValidationError, SettingsError) as exc:
                self._warn_failed(exc)
                raise
            self._signature = signature
            return self._swap(new)

    async def arefresh(self) -> frozenset[str]:
        """:meth:`refresh` for asyncio apps: fetches with ``AsyncPhaseClient`` and rebuilds
        off the event loop."""
        plan = await asyncio.to_thread(_plan, self.settings_cls, self._init_kwargs)
        prefetched, errors = await _afetch_plan(plan, force=True)
        if errors:
            error = next(iter(errors.values()))
            for source, _ in plan:
                process_cache.set_status(self.settings_cls, source.failure_status(error))
            self._warn_failed(error)
            raise error
        signature = _signature(plan, prefetched)

        def rebuild() -> frozenset[str]:
            with self._refresh_lock:
                if signature == self._signature:
                    return frozenset()
                with load_options(prefetched=prefetched, fallback=False):
                    try:
                        new = self.settings_cls(**self._init_kwargs)
                    except (ValidationError, SettingsError) as exc:
                        self._warn_failed(exc)
                        raise
                self._signature = signature
                return self._swap(new)

        return await asyncio.to_thread(rebuild)

    def _warn_failed(self, exc: BaseException) -> None:
        logger.warning(
            "Refreshing %s failed (%s); keeping the current values",
            self.settings_cls.__name__,
            _describe(exc),
        )

    def _fetch_all(self) -> tuple[dict[CacheKey, Fetched], tuple[Any, ...] | None]:
        prefetched: dict[CacheKey, Fetched] = {}
        plan = _plan(self.settings_cls, self._init_kwargs)
        for source, config in plan:
            try:
                entries, _ = source.fetch_entries(config, LoadOptions(force=True, fallback=False))
            except PhaseError as exc:
                process_cache.set_status(self.settings_cls, source.failure_status(exc))
                raise
            prefetched.update(entries)
        return prefetched, (_signature(plan, prefetched) if plan else None)

    def _swap(self, new: S) -> frozenset[str]:
        old = self._current
        changed = frozenset(
            name
            for name in type(new).model_fields
            if getattr(old, name, None) != getattr(new, name, None)
        )
        if not changed:
            return changed
        self._current = new
        for hook in list(self._hooks):
            try:
                hook(old, new, changed)
            except Exception as exc:
                logger.warning(
                    "on_change hook %s of %s raised %s; later hooks and refreshes still run",
                    getattr(hook, "__qualname__", repr(hook)),
                    self.settings_cls.__name__,
                    type(exc).__name__,
                )
        return changed

    # -- background thread --------------------------------------------------------------------

    def start(self, interval: float | None = None) -> None:
        """Refresh every ``interval`` seconds (±10 % jitter) in a daemon thread.

        Args:
            interval: seconds between refreshes, at least 1; default the cache TTL.

        Raises:
            ValueError: the interval is under 1 s, or none is given while the TTL is 0.
        """
        if interval is None:
            plan = _plan(self.settings_cls, self._init_kwargs)
            ttl = plan[0][1].cache_ttl if plan else 0.0
            if ttl <= 0:
                raise ValueError("LiveSettings.start() needs an interval when phase_cache_ttl is 0")
            interval = ttl
        if interval < _MIN_INTERVAL:
            raise ValueError(
                f"LiveSettings.start() needs an interval of at least 1 s, got {interval}"
            )
        self._interval = float(interval)
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run,
            name=f"phase-settings-refresh-{self.settings_cls.__name__}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the background thread; returns within ``timeout`` even mid-wait."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        failures = 0
        rng = random.Random()
        while True:
            assert self._interval is not None
            if failures:
                wait = min(_BACKOFF_MAX, _BACKOFF_START * 2 ** (failures - 1))
            else:
                wait = self._interval * rng.uniform(0.9, 1.1)
            if self._stop.wait(wait):
                return
            try:
                self.refresh()
                failures = 0
            except Exception:
                failures += 1  # refresh() logged it; back off, then try again

    def _after_fork_in_child(self) -> None:
        was_running = self._thread is not None
        self._reset_threading()
        if was_running and self._interval is not None:
            self.start(self._interval)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        return f"ValidationError in {fields or 'the model'}"
    if isinstance(exc, PhaseError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def _signature(
    plan: list[tuple[PhaseSettingsSource, ResolvedConfig]], prefetched: dict[CacheKey, Fetched]
) -> tuple[Any, ...]:
    return tuple(
        signature_of([(key.path, prefetched[key]) for key in source.cache_keys(config)])
        for source, config in plan
    )


async def _afetch_plan(
    plan: list[tuple[PhaseSettingsSource, ResolvedConfig]], *, force: bool
) -> tuple[dict[CacheKey, Fetched], dict[CacheKey, PhaseError]]:
    prefetched: dict[CacheKey, Fetched] = {}
    errors: dict[CacheKey, PhaseError] = {}
    for source, config in plan:
        deadline = Deadline(config.deadline)
        for key in source.cache_keys(config):
            try:
                entry, _ = await process_cache.afetch(
                    key,
                    _async_fetcher(source, config, key, deadline),
                    ttl=config.cache_ttl,
                    deadline=deadline,
                    force=force,
                )
            except PhaseError as exc:
                errors[key] = exc
                break
            prefetched[key] = entry
    return prefetched, errors


def _async_fetcher(
    source: PhaseSettingsSource, config: ResolvedConfig, key: CacheKey, deadline: Deadline
) -> Callable[[], Any]:
    async def fetch() -> Any:
        injected = source._client
        if injected is not None:
            secrets = await asyncio.to_thread(
                injected.list_secrets,
                key.app_id,
                key.env,
                path=key.path,
                tags=key.tags or None,
                deadline=deadline,
            )
        else:
            async with AsyncPhaseClient(
                config.token,
                config.host,
                timeout=config.timeout,
                deadline=config.deadline,
                max_attempts=config.max_attempts,
                verify_ssl=config.verify_ssl,
                allow_http=config.allow_http,
                max_response_bytes=config.max_response_bytes,
            ) as client:
                secrets = await client.list_secrets(
                    key.app_id, key.env, path=key.path, tags=key.tags or None, deadline=deadline
                )
        warn_unresolved(secrets)
        return secrets

    return fetch


async def aload(settings_cls: type[S], **init_kwargs: Any) -> S:
    """Load ``settings_cls`` from an event loop without blocking it.

    Fetches with :class:`AsyncPhaseClient` into the process cache (concurrent tasks share one
    request), then builds the instance in a worker thread. Fallback rules are those of a
    plain ``Settings()``.
    """
    plan = await asyncio.to_thread(_plan, settings_cls, init_kwargs)
    prefetched, errors = await _afetch_plan(plan, force=False)
    with load_options(prefetched=prefetched, errors=errors):
        return await asyncio.to_thread(settings_cls, **init_kwargs)


_LIVE: weakref.WeakSet[LiveSettings[Any]] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for live in list(_LIVE):
        live._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
