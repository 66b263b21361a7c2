"""T7: single-flight. Concurrent loads of one key make one request; every waiter gets the same
result or the same typed error; the lock is never left held.

The server delays its answer by 200 ms so that every caller overlaps the fetch, and a
``threading.Barrier`` releases them at once.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import phase_settings
from phase_settings import (
    LiveSettings,
    PhaseAuthError,
    PhaseError,
    PhaseServerError,
    aload,
    load_status,
)

from ..conftest import Phase
from .conftest import DEADLINE, MARGIN, settings_class

THREADS = 64
REPETITIONS = 20
# Long enough that every thread of a burst is waiting before the first request ends, even on
# a loaded 2-core machine (a thread that starts after it ends is a new load, not a waiter).
DELAY = 1.0


def secret_gets(phase: Phase) -> int:
    return sum(1 for r in phase.fake.requests if r.path.endswith("/v1/secrets/"))


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(THREADS) as executor:
        yield executor


def load_together(
    pool: ThreadPoolExecutor, Settings: type[Any], threads: int = THREADS
) -> list[tuple[Any, BaseException | None, float]]:
    """``threads`` calls of ``Settings()`` released at once; (result, error, seconds) each."""
    barrier = threading.Barrier(threads)

    def call() -> tuple[Any, BaseException | None, float]:
        barrier.wait(10)
        start = time.monotonic()
        try:
            return Settings(), None, time.monotonic() - start
        except PhaseError as exc:
            return None, exc, time.monotonic() - start

    futures = [pool.submit(call) for _ in range(threads)]
    return [f.result(timeout=DEADLINE + 10) for f in futures]


def test_64_cold_threads_make_exactly_one_request(phase: Phase, pool: ThreadPoolExecutor) -> None:
    Settings = settings_class(phase, {"database_url": str})
    per_round: list[int] = []
    latencies: list[float] = []
    for round_ in range(REPETITIONS):
        phase_settings.clear_cache()
        phase.set("DATABASE_URL", f"value-{round_}")
        phase.fake.clear_requests()
        phase.fake.fail_next(None, delay=DELAY)
        results = load_together(pool, Settings)
        per_round.append(secret_gets(phase))
        assert [error for _, error, _ in results] == [None] * THREADS
        assert {s.database_url for s, _, _ in results} == {f"value-{round_}"}
        latencies += [elapsed for _, _, elapsed in results]
    assert per_round == [1] * REPETITIONS, per_round
    assert max(latencies) <= DEADLINE + MARGIN  # waiters wait within their deadline
    print(
        f"[T7] {THREADS} cold threads x {REPETITIONS} rounds: requests per round {set(per_round)}, "
        f"median wait {statistics.median(latencies) * 1000:.0f} ms, "
        f"worst {max(latencies) * 1000:.0f} ms"
    )


@pytest.mark.parametrize("failure", ["401", "503"])
def test_a_failing_fetch_gives_every_waiter_the_same_error(
    phase: Phase, pool: ThreadPoolExecutor, failure: str
) -> None:
    phase.set("DATABASE_URL", "after")
    Settings = settings_class(
        phase, {"database_url": str}, phase_fallback="raise", phase_max_attempts=1
    )
    if failure == "401":
        phase.fake.fail_next(401, body='{"error":"Invalid token"}', delay=DELAY)
        expected: type[PhaseError] = PhaseAuthError
    else:
        phase.fake.fail_next(503, delay=DELAY)
        expected = PhaseServerError
    results = load_together(pool, Settings)
    errors = [error for _, error, _ in results]
    assert all(isinstance(e, expected) for e in errors), {type(e).__name__ for e in errors}
    assert len({str(e) for e in errors}) == 1 and len({e.status for e in errors}) == 1  # type: ignore[union-attr]
    assert secret_gets(phase) == 1
    assert max(elapsed for _, _, elapsed in results) <= DEADLINE + MARGIN
    # the lock was not left held: a later load asks Phase again (an outage first waits out its
    # backoff of 1 s, during which the same error is served without a request)
    start = time.monotonic()
    while True:
        try:
            assert Settings().database_url == "after"  # type: ignore[attr-defined]
            break
        except PhaseServerError:
            assert failure == "503" and time.monotonic() - start <= 1.0 + MARGIN
            time.sleep(0.02)
    assert secret_gets(phase) == 2
    print(
        f"[T7] failing fetch ({failure}): {THREADS} waiters got {expected.__name__} from 1 "
        f"request ({len({id(e) for e in errors})} distinct objects); follow-up OK after "
        f"{(time.monotonic() - start) * 1000:.0f} ms"
    )


def test_expired_entry_is_refreshed_once(phase: Phase, pool: ThreadPoolExecutor) -> None:
    phase.set("DATABASE_URL", "old")
    Settings = settings_class(phase, {"database_url": str}, phase_cache_ttl=0.2)
    assert Settings().database_url == "old"  # type: ignore[attr-defined]
    phase.set("DATABASE_URL", "new")
    time.sleep(0.25)
    phase.fake.clear_requests()
    phase.fake.fail_next(None, delay=DELAY)
    results = load_together(pool, Settings)
    assert secret_gets(phase) == 1
    assert {s.database_url for s, _, _ in results} == {"new"}
    assert load_status(Settings).source in ("phase", "cache")


def test_live_settings_current_never_waits_for_a_refresh(phase: Phase) -> None:
    phase.set("DATABASE_URL", "old")
    Settings = settings_class(phase, {"database_url": str})
    live = LiveSettings(Settings)
    phase.set("DATABASE_URL", "new")
    phase.fake.fail_next(None, delay=1.5)
    refresher = threading.Thread(target=live.refresh, daemon=True)
    refresher.start()
    try:
        time.sleep(0.1)  # the refresh is waiting for the server now
        start = time.monotonic()
        reads = [live.current.database_url for _ in range(1000)]  # type: ignore[attr-defined]
        took = time.monotonic() - start
    finally:
        refresher.join(DEADLINE + 1)
    assert set(reads) == {"old"} and took < 0.7  # waiting for the refresh would take >= 1.4 s
    assert live.current.database_url == "new"  # type: ignore[attr-defined]
    print(f"[T7] LiveSettings.current during a refresh: 1000 reads in {took * 1000:.1f} ms")


def test_1000_asyncio_tasks_make_one_request(phase: Phase) -> None:
    phase.set("DATABASE_URL", "async")
    Settings = settings_class(phase, {"database_url": str})
    phase.fake.fail_next(None, delay=DELAY)
    tasks = 1000

    async def main() -> list[Any]:
        return await asyncio.gather(*(aload(Settings) for _ in range(tasks)))

    start = time.monotonic()
    results = asyncio.run(main())
    took = time.monotonic() - start
    assert {s.database_url for s in results} == {"async"}
    assert secret_gets(phase) == 1
    print(f"[T7] {tasks} asyncio tasks: {secret_gets(phase)} request, {took * 1000:.0f} ms")


def test_concurrent_aloads_share_one_request_even_with_a_ttl_of_zero(phase: Phase) -> None:
    # A TTL of 0 turns the cache off, not the sharing: tasks that load while a fetch is in
    # flight take its result instead of asking Phase again, one after another.
    phase.set("DATABASE_URL", "shared")
    Settings = settings_class(phase, {"database_url": str}, phase_cache_ttl=0)
    phase.fake.fail_next(None, delay=DELAY)
    tasks = 50

    async def main() -> list[Any]:
        return await asyncio.gather(*(aload(Settings) for _ in range(tasks)))

    results = asyncio.run(main())
    assert {s.database_url for s in results} == {"shared"}
    assert secret_gets(phase) == 1


def test_concurrent_loads_share_one_request_even_with_a_ttl_of_zero(
    phase: Phase, pool: ThreadPoolExecutor
) -> None:
    phase.set("DATABASE_URL", "shared")
    Settings = settings_class(phase, {"database_url": str}, phase_cache_ttl=0)
    phase.fake.fail_next(None, delay=DELAY)
    results = load_together(pool, Settings)
    assert [error for _, error, _ in results] == [None] * THREADS
    assert {s.database_url for s, _, _ in results} == {"shared"}
    assert secret_gets(phase) == 1
