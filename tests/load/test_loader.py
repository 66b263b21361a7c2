"""The load pipeline's shared tiers (where the on-disk snapshot plugs in, and a fleet tier after
it): consulted in order when the memory cache misses, written after each fetch, and offered as a
fallback beside the process's last good values, the newest winning."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError, field_validator

from phase_settings import PhaseSettings, PhaseSettingsConfigDict, clear_cache, load_status
from phase_settings._load.cache import CacheKey, Fetched
from phase_settings._load.runtime import runtime
from phase_settings._load.tiers import Copy

from ..conftest import Phase


class MemoryStore:
    """A shared tier kept in a dict (the snapshot's contract, without the disk)."""

    def __init__(self, name: str = "tier") -> None:
        self.name = name
        self.entries: dict[CacheKey, Fetched] = {}
        self.fresh_copies = True
        self.events: list[str] = []
        self.asked: list[float] = []  # the TTL of each fresh read

    def fresh(self, key: CacheKey, ttl: float) -> Copy | None:
        self.asked.append(ttl)
        entry = self.entries.get(key)
        if entry is None or not self.fresh_copies:
            return None
        return Copy(entry.secrets, entry.fetched_at, 0.0)

    def last_good(self, key: CacheKey) -> Copy | None:
        entry = self.entries.get(key)
        return None if entry is None else Copy(entry.secrets, entry.fetched_at, 0.0)

    def put(self, key: CacheKey, entry: Fetched) -> None:
        self.events.append("put")
        self.entries[key] = entry

    @contextmanager
    def lock(self, key: CacheKey, wait: float) -> Iterator[bool]:
        self.events.append("lock")
        try:
            yield True
        finally:
            self.events.append("unlock")


@contextmanager
def tiers(*stores: MemoryStore) -> Iterator[None]:
    before, runtime.shared_tiers = runtime.shared_tiers, stores
    try:
        yield
    finally:
        runtime.shared_tiers = before


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    with tiers(memory):
        yield memory


def settings(phase: Phase, **config: Any) -> type[PhaseSettings]:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(**config))  # type: ignore[typeddict-item]
        api_key: SecretStr

    return Settings


def test_a_fresh_store_entry_is_served_without_a_request(phase: Phase, store: MemoryStore) -> None:
    phase.set("API_KEY", "k1")
    Settings = settings(phase)
    assert Settings().api_key.get_secret_value() == "k1"  # type: ignore[attr-defined]
    assert len(store.entries) == 1 and phase.gets() == 1  # written after the fetch
    clear_cache()  # another process: empty memory, the same store
    assert Settings().api_key.get_secret_value() == "k1"  # type: ignore[attr-defined]
    assert phase.gets() == 1 and load_status(Settings).source == "cache"


def test_during_an_outage_the_newer_of_memory_and_store_is_served(
    phase: Phase, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("API_KEY", "old")
    Settings = settings(phase, phase_cache_ttl=0, phase_max_attempts=1, phase_deadline=1.0)
    Settings()  # memory's last good: "old"
    [(key, entry)] = store.entries.items()
    newer = [replace(s, value="newer") for s in entry.secrets]
    store.entries[key] = Fetched(tuple(newer), entry.fetched_at + timedelta(seconds=5), 0.0)
    store.fresh_copies = False
    phase.fake.fail_next(503, times=1)
    with caplog.at_level(logging.WARNING, logger="phase_settings"):
        assert Settings().api_key.get_secret_value() == "newer"  # type: ignore[attr-defined]
    assert load_status(Settings).source == "snapshot"
    assert "newer" not in caplog.text
    clear_cache()
    Settings()  # fetched now: memory and store hold "old"
    fetched_at = store.entries[key].fetched_at
    store.entries[key] = Fetched(tuple(newer), fetched_at - timedelta(seconds=5), 0.0)
    phase.fake.fail_next(503, times=1)
    assert Settings().api_key.get_secret_value() == "old"  # type: ignore[attr-defined]
    assert load_status(Settings).source == "stale"


def test_the_lock_spans_fetch_validation_and_write(phase: Phase, store: MemoryStore) -> None:
    phase.set("API_KEY", "k1")
    phase.set("PORT", "not-a-port")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        api_key: SecretStr
        port: int = 0

        @field_validator("port", mode="before")
        @classmethod
        def _seen(cls, value: Any) -> Any:
            store.events.append(f"validate {phase.gets()} request(s)")
            return value

    with pytest.raises(ValidationError):
        Settings()
    assert store.events == ["lock", "validate 1 request(s)", "unlock"]  # refused: not written
    assert store.entries == {}
    store.events.clear()
    phase.set("PORT", "8080")
    clear_cache()
    assert Settings().port == 8080  # type: ignore[attr-defined]
    assert store.events == ["lock", "validate 2 request(s)", "put", "unlock"]


def test_the_shared_tiers_are_read_in_order_and_all_written(phase: Phase) -> None:
    host, fleet = MemoryStore("host"), MemoryStore("fleet")
    phase.set("API_KEY", "k1")
    Settings = settings(phase)
    with tiers(host, fleet):
        Settings()
        assert phase.gets() == 1
        assert host.events == fleet.events == ["lock", "put", "unlock"]
        assert list(host.entries) == list(fleet.entries)  # both written after the fetch
        host.entries.clear()  # a new host: only the fleet holds a copy
        clear_cache()
        assert Settings().api_key.get_secret_value() == "k1"  # type: ignore[attr-defined]
        assert phase.gets() == 1 and load_status(Settings).source == "cache"
        assert set(host.asked) == set(fleet.asked) and min(host.asked) > 0  # (key, ttl) only


def test_with_a_ttl_of_0_no_tier_is_asked_for_a_fresh_copy(
    phase: Phase, store: MemoryStore
) -> None:
    phase.set("API_KEY", "k1")
    Settings = settings(phase, phase_cache_ttl=0)
    Settings()
    Settings()
    assert phase.gets() == 2 and store.asked == []
    assert store.events == ["lock", "put", "unlock"] * 2  # still shared for an outage
