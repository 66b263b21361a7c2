"""``LiveSettings`` (refresh, hooks, background thread) and ``aload`` for async apps.

The async paths use anyio, so they run under asyncio and trio alike.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from .._errors import PhaseError
from .._load.cache import CacheKey, Fetched
from .._load.loader import cache_keys
from .._load.result import LoadOptions, LoadResult, combined_status
from .._load.runtime import runtime
from .._load.scope import load_scope
from .._models import LoadStatus
from .assembly import BuiltSources, build_sources, phase_sources

__all__ = ["LiveSettings", "aload"]

logger = logging.getLogger("phase_settings.live")

S = TypeVar("S", bound=BaseSettings)
Hook = Callable[[Any, Any, frozenset[str]], object]

_MIN_INTERVAL = 1.0
_BACKOFF_START = 1.0
_BACKOFF_MAX = 300.0


def _signature(results: list[LoadResult]) -> tuple[Any, ...] | None:
    if not any(r.signature is not None for r in results):
        return None  # nothing came from Phase: rebuild every time
    return tuple(r.signature for r in results)


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
        current, results = self._build(LoadOptions())
        self._current: S = current
        self._signature = _signature(results)
        self._status = combined_status(results)
        self._reset_threading()
        self._interval: float | None = None
        runtime.track_live(self)

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
        """How the load of this handle's current instance went, and this handle's refresh
        failures since (``stale_since``, ``last_error``); loads of the class elsewhere do not
        change it."""
        return self._status

    def on_change(self, callback: Hook) -> Hook:
        """Register ``callback(old, new, changed)``, called after a refresh that changed a field.

        ``changed`` is a frozenset of field names (never values). Hooks run in registration
        order; one that raises is logged and does not stop the others. Usable as a decorator.
        """
        self._hooks.append(callback)
        return callback

    # -- refresh --------------------------------------------------------------------------------

    def _sources(self) -> BuiltSources:
        """The sources a load of the class builds now (its own ``settings_customise_sources``)."""
        return build_sources(self.settings_cls, self._init_kwargs)

    def _build(
        self, options: LoadOptions, built: BuiltSources | None = None
    ) -> tuple[S, list[LoadResult]]:
        """A new instance, loaded through ``built`` (default: sources built now)."""
        with load_scope(options) as scope:
            new = self.settings_cls(_build_sources=built or self._sources())
            scope.validated()
        return new, [s.result for s in scope.sources if s.result is not None]

    def refresh(self) -> frozenset[str]:
        """Fetch now (bypassing the cache's TTL, never falling back), rebuild, swap, call hooks.

        Returns:
            The names of the fields whose validated value changed.

        Raises:
            PhaseError: Phase failed; the current instance is kept.
            ValidationError: the new values do not validate; the current instance is kept.
        """
        with self._refresh_lock, load_scope(LoadOptions(force=True, fallback=False)) as scope:
            try:
                built = self._sources()
                fetched = [source.load() for source in phase_sources(built)]
                changed = self._apply(fetched, built)
            except (PhaseError, ValidationError, SettingsError) as exc:
                self._failed(exc)
                raise
            scope.validated()  # the snapshot gets only values the class accepted
            return changed

    async def arefresh(self) -> frozenset[str]:
        """:meth:`refresh` for async apps (asyncio or trio): fetches with
        ``AsyncPhaseClient`` and rebuilds in a worker thread, never blocking the event loop."""
        import anyio.to_thread

        built = await anyio.to_thread.run_sync(self._sources)
        fetched: list[LoadResult] = []

        def rebuild() -> frozenset[str]:
            with self._refresh_lock:
                try:
                    return self._apply(fetched, built)
                except (PhaseError, ValidationError, SettingsError) as exc:
                    self._failed(exc)
                    raise

        options = LoadOptions(force=True, fallback=False)
        with load_scope(options) as scope:
            try:
                for source in phase_sources(built):
                    fetched.append(await source.load_async(options))
            except PhaseError as exc:
                self._failed(exc)
                raise
            changed = await anyio.to_thread.run_sync(rebuild)
            scope.validated()
            return changed

    def _apply(self, fetched: list[LoadResult], built: BuiltSources) -> frozenset[str]:
        """Rebuild through the sources that fetched (``built``) unless they fetched the current
        values; swap."""
        signature = _signature(fetched)
        if signature is not None and signature == self._signature:
            self._status = combined_status(fetched)
            return frozenset()
        prefetched: dict[CacheKey, Fetched] = {k: e for r in fetched for k, e in r.entries}
        new, results = self._build(LoadOptions(prefetched=prefetched, fallback=False), built)
        self._signature = _signature(results)
        self._status = combined_status(results)
        return self._swap(new)

    def _failed(self, exc: BaseException) -> None:
        previous = self._status
        self._status = LoadStatus(
            previous.source,
            previous.fetched_at,
            previous.stale_since or datetime.now(UTC),
            _describe(exc),
        )
        logger.warning(
            "Refreshing %s failed (%s); keeping the current values",
            self.settings_cls.__name__,
            _describe(exc),
        )

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
            sources = phase_sources(self._sources())
            ttl = sources[0].resolve().cache_ttl if sources else 0.0
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

    def after_fork_in_child(self) -> None:
        """Restart the background thread in a forked child (gunicorn ``--preload``)."""
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


async def aload(settings_cls: type[S], **init_kwargs: Any) -> S:
    """Load ``settings_cls`` from an event loop (asyncio or trio) without blocking it.

    Fetches with :class:`AsyncPhaseClient` into the process cache (concurrent tasks share one
    request), then builds the instance in a worker thread. Fallback rules are those of a
    plain ``Settings()``.
    """
    import anyio.to_thread

    built = await anyio.to_thread.run_sync(build_sources, settings_cls, init_kwargs)
    prefetched: dict[CacheKey, Fetched] = {}
    errors: dict[CacheKey, PhaseError] = {}

    def build() -> S:
        with load_scope(LoadOptions(prefetched=prefetched, errors=errors)) as scope:
            instance = settings_cls(_build_sources=built)
            scope.validated()
            return instance

    # What the fetches would write to the snapshot waits until the instance validated.
    with load_scope(LoadOptions(fallback=False)) as scope:
        for source in phase_sources(built):
            try:
                result = await source.load_async(LoadOptions(fallback=False))
            except PhaseError as exc:
                try:
                    keys = cache_keys(source.resolve(), source.client)
                except PhaseError:
                    continue  # the build raises it again, from the same configuration
                errors.update(dict.fromkeys(keys, exc))
                continue
            prefetched.update(result.entries)
        instance = await anyio.to_thread.run_sync(build)
        scope.validated()
        return instance
