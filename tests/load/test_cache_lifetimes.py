"""How long ``Settings()`` serves cached values, and how often it asks Phase during an outage.

- Each cache entry lives a random time in [TTL/2, TTL], so a fleet spreads its requests.
- After Phase could not answer, loads of the same secrets serve that error again without a
  request until a backoff ends: 1 s, doubling with each failure, at most 5 min; a success
  resets it.

The cache runs on a manual clock and a seeded random source (``_seams.cache_clock``); every
observation is a load through the public API and the requests the loopback fake received.
"""

from __future__ import annotations

from typing import Any

import pytest

from phase_settings import (
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    aload,
    load_status,
)

from .._seams import cache_clock
from ..conftest import Phase

TTL = 100.0


class Fields(PhaseSettings):
    db_host: str = "unset"


def settings_class(phase: Phase, **config: Any) -> type[Fields]:
    class Settings(Fields):
        model_config = PhaseSettingsConfigDict(**phase.config(**config))  # type: ignore[typeddict-item]

    return Settings


def test_cache_entries_live_between_half_the_ttl_and_the_ttl(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    clock = cache_clock(monkeypatch, seed=20261130)
    Settings = settings_class(phase, phase_cache_ttl=TTL)
    rounds = 150
    expired_by_three_quarters = 0
    for n in range(rounds):
        start = n * 10 * TTL  # every earlier entry has long expired
        clock.now = start
        before = phase.gets()
        assert Settings().db_host == "db"
        asked = phase.gets() - before
        assert asked == 1 and load_status(Settings).source == "phase"

        clock.now = start + TTL / 2 - 0.001  # never expired before TTL/2
        assert Settings().db_host == "db"
        asked = phase.gets() - before
        assert asked == 1, f"round {n}: expired before TTL/2"
        assert load_status(Settings).source == "cache"

        clock.now = start + 0.75 * TTL
        Settings()
        if phase.gets() > before + 1:
            expired_by_three_quarters += 1
            continue  # that load fetched again and drew a new lifetime
        clock.now = start + TTL + 0.001  # always expired after TTL
        Settings()
        asked = phase.gets() - before
        assert asked == 2, f"round {n}: still cached after TTL"
        assert load_status(Settings).source == "phase"
    # Uniform over [TTL/2, TTL]: about half the entries are gone by 0.75 * TTL. A fixed
    # lifetime (no jitter) would give none; a window reaching below TTL/2 failed above.
    assert 0.3 * rounds < expired_by_three_quarters < 0.7 * rounds


def test_a_ttl_of_zero_asks_phase_on_every_load(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_clock(monkeypatch, seed=1)
    Settings = settings_class(phase, phase_cache_ttl=0)
    for _ in range(3):
        Settings()
    asked = phase.gets()
    assert asked == 3


def test_a_ttl_of_zero_asks_phase_even_when_another_class_cached_the_same_secrets(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    cache_clock(monkeypatch, seed=3)
    Cached = settings_class(phase, phase_cache_ttl=TTL)
    Uncached = settings_class(phase, phase_cache_ttl=0)
    Cached()
    for n in range(2, 4):
        assert Uncached().db_host == "db"
        asked = phase.gets()
        assert asked == n
        assert load_status(Uncached).source == "phase"


@pytest.mark.anyio
async def test_aload_with_a_ttl_of_zero_asks_phase_even_when_the_secrets_are_cached(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    cache_clock(monkeypatch, seed=4)
    Cached = settings_class(phase, phase_cache_ttl=TTL)
    Uncached = settings_class(phase, phase_cache_ttl=0)
    await aload(Cached)
    for n in range(2, 4):
        assert (await aload(Uncached)).db_host == "db"
        asked = phase.gets()
        assert asked == n


def test_a_load_with_a_ttl_of_zero_caches_nothing_for_other_classes(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    cache_clock(monkeypatch, seed=5)  # the clock stands still: nothing expires by itself
    Uncached = settings_class(phase, phase_cache_ttl=0)
    Cached = settings_class(phase, phase_cache_ttl=TTL)
    Uncached()
    assert Cached().db_host == "db"
    asked = phase.gets()
    assert asked == 2
    assert load_status(Cached).source == "phase"


def test_after_an_outage_loads_back_off_one_second_doubling_to_five_minutes(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    clock = cache_clock(monkeypatch, seed=2)
    Settings = settings_class(
        phase, phase_cache_ttl=TTL, phase_fallback="raise", phase_max_attempts=1
    )
    phase.fake.fail_next(503, times=1000)
    expected_backoffs = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    with pytest.raises(PhaseServerError):
        Settings()
    asked = phase.gets()
    assert asked == 1
    for failures, backoff in enumerate(expected_backoffs, start=1):
        retry_at = clock.now + backoff
        clock.now = retry_at - 0.001  # still backing off: the error again, no request
        with pytest.raises(PhaseServerError):
            Settings()
        asked = phase.gets()
        assert asked == failures, f"asked Phase before the {backoff} s backoff ended"
        clock.now = retry_at  # the backoff is over: one request (which fails again)
        with pytest.raises(PhaseServerError):
            Settings()
        asked = phase.gets()
        assert asked == failures + 1, f"no request after the {backoff} s backoff"

    # Phase is back: the next load after the backoff succeeds and resets it
    phase.fake.clear_faults()
    clock.now += 300
    assert Settings().db_host == "db"
    before = phase.gets()
    clock.now += TTL + 1  # the entry expired; Phase fails once more
    phase.fake.fail_next(503, times=1000)
    with pytest.raises(PhaseServerError):
        Settings()
    asked = phase.gets() - before
    assert asked == 1
    clock.now += 1  # back to a 1 s backoff, not the 5 min one of before
    with pytest.raises(PhaseServerError):
        Settings()
    asked = phase.gets() - before
    assert asked == 2
