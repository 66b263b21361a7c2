"""A ``PhaseSettings`` class whose app has no SSE loads end to end over loopback: in the default
``auto`` mode (one REST request per process, then the end-to-end-encrypted API) and with
``PHASE_MODE=e2ee`` (that API from the first request), sync and with ``aload``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from pydantic import SecretStr

import phase_settings
from phase_settings import (
    PhaseSettings,
    PhaseSettingsConfigDict,
    PhaseSSEDisabledError,
    aload,
    load_status,
)
from phase_settings._client.switch import PROCESS_SWITCH
from phase_settings.testing import FakePhase


@pytest.fixture(autouse=True)
def _fresh_switches() -> Iterator[None]:
    PROCESS_SWITCH.reset()
    yield
    PROCESS_SWITCH.reset()


@pytest.fixture
def sealed() -> Iterator[tuple[FakePhase, dict[str, Any]]]:
    fake = FakePhase()
    app_id = fake.add_app("sealed", sse=False)
    fake.set_secret(app_id, "development", "DB_HOST", "db.internal")
    fake.set_secret(app_id, "development", "DB_URL", "pg://${DB_HOST}:${PORT}/app")
    fake.set_secret(app_id, "development", "PORT", "5432")
    fake.set_secret(app_id, "development", "API_KEY", "k-123")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield (
            fake,
            {
                "phase_app_id": app_id,
                "phase_env": "Development",
                "phase_token": token,
                "phase_host": url,
            },
        )


def make_settings(config: dict[str, Any]) -> type[PhaseSettings]:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**config)  # type: ignore[typeddict-item]
        db_url: str
        port: int
        api_key: SecretStr

    return Settings


def routes(fake: FakePhase) -> list[str]:
    return [
        "rest"
        if r.path.startswith("/service/public/")
        else "tokens"
        if r.path.endswith("/tokens/")
        else "secrets"
        for r in fake.requests
    ]


def check(settings: Any) -> None:
    assert settings.db_url == "pg://db.internal:5432/app"
    assert settings.port == 5432
    assert settings.api_key.get_secret_value() == "k-123"


def test_auto_mode_loads_an_app_without_sse(sealed: tuple[FakePhase, dict[str, Any]]) -> None:
    fake, config = sealed
    Settings = make_settings(config)
    check(Settings())
    assert load_status(Settings).source == "phase"
    assert routes(fake) == ["rest", "tokens", "secrets"]
    phase_settings.clear_cache()
    fake.clear_requests()
    check(make_settings(config)())  # another class, a cold cache: the switch holds
    assert routes(fake) == ["tokens", "secrets"]


def test_phase_mode_e2ee_from_the_environment(
    sealed: tuple[FakePhase, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, config = sealed
    monkeypatch.setenv("PHASE_MODE", "e2ee")
    check(make_settings(config)())
    assert routes(fake) == ["tokens", "secrets"]


def test_aload_in_auto_mode(sealed: tuple[FakePhase, dict[str, Any]]) -> None:
    fake, config = sealed
    Settings = make_settings(config)

    async def main() -> Any:
        return await aload(Settings)

    check(anyio.run(main, backend="asyncio"))  # aload runs on asyncio
    assert routes(fake) == ["rest", "tokens", "secrets"]


def test_phase_mode_in_model_config_picks_the_api(
    sealed: tuple[FakePhase, dict[str, Any]],
) -> None:
    """Two classes with the same token and host but different modes get different clients."""
    fake, config = sealed
    check(make_settings({**config, "phase_mode": "e2ee"})())
    assert routes(fake) == ["tokens", "secrets"]
    phase_settings.clear_cache()
    with pytest.raises(PhaseSSEDisabledError, match="pss_ token"):
        make_settings({**config, "phase_mode": "sse", "phase_fallback": "raise"})()
    assert routes(fake)[2:] == ["rest"]
