"""The load pipeline's second-level store (where the on-disk snapshot plugs in): consulted when
the memory cache misses, written after each fetch, and offered as a fallback beside the
process's last good values, the newer winning."""

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
from phase_settings._settings.config import ResolvedConfig

from ..conftest import Phase


class MemoryStore:
    """A second-level store kept in a dict (the snapshot's contract, without the disk)."""

    def __init__(self) -> None:
        self.entries: dict[CacheKey, Fetched] = {}
        self.fresh = True
        self.events: list[str] = []

    def get_fresh(self, key: CacheKey, config: ResolvedConfig) -> Fetched | None:
        return self.entries.get(key) if self.fresh else None

    def get_last_good(self, key: CacheKey, config: ResolvedConfig) -> Fetched | None:
        return self.entries.get(key)

    def put(self, key: CacheKey, entry: Fetched, config: ResolvedConfig) -> None:
        self.events.append("put")
        self.entries[key] = entry

    @contextmanager
    def lock(self, key: CacheKey, config: ResolvedConfig, wait: float) -> Iterator[bool]:
        self.events.append("lock")
        try:
            yield True
        finally:
            self.events.append("unlock")


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    before, runtime.second_level = runtime.second_level, memory
    try:
        yield memory
    finally:
        runtime.second_level = before


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
    store.fresh = False
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
