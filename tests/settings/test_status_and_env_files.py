"""Behaviours of the settings layer that a one-line change could break unnoticed: which of
several env files gives the ``PHASE_*`` configuration, and when ``stale_since`` moves."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from phase_settings import LiveSettings, PhaseServerError, PhaseSettings, PhaseSettingsConfigDict

from ..conftest import Phase


def test_the_later_env_file_gives_the_phase_configuration_as_it_gives_fields(
    phase: Phase, tmp_path: Path
) -> None:
    """pydantic-settings gives the later of ``env_file=(".env", ".env.prod")`` priority; so
    does Phase's configuration read from them: fields and environment from one file."""
    phase.set("DB_HOST", "dev-db", env="development")
    phase.set("DB_HOST", "prod-db", env="production")
    (tmp_path / ".env").write_text("PHASE_ENV=development\nWORKERS=1\n")
    (tmp_path / ".env.prod").write_text("PHASE_ENV=production\nWORKERS=8\n")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(
            env_file=(tmp_path / ".env", tmp_path / ".env.prod"),
            phase_app_id=phase.app_id,
            phase_token=phase.token,  # type: ignore[typeddict-item]
            phase_host=phase.url,
        )
        db_host: str = "unset"
        workers: int = 0

    settings = Settings()
    assert settings.workers == 8  # pydantic-settings' own rule, for the fields
    assert settings.db_host == "prod-db"  # the same rule for PHASE_ENV
    [request] = [r for r in phase.fake.requests if r.method == "GET"]
    assert request.query["env"].lower() == "production"


def test_stale_since_stays_at_the_first_failure_until_a_success(phase: Phase) -> None:
    phase.set("API_KEY", "key-1")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(phase_deadline=1.0))  # type: ignore[typeddict-item]
        api_key: SecretStr

    live = LiveSettings(Settings)
    assert live.status.stale_since is None
    phase.fake.fail_next(501, times=3)  # not retried: each refresh fails at once
    with pytest.raises(PhaseServerError):
        live.refresh()
    first = live.status.stale_since
    assert first is not None
    for _ in range(2):
        with pytest.raises(PhaseServerError):
            live.refresh()
        assert live.status.stale_since == first  # the outage began then, not at the last try
    live.refresh()
    assert live.status.stale_since is None
