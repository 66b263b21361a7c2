"""One load's credentials: the fingerprint that keys pooled clients and caches covers the key
parts of a ``pss_`` token, while snapshot files keep the names they always had."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phase_settings import PhaseAuthError, PhaseSettings, PhaseSettingsConfigDict
from phase_settings._load.cache import Fetched
from phase_settings._load.fetch import cache_keys
from phase_settings._load.runtime import runtime
from phase_settings._models import Secret
from phase_settings._settings.config import resolve_config
from phase_settings.testing import FakePhase


@dataclass
class Sealed:
    url: str
    app_id: str
    token: str


@pytest.fixture
def sealed() -> Iterator[Sealed]:
    fake = FakePhase()
    app_id = fake.add_app("x", sse=False)
    fake.set_secret(app_id, "development", "API_KEY", "the-value")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield Sealed(url, app_id, token)


def altered(token: str) -> str:
    """The same bearer part with another first key share: Phase accepts the bearer, the key
    parts do not open the account's key."""
    fields = token.split(":")
    assert len(fields) == 6
    fields[4] = "f4" * 32
    return ":".join(fields)


def settings_class(sealed: Sealed, token: str) -> type[PhaseSettings]:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(
            phase_token=token,
            phase_host=sealed.url,
            phase_app_id=sealed.app_id,
            phase_env="development",
            phase_mode="e2ee",
            phase_fallback="raise",
        )
        api_key: str = "unset"

    return Settings


def test_a_wrong_token_loaded_first_never_breaks_the_right_one(sealed: Sealed) -> None:
    """The pool was keyed by the bearer part: the client built for the wrong token served the
    right one too, which then failed with PhaseAuthError for the rest of the process."""
    with pytest.raises(PhaseAuthError):
        settings_class(sealed, altered(sealed.token))()
    assert settings_class(sealed, sealed.token)().api_key == "the-value"  # type: ignore[attr-defined]


def test_a_wrong_token_is_never_served_the_right_ones_cached_values(sealed: Sealed) -> None:
    assert settings_class(sealed, sealed.token)().api_key == "the-value"  # type: ignore[attr-defined]
    with pytest.raises(PhaseAuthError):
        settings_class(sealed, altered(sealed.token))()


def test_two_tokens_with_one_bearer_part_have_two_cache_keys() -> None:
    token = "pss_service:v2:" + ":".join(part * 32 for part in ("a7", "b8", "c9", "d0"))
    keys = [
        cache_keys(resolve_config({"phase_token": t, "phase_app_id": "a"}, {}, environ={}))
        for t in (token, altered(token))
    ]
    assert keys[0] != keys[1]


APP_ID = "8d8fde43-ceb6-4c92-a776-827433512ff9"
# The file names this configuration's snapshots had before the credentials were parsed once.
SNAPSHOT_NAMES = {
    "pss_service:v2:" + ":".join(part * 32 for part in ("a7", "b8", "c9", "d0")): (
        "2e7ec1f398d3d54b7a40f3a001459e00e024c7feb1124f165faa351525568d27.snapshot"
    ),
    "ServiceAccount " + "a7" * 32: (
        "f47c77e1a1d35df84d48bfb83db9153af30fcc33edf3836ce94d4fcad72462ce.snapshot"
    ),
}


@pytest.mark.parametrize("token", list(SNAPSHOT_NAMES))
def test_existing_snapshots_keep_their_names(token: str, tmp_path: Path) -> None:
    folder = tmp_path / "snapshots"
    config = resolve_config(
        {
            "phase_token": token,
            "phase_host": "https://api.phase.dev",
            "phase_app_id": APP_ID,
            "phase_env": "Production",
            "phase_snapshot_dir": str(folder),
        },
        {},
        environ={},
    )
    layer = runtime.snapshot_tier(config)
    assert layer is not None
    [key] = cache_keys(config)
    entry = Fetched((Secret("id-1", "API_KEY", "v"),), datetime.now(UTC), 300.0)
    layer.put(key, entry)
    assert [n for n in os.listdir(folder) if n.endswith(".snapshot")] == [SNAPSHOT_NAMES[token]]
    stored = layer.last_good(key)
    assert stored is not None and stored.secrets == entry.secrets
