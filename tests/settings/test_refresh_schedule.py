"""What ``LiveSettings`` notices and when its background thread refreshes.

- A change to a personal override (user tokens) is a change: ``refresh()`` reports the field
  and ``on_change`` fires, exactly as for a change to the shared value.
- ``start(interval)`` refreshes every ``interval`` seconds with ±10 % jitter, so a fleet
  started together does not refresh in lock-step; after a failed refresh it backs off from
  1 s, doubling, to at most 5 min.

The thread's waits are recorded instead of slept and its jitter source is seeded
(``_seams.refresh_waits``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from phase_settings import LiveSettings, PhaseSettings, PhaseSettingsConfigDict

from .._seams import refresh_waits
from ..conftest import Phase


def settings_class(phase: Phase, **config: Any) -> type[PhaseSettings]:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(**config))  # type: ignore[typeddict-item]
        db_host: str
        api_key: SecretStr = SecretStr("none")

    return Settings


# --- personal overrides ---------------------------------------------------------------------------


def test_a_changed_personal_override_fires_on_change(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine-1")
    live = LiveSettings(settings_class(phase, phase_token=user))
    changes: list[tuple[str, str, frozenset[str]]] = []
    live.on_change(lambda old, new, changed: changes.append((old.db_host, new.db_host, changed)))
    assert live.current.db_host == "mine-1"  # type: ignore[attr-defined]
    assert live.refresh() == frozenset()  # nothing changed yet

    for n in (2, 3):  # a second change too: each refresh compares with the one before
        phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", f"mine-{n}")
        assert live.refresh() == frozenset({"db_host"})
        assert live.current.db_host == f"mine-{n}"  # type: ignore[attr-defined]
    assert changes == [
        ("mine-1", "mine-2", frozenset({"db_host"})),
        ("mine-2", "mine-3", frozenset({"db_host"})),
    ]


def test_a_changed_personal_override_fires_on_change_from_arefresh(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine-1")
    live = LiveSettings(settings_class(phase, phase_token=user))
    changes: list[frozenset[str]] = []
    live.on_change(lambda old, new, changed: changes.append(changed))
    assert asyncio.run(live.arefresh()) == frozenset()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine-2")
    assert asyncio.run(live.arefresh()) == frozenset({"db_host"})
    assert live.current.db_host == "mine-2"  # type: ignore[attr-defined]
    assert changes == [frozenset({"db_host"})]


def test_switching_a_personal_override_off_and_on_fires_on_change(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine")
    live = LiveSettings(settings_class(phase, phase_token=user))
    seen: list[str] = []
    live.on_change(lambda old, new, changed: seen.append(new.db_host))

    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine", active=False)
    assert live.refresh() == frozenset({"db_host"})
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine", active=True)
    assert live.refresh() == frozenset({"db_host"})
    assert seen == ["shared", "mine"]


def test_an_unchanged_override_fires_nothing(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "mine")
    live = LiveSettings(settings_class(phase, phase_token=user))
    calls: list[object] = []
    live.on_change(lambda *args: calls.append(args))
    assert live.refresh() == frozenset()
    assert calls == []


# --- the background thread's schedule -------------------------------------------------------------


def test_refreshes_are_spread_ten_percent_either_side_of_the_interval(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    live = LiveSettings(settings_class(phase))
    waits = refresh_waits(
        monkeypatch, live, rounds=200, seed=11, start=lambda: live.start(interval=100)
    )
    assert len(waits) == 200
    assert all(90.0 <= wait <= 110.0 for wait in waits), (min(waits), max(waits))
    # spread over the whole band, not pinned to the interval
    assert min(waits) < 92.0 and max(waits) > 108.0
    assert sum(1 for w in waits if w < 100.0) > 60 and sum(1 for w in waits if w > 100.0) > 60
    asked = phase.gets()
    assert asked == 1 + 199  # the first instance, then one refresh after each wait but the last


def test_the_interval_defaults_to_the_cache_ttl(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    live = LiveSettings(settings_class(phase, phase_cache_ttl=40))
    waits = refresh_waits(monkeypatch, live, rounds=50, seed=12, start=live.start)
    assert all(36.0 <= wait <= 44.0 for wait in waits)


def test_start_without_an_interval_is_refused_when_the_cache_ttl_is_zero(phase: Phase) -> None:
    # With no cache there is no TTL to refresh by: the error says to give an interval because
    # the TTL is 0 (not a confusing "an interval of at least 1 s, got 0").
    phase.set("DB_HOST", "db")
    live = LiveSettings(settings_class(phase, phase_cache_ttl=0))
    try:
        with pytest.raises(ValueError, match=r"needs an interval when phase_cache_ttl is 0"):
            live.start()
        assert repr(live).endswith("running=False)")
    finally:
        live.stop()


def test_failed_refreshes_back_off_from_one_second_doubling_to_five_minutes(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "db")
    live = LiveSettings(settings_class(phase, phase_max_attempts=1))
    first = live.current
    phase.fake.fail_next(503, times=11)  # the first 11 refreshes fail, the 12th succeeds
    waits = refresh_waits(
        monkeypatch, live, rounds=14, seed=13, start=lambda: live.start(interval=100)
    )
    assert waits[0] >= 90.0  # the first refresh waits an interval
    assert waits[1:12] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert all(90.0 <= wait <= 110.0 for wait in waits[12:])  # recovered: the interval again
    assert live.current is first  # nothing changed in Phase: the instance is kept
