"""Everything phase-settings keeps for the life of a process, in one object.

The :class:`Runtime` owns the cache of fetched secrets, the pool of clients (one connection pool
per token and host), the shared tiers (the on-disk snapshot stores, one per folder, token and
mode) and the snapshot lock files this process holds, how the last load of each settings class
went, which classes were told "no token", the memo of each class's field pass, the settings
errors Django's ``phase_check`` defers, and the live handles to restart after ``fork()``.
Settings classes are held weakly everywhere: a class nothing of the user's refers to is
garbage-collected. The one at-fork hook (at the end of this module) resets what a forked child
must not share, and :meth:`Runtime.reset` (behind ``clear_cache()``) empties the values and
records and forgets the snapshot stores (the next load checks its folder again).

It also keeps the memo of the env files' ``PHASE_*`` entries (keyed by path, modification time
and size). Two process-wide objects of the lower layers are not held here: auto mode's record of
apps without SSE (``_client/switch.py``'s ``PROCESS_SWITCH``, which every client shares, the
ones users build included, and which holds for the process) and the slow-start watchdog
(``_core/watchdog.py``, one daemon thread that starts itself again in a forked child).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, overload

from .._core.urls import api_base
from .._errors import scrubbed
from .cache import SecretCache

if TYPE_CHECKING:
    from .._client.client import AsyncPhaseClient, PhaseClient
    from .._models import LoadStatus
    from .._settings.config import ResolvedConfig
    from .._snapshot.lock import HeldLocks
    from .snapshot_tier import SnapshotTier
    from .tiers import SharedTier

__all__ = [
    "Runtime",
    "clear_cache",
    "identity",
    "load_status",
    "new_client",
    "runtime",
]

MAX_CLIENTS = 16


def _token_name(config: ResolvedConfig) -> str:
    origin = config.token_origin
    return origin if origin.startswith("PHASE_") else "phase_token"


@scrubbed()
def identity(config: ResolvedConfig) -> tuple[str, str]:
    """(API base, fingerprint of the whole credential) of a configuration; raises
    PhaseConfigError when either the host or the token is unusable (the token is never
    echoed)."""
    assert config.credentials is not None
    base = api_base(config.host, allow_http=config.allow_http)
    return base, config.credentials.fingerprint


@overload
def new_client(config: ResolvedConfig, *, asynchronous: Literal[False] = False) -> PhaseClient: ...
@overload
def new_client(config: ResolvedConfig, *, asynchronous: Literal[True]) -> AsyncPhaseClient: ...
def new_client(
    config: ResolvedConfig, *, asynchronous: bool = False
) -> PhaseClient | AsyncPhaseClient:
    """The one place a load builds a client from its configuration."""
    from .._client.client import (  # loaded by the first load with a token
        AsyncPhaseClient,
        PhaseClient,
    )
    from .._client.options import ClientOptions

    options = ClientOptions.from_config(config)
    if asynchronous:
        return AsyncPhaseClient.from_options(options)
    return PhaseClient.from_options(options)


class _Memo:
    """A small thread-safe map keeping its ``size`` most recent entries (a rotation adds one)."""

    def __init__(self, size: int = 4) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = value
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]


class Runtime:
    """The process-wide state of phase-settings (one instance: :data:`runtime`)."""

    def __init__(self) -> None:
        self.cache = SecretCache()
        self.shared_tiers: tuple[SharedTier, ...] | None = None  # injected (tests): wins
        self._snapshots: dict[tuple[str, str, float, str, int], SnapshotTier] = {}
        self._held_locks: HeldLocks | None = None  # built with the first snapshot store
        # The PHASE_* entries of each env file read, by (path, mtime, size).
        self.env_file_memo: dict[tuple[str, int, int], dict[str, str]] = {}
        # The settings errors deferred while ``manage.py phase_check`` starts (Django).
        self.deferred_errors: list[tuple[Any, BaseException]] = []
        self._lock = threading.Lock()
        self._clients: dict[tuple[Any, ...], PhaseClient] = {}
        self._users: dict[PhaseClient, int] = {}  # loads using each pooled client now
        self._retired: set[PhaseClient] = set()  # evicted while in use: closed by its last user
        self._status: weakref.WeakKeyDictionary[type, LoadStatus] = weakref.WeakKeyDictionary()
        self._announced: weakref.WeakSet[type] = weakref.WeakSet()
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        self._decoded: weakref.WeakKeyDictionary[type, _Memo] = weakref.WeakKeyDictionary()

    # -- clients ----------------------------------------------------------------------------

    @contextmanager
    def borrow_client(self, config: ResolvedConfig) -> Iterator[PhaseClient]:
        """The pooled client for this configuration, held for one load: an eviction never
        closes a client that a load still uses."""
        base, fingerprint = identity(config)
        key = (
            fingerprint,
            base,
            config.verify_ssl,
            config.timeout,
            config.max_attempts,
            config.max_response_bytes,
            config.mode,  # one client per API mode: the same token may read both ways
        )
        to_close: list[PhaseClient] = []
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                if len(self._clients) >= MAX_CLIENTS:
                    evicted = self._clients.pop(next(iter(self._clients)))
                    if self._users.get(evicted):
                        self._retired.add(evicted)
                    else:
                        to_close.append(evicted)
                client = self._clients[key] = new_client(config)
            self._users[client] = self._users.get(client, 0) + 1
        for old in to_close:
            old.close()
        try:
            yield client
        finally:
            with self._lock:
                self._users[client] -= 1
                last = self._users[client] == 0
                if last:
                    del self._users[client]
                close = last and client in self._retired
                if close:
                    self._retired.discard(client)
            if close:
                client.close()

    def pooled_clients(self) -> list[PhaseClient]:
        """The clients in the pool now (leak checks)."""
        with self._lock:
            return list(self._clients.values())

    # -- the shared tiers -----------------------------------------------------------------

    def tiers_for(self, config: ResolvedConfig) -> tuple[SharedTier, ...]:
        """The shared tiers of a load, in order: injected ones, else the host's snapshot when
        ``phase_snapshot_dir`` is set (a fleet tier is one more entry)."""
        if self.shared_tiers is not None:
            return self.shared_tiers
        snapshot = self.snapshot_tier(config)
        return () if snapshot is None else (snapshot,)

    def snapshot_tier(self, config: ResolvedConfig) -> SnapshotTier | None:
        """The snapshot of ``phase_snapshot_dir`` for this token and mode, built once per folder,
        token, max age and mode (so a bad folder is one WARNING per process); else None."""
        credentials = config.credentials
        if config.snapshot_dir is None or credentials is None:
            return None
        directory = os.path.abspath(config.snapshot_dir)
        # The whole credential: two tokens with one bearer part seal with different keys.
        ident = (
            directory,
            credentials.fingerprint,
            float(config.snapshot_max_age),
            config.mode,
            config.max_response_bytes,
        )
        with self._lock:
            tier = self._snapshots.get(ident)
        if tier is not None:
            return tier
        from .._snapshot.store import SnapshotStore
        from .snapshot_tier import SnapshotTier

        store = SnapshotStore(
            directory,
            credentials,
            max_age=config.snapshot_max_age,
            max_response_bytes=config.max_response_bytes,
            held=self.held_locks(),
        )
        tier = SnapshotTier(store, config.mode, credentials.header_fingerprint)
        with self._lock:
            return self._snapshots.setdefault(ident, tier)

    def held_locks(self) -> HeldLocks:
        """The snapshot lock files this process holds (closed, never unlocked, in a forked
        child); every store the runtime builds records its locks here."""
        with self._lock:
            if self._held_locks is None:
                from .._snapshot.lock import HeldLocks

                self._held_locks = HeldLocks()
            return self._held_locks

    # -- per-class records (weak: a class is never kept alive) ------------------------------

    def set_status(self, settings_cls: type, status: LoadStatus) -> None:
        with self._lock:
            self._status[settings_cls] = status

    def status(self, settings_cls: type) -> LoadStatus:
        with self._lock:
            status = self._status.get(settings_cls)
        if status is None:
            from .._models import LoadStatus

            status = LoadStatus()
        return status

    def first_announcement(self, settings_cls: type) -> bool:
        """True the first time a class is reported as running without Phase."""
        with self._lock:
            if settings_cls in self._announced:
                return False
            self._announced.add(settings_cls)
            return True

    def decoded(self, settings_cls: type) -> _Memo:
        """The memo of the Phase source's field pass for ``settings_cls`` (held weakly)."""
        with self._lock:
            memo = self._decoded.get(settings_cls)
            if memo is None:
                memo = self._decoded[settings_cls] = _Memo()
            return memo

    def track_live(self, handle: Any) -> None:
        """Restart ``handle`` (a ``LiveSettings``) in a forked child; held weakly."""
        with self._lock:
            self._live.add(handle)

    # -- lifecycle --------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop fetched and last-good values and every class's status (connections stay; so
        does what auto mode learnt about apps without SSE: that holds for the process)."""
        self.cache.clear()
        with self._lock:
            self._snapshots.clear()
            self._status.clear()
            self._announced.clear()
            self._decoded.clear()
            self.deferred_errors.clear()

    def after_fork_in_child(self) -> None:
        """A forked child shares no lock a parent thread held, waits on no parent fetch and
        restarts its live handles; cached values stay usable (pooled clients rebuild their
        connections themselves on the first use in a new process)."""
        self._lock = threading.Lock()
        self.cache.after_fork_in_child()
        if self._held_locks is not None:
            self._held_locks.after_fork_in_child()
        for tier in list(self._snapshots.values()):
            tier.store.after_fork_in_child()
        for handle in list(self._live):
            handle.after_fork_in_child()


runtime = Runtime()


def clear_cache() -> None:
    """Empty the process-wide cache: fetched and last-good values alike (test isolation)."""
    runtime.reset()


def load_status(settings_cls: type) -> LoadStatus:
    """How the last load of ``settings_cls`` went (``source="none"`` if never loaded)."""
    return runtime.status(settings_cls)


if hasattr(os, "register_at_fork"):  # the package's one at-fork hook
    os.register_at_fork(after_in_child=lambda: runtime.after_fork_in_child())
