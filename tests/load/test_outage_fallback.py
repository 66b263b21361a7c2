"""What ``Settings()`` serves when Phase is unavailable, for each ``phase_fallback``:

- ``"stale"``: the last good values of this process, else raise; never the env file;
- ``"dotenv"``: the last good values, else the env file, with one WARNING naming the cause;
- ``"raise"``: raise, even when last good values exist.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from phase_settings import (
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    load_status,
)

from .. import _modes
from ..conftest import Phase

phase_mode = _modes.phase_mode  # every test in both API modes


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / ".env"
    path.write_text("DB_HOST=from-dotenv\n")
    return path


class Fields(PhaseSettings):
    db_host: str


def settings_class(phase: Phase, fallback: str, **config: Any) -> type[Fields]:
    class Settings(Fields):
        model_config = PhaseSettingsConfigDict(
            **phase.config(  # type: ignore[typeddict-item]
                phase_fallback=fallback,
                phase_max_attempts=1,
                phase_cache_ttl=0,
                env_file=".env",
                **config,
            )
        )

    return Settings


def test_stale_without_last_good_values_raises_instead_of_reading_the_env_file(
    phase: Phase, env_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Settings = settings_class(phase, "stale")
    phase.fake.fail_next(503, times=10)
    with caplog.at_level(logging.WARNING, "phase_settings"), pytest.raises(PhaseServerError):
        Settings()
    assert load_status(Settings).source != "dotenv"
    assert not any("falls back to" in r.getMessage() for r in caplog.records)


def test_stale_serves_the_last_good_values_not_the_env_file(
    phase: Phase, env_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("DB_HOST", "from-phase")
    Settings = settings_class(phase, "stale")
    assert Settings().db_host == "from-phase"
    phase.fake.fail_next(503, times=10)
    with caplog.at_level(logging.WARNING, "phase_settings"):
        assert Settings().db_host == "from-phase"
    assert load_status(Settings).source == "stale"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "last good values" in warnings[0].getMessage()


def test_dotenv_without_last_good_values_reads_the_env_file_and_says_so(
    phase: Phase, env_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Settings = settings_class(phase, "dotenv")
    phase.fake.fail_next(503, times=10)
    with caplog.at_level(logging.WARNING, "phase_settings"):
        assert Settings().db_host == "from-dotenv"
    assert load_status(Settings).source == "dotenv"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].endswith("falls back to .env") and "PhaseServerError" in warnings[0]
    assert "from-dotenv" not in warnings[0]


def test_dotenv_prefers_the_last_good_values(phase: Phase, env_file: Path) -> None:
    phase.set("DB_HOST", "from-phase")
    Settings = settings_class(phase, "dotenv")
    assert Settings().db_host == "from-phase"
    phase.fake.fail_next(503, times=10)
    assert Settings().db_host == "from-phase"
    assert load_status(Settings).source == "stale"


def test_dotenv_without_an_env_file_on_disk_raises(phase: Phase) -> None:
    Settings = settings_class(phase, "dotenv")
    phase.fake.fail_next(503, times=10)
    with pytest.raises(PhaseServerError):
        Settings()


def test_raise_ignores_last_good_values_and_the_env_file(phase: Phase, env_file: Path) -> None:
    phase.set("DB_HOST", "from-phase")
    Settings = settings_class(phase, "raise")
    assert Settings().db_host == "from-phase"
    phase.fake.fail_next(503, times=10)
    with pytest.raises(PhaseServerError):
        Settings()
