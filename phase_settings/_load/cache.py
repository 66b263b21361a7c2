"""The process-wide cache of fetched secrets, with single-flight and last-good values.

Entries are keyed by (API base, app id, env, path, tags, token fingerprint): a hash, never the
token. Each entry expires at a random point in [TTL/2, TTL] (cachetools' ``TLRUCache`` gives
each entry its own expiry) so that a fleet of workers spreads its requests over Phase's
per-account rate limit instead of refreshing in lock-step.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import PhaseConnectionError, PhaseError, PhaseUnavailableError, fresh

if TYPE_CHECKING:
    import anyio
    from cachetools import TLRUCache

    from .._core.retry import Deadline
    from .._models import Secret
    from .tiers import Copy

__all__ = ["CacheKey", "Fetched", "SecretCache", "serves_fresh"]


FAILURE_BACKOFF_START = 1.0
FAILURE_BACKOFF_MAX = 300.0
_MAX_LEADER_HANDOVERS = 8  # waiters that take over from cancelled leaders, at most


class CacheKey(NamedTuple):
    base_url: str
    app_id: str
    env: str
    path: str | None
    tags: tuple[str, ...]
    token_fingerprint: str


class Fetched(NamedTuple):
    """The secrets of one (app, env, path) as fetched once from Phase."""

    secrets: tuple[Secret, ...]
    fetched_at: datetime
    lifetime: float  # seconds this entry stays fresh from now, drawn in [TTL/2, TTL]

    def __repr__(self) -> str:
        return f"Fetched({len(self.secrets)} secrets, fetched_at={self.fetched_at.isoformat()})"


def serves_fresh(ttl: float) -> bool:
    """The cache's TTL rule: with a TTL of 0 nothing (in memory or in a shared tier) is served
    as fresh; every load asks Phase, and the last good values still back it up."""
    return ttl > 0


def _ttu(_key: Any, value: Fetched, now: float) -> float:
    return now + value.lifetime


class _LeaderInterrupted(Exception):
    """What the waiters of a fetch whose thread was interrupted (``KeyboardInterrupt``,
    ``SystemExit``) are told: one of them fetches instead."""


class _Flight:
    """An async fetch in progress, shared by the tasks of one event loop."""

    __slots__ = ("done", "entry", "error")

    def __init__(self, done: anyio.Event):
        self.done = done
        self.entry: Fetched | None = None
        self.error: PhaseError | None = None


class SecretCache:
    """Thread-safe cache: fresh entries (TTL), last-good entries (no expiry), and in-flight
    fetches so that concurrent loads of one key make one request."""

    def __init__(
        self,
        maxsize: int = 4096,
        *,
        timer: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self._maxsize = maxsize
        self._timer = timer
        self._rng = rng or random.Random()
        self._flights_var: Any = None  # anyio's RunVar: the async fetches of each event loop
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._fresh_cache: TLRUCache[CacheKey, Fetched] | None = None
        self._last_good: dict[CacheKey, Fetched] = {}
        self._inflight: dict[CacheKey, Future[Fetched]] = {}
        # key -> (consecutive failures, retry not before (timer), the error that ended it)
        self._failures: dict[CacheKey, tuple[int, float, PhaseUnavailableError]] = {}

    @property
    def _fresh(self) -> TLRUCache[CacheKey, Fetched]:
        # Built on first use: a process that never talks to Phase never imports cachetools.
        if self._fresh_cache is None:
            import cachetools

            self._fresh_cache = cachetools.TLRUCache(self._maxsize, ttu=_ttu, timer=self._timer)
        return self._fresh_cache

    def after_fork_in_child(self) -> None:
        """A forked child must not wait on the parent's in-flight fetches or a lock some parent
        thread held at fork time; cached values stay usable."""
        fresh = (
            dict(self._fresh_cache.items())
            if self._fresh_cache is not None and not self._lock.locked()
            else {}
        )
        last_good = dict(self._last_good)
        self._reset()
        for key, value in fresh.items():
            self._fresh[key] = value
        self._last_good.update(last_good)

    def _loop_flights(self) -> dict[CacheKey, _Flight]:
        """The async fetches in flight in the running event loop (one table per loop: a task
        never waits on another loop's fetch)."""
        if self._flights_var is None:
            from anyio.lowlevel import RunVar

            self._flights_var = RunVar("phase_settings_flights")
        try:
            flights: dict[CacheKey, _Flight] = self._flights_var.get()
        except LookupError:
            flights = {}
            self._flights_var.set(flights)
        return flights

    def lifetime(self, ttl: float) -> float:
        """A random lifetime in [TTL/2, TTL] (0 when the TTL serves nothing fresh)."""
        return self._rng.uniform(ttl / 2, ttl) if serves_fresh(ttl) else 0.0

    def new_entry(self, secrets: Sequence[Secret], ttl: float) -> Fetched:
        """An entry for secrets fetched now, with its own lifetime."""
        return Fetched(tuple(secrets), datetime.now(UTC), self.lifetime(ttl))

    def adopt(self, copy: Copy, ttl: float) -> Fetched:
        """An entry for a shared tier's copy younger than the TTL: it keeps the rest of a drawn
        lifetime (``fetched_at`` + the draw); a copy already past its draw lives until the TTL
        ends."""
        left = self.lifetime(ttl) - copy.age
        if left <= 0:
            left = ttl - copy.age
        return Fetched(copy.secrets, copy.fetched_at, left)

    def stale(self, copy: Copy) -> Fetched:
        """An entry for a shared tier's outage copy (served once, never kept as fresh)."""
        return Fetched(copy.secrets, copy.fetched_at, 0.0)

    def get_fresh(self, key: CacheKey, ttl: float) -> Fetched | None:
        """The entry of ``key`` if it is still fresh and the TTL serves fresh entries."""
        if not serves_fresh(ttl):
            return None
        with self._lock:
            return self._fresh.get(key)

    def last_good(self, key: CacheKey) -> Fetched | None:
        with self._lock:
            return self._last_good.get(key)

    def fetch(
        self,
        key: CacheKey,
        fetch: Callable[[], Fetched],
        *,
        deadline: Deadline,
        ttl: float,
        force: bool = False,
    ) -> tuple[Fetched, bool]:
        """The entry for ``key``: fresh from the cache, or fetched once for all concurrent
        callers.

        Returns:
            The entry, and whether it came from this cache.

        Raises:
            Whatever the fetch raised (the same error for every waiter), or
            PhaseConnectionError when the deadline passes while waiting on another caller.
        """
        for _ in range(_MAX_LEADER_HANDOVERS):
            with self._lock:
                if not force and serves_fresh(ttl):
                    hit = self._fresh.get(key)
                    if hit is not None:
                        return hit, True
                if not force:
                    # During an outage, loads do not queue up behind one timeout after another:
                    # the last error is served again until the backoff (1 s doubling to 5 min)
                    # ends.
                    failure = self._failures.get(key)
                    if failure is not None and self._timer() < failure[1]:
                        raise fresh(failure[2])
                future = self._inflight.get(key)
                leader = future is None
                if future is None:
                    future = self._inflight[key] = Future()
            if leader:
                return self._lead(key, fetch, future), False
            try:
                return future.result(timeout=deadline.remaining()), False
            except FutureTimeout:
                raise PhaseConnectionError(
                    "the load's deadline passed while waiting for a concurrent load of the "
                    "same secrets"
                ) from None
            except _LeaderInterrupted:
                continue  # the leader's thread was interrupted: a waiter takes over
            except PhaseError as exc:
                error = exc  # the leader's error, as a copy: its traceback stays the leader's
            raise fresh(error)
        raise PhaseConnectionError(
            "the concurrent loads of the same secrets were interrupted, one after another"
        )

    def _lead(
        self, key: CacheKey, fetch: Callable[[], Fetched], future: Future[Fetched]
    ) -> Fetched:
        """Fetch for every caller waiting on ``future``. A ``KeyboardInterrupt`` or
        ``SystemExit`` is this thread's alone: the waiters are told to take over, never handed
        an exception their frameworks do not expect from a load."""
        try:
            entry = fetch()
            self.store(key, entry)
            future.set_result(entry)
            return entry
        except Exception as exc:
            self.note_failure(key, exc)
            future.set_exception(exc)
            raise
        except BaseException:
            future.set_exception(_LeaderInterrupted())
            raise
        finally:
            with self._lock:
                if self._inflight.get(key) is future:
                    del self._inflight[key]

    def store(self, key: CacheKey, entry: Fetched) -> None:
        """Keep ``entry`` as fresh (for its lifetime, if any) and as the last good values."""
        with self._lock:
            if entry.lifetime > 0:
                self._fresh[key] = entry
            else:
                self._fresh.pop(key, None)
            self._last_good[key] = entry
            self._failures.pop(key, None)

    def note_failure(self, key: CacheKey, exc: BaseException) -> None:
        """Start or lengthen the backoff of ``key`` after Phase could not answer."""
        if not isinstance(exc, PhaseUnavailableError):
            return
        with self._lock:
            count = self._failures.get(key, (0, 0.0, exc))[0] + 1
            wait = min(FAILURE_BACKOFF_MAX, FAILURE_BACKOFF_START * 2 ** min(count - 1, 16))
            self._failures[key] = (count, self._timer() + wait, exc)

    async def afetch(
        self,
        key: CacheKey,
        fetch: Callable[[], Awaitable[Fetched]],
        *,
        deadline: Deadline,
        ttl: float,
        force: bool = False,
    ) -> tuple[Fetched, bool]:
        """The async twin of :meth:`fetch` (anyio: asyncio and trio): concurrent tasks of one
        event loop share one request."""
        import anyio

        flights = self._loop_flights()
        slot = key
        for _ in range(_MAX_LEADER_HANDOVERS):
            if not force:
                with self._lock:
                    hit = self._fresh.get(key) if serves_fresh(ttl) else None
                    failure = self._failures.get(key)
                if hit is not None:
                    return hit, True
                if failure is not None and self._timer() < failure[1]:
                    raise fresh(failure[2])
            flight = flights.get(slot)
            if flight is None:
                break
            with anyio.move_on_after(deadline.remaining()) as scope:
                await flight.done.wait()
            if scope.cancelled_caught:
                raise PhaseConnectionError(
                    "the load's deadline passed while waiting for a concurrent load of the "
                    "same secrets"
                ) from None
            if flight.error is not None:
                raise fresh(flight.error)
            if flight.entry is not None:
                return flight.entry, False
            # The leader was cancelled: one of the waiters takes over.
        flight = flights[slot] = _Flight(anyio.Event())
        try:
            entry = await fetch()
            self.store(key, entry)
            flight.entry = entry
            return entry, False
        except PhaseError as exc:
            self.note_failure(key, exc)
            flight.error = exc
            raise
        finally:
            flight.done.set()
            if flights.get(slot) is flight:
                del flights[slot]

    def clear(self) -> None:
        """Drop fresh and last-good values (in-flight fetches finish on their own)."""
        with self._lock:
            self._fresh.clear()
            self._last_good.clear()
            self._failures.clear()
