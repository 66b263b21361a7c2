"""Where the ``phase_*`` settings come from, as a user configures them: environment variables
(``PHASE_TOKEN``, ``PHASE_TAGS``, ``PHASE_ALLOW_HTTP``), the env file, ``model_config`` and
``.phase.json`` (searched up to 8 parent folders by default), and the settings that must
reach the HTTP client (``phase_max_response_bytes``).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from phase_settings import (
    PhaseAuthError,
    PhaseClient,
    PhaseConfigError,
    PhaseResponseError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    aload,
)

from ..conftest import Phase

REMOTE_HOST = "phase.example.test"  # never resolved: the loopback proxy answers for it


class Fields(PhaseSettings):
    db_host: str = "unset"
    worker_count: str = "unset"


def settings_class(**config: Any) -> type[Fields]:
    class Settings(Fields):
        model_config = PhaseSettingsConfigDict(**config)  # type: ignore[typeddict-item]

    return Settings


# --- defaults -------------------------------------------------------------------------------------


def test_without_env_or_path_the_development_root_folder_is_loaded(phase: Phase) -> None:
    phase.set("DB_HOST", "dev-db")
    phase.set("WORKER_COUNT", "deep", path="/backend")
    phase.set("DB_HOST", "prod-db", env="production")
    config = phase.config()
    del config["phase_env"]
    loaded = settings_class(**config)()
    assert (loaded.db_host, loaded.worker_count) == ("dev-db", "unset")
    [request] = phase.fake.requests
    assert request.query["env"] == "Development"
    assert request.query["path"] == "/"


# --- PHASE_TOKEN ----------------------------------------------------------------------------------


def test_phase_token_in_the_environment_is_used(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "from-phase")
    monkeypatch.setenv("PHASE_TOKEN", phase.token)
    monkeypatch.setenv("PHASE_HOST", phase.url)
    monkeypatch.setenv("PHASE_APP_ID", phase.app_id)
    monkeypatch.setenv("PHASE_ENV", "development")
    assert settings_class()().db_host == "from-phase"
    assert phase.gets() == 1


def test_phase_token_in_the_env_file_is_used(phase: Phase, tmp_path: Path) -> None:
    phase.set("DB_HOST", "from-phase")
    (tmp_path / ".env").write_text(
        f"PHASE_TOKEN={phase.token}\nPHASE_HOST={phase.url}\n"
        f"PHASE_APP_ID={phase.app_id}\nPHASE_ENV=development\n"
    )
    assert settings_class(env_file=".env")().db_host == "from-phase"


def test_phase_service_token_wins_over_phase_token(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("DB_HOST", "from-phase")
    revoked = phase.fake.add_service_account(envs=None)
    phase.fake.revoke(revoked)
    monkeypatch.setenv("PHASE_HOST", phase.url)
    monkeypatch.setenv("PHASE_APP_ID", phase.app_id)
    monkeypatch.setenv("PHASE_ENV", "development")
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", phase.token)
    monkeypatch.setenv("PHASE_TOKEN", revoked)
    Settings = settings_class(phase_cache_ttl=0)
    assert Settings().db_host == "from-phase"
    # and the other way round the revoked token is the one sent: Phase refuses it
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", revoked)
    monkeypatch.setenv("PHASE_TOKEN", phase.token)
    with pytest.raises(PhaseAuthError):
        Settings()


def test_the_client_reads_phase_token_too(phase: Phase, monkeypatch: pytest.MonkeyPatch) -> None:
    phase.set("DB_HOST", "from-phase")
    monkeypatch.setenv("PHASE_TOKEN", phase.token)
    monkeypatch.setenv("PHASE_HOST", phase.url)
    with PhaseClient() as client:
        assert [s.value for s in client.list_secrets(phase.app_id, "development")] == ["from-phase"]


# --- PHASE_TAGS -----------------------------------------------------------------------------------


@pytest.fixture
def tagged(phase: Phase) -> Phase:
    phase.fake.set_secret(phase.app_id, "development", "DB_HOST", "db", tags=("backend",))
    phase.fake.set_secret(phase.app_id, "development", "WORKER_COUNT", "4", tags=("worker",))
    return phase


def test_phase_tags_in_the_environment_filter_the_secrets(
    tagged: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings = settings_class(**tagged.config(phase_cache_ttl=0))
    everything = Settings()
    assert (everything.db_host, everything.worker_count) == ("db", "4")

    monkeypatch.setenv("PHASE_TAGS", "backend")
    only_backend = Settings()
    assert (only_backend.db_host, only_backend.worker_count) == ("db", "unset")
    assert tagged.fake.requests[-1].query["tags"] == "backend"

    monkeypatch.setenv("PHASE_TAGS", " worker , backend ")  # comma-separated, spaces ignored
    both = Settings()
    assert (both.db_host, both.worker_count) == ("db", "4")
    assert tagged.fake.requests[-1].query["tags"] == "worker,backend"


def test_phase_tags_in_the_environment_filter_the_secrets_of_aload(
    tagged: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings = settings_class(**tagged.config(phase_cache_ttl=0))
    monkeypatch.setenv("PHASE_TAGS", "backend")
    only_backend = asyncio.run(aload(Settings))
    assert (only_backend.db_host, only_backend.worker_count) == ("db", "unset")
    assert tagged.fake.requests[-1].query["tags"] == "backend"


def test_phase_tags_beat_model_config(tagged: Phase, monkeypatch: pytest.MonkeyPatch) -> None:
    Settings = settings_class(**tagged.config(phase_tags="backend"))
    monkeypatch.setenv("PHASE_TAGS", "worker")
    loaded = Settings()
    assert (loaded.db_host, loaded.worker_count) == ("unset", "4")


def test_cached_values_of_one_tag_set_are_not_served_for_another(
    tagged: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings = settings_class(**tagged.config())  # the cache is on (300 s)
    monkeypatch.setenv("PHASE_TAGS", "worker")
    assert Settings().db_host == "unset"
    monkeypatch.setenv("PHASE_TAGS", "backend")
    assert Settings().db_host == "db"


# --- PHASE_ALLOW_HTTP -----------------------------------------------------------------------------
#
# Plain http:// to a host that is not loopback needs PHASE_ALLOW_HTTP. The "remote" host is
# reached through an HTTP proxy on 127.0.0.1 (the fake answers proxy requests), so no name is
# resolved and no traffic leaves the machine.


@pytest.fixture
def remote(phase: Phase, monkeypatch: pytest.MonkeyPatch) -> Phase:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", phase.url)
    monkeypatch.setenv("HTTP_PROXY", phase.url)
    phase.set("DB_HOST", "from-remote")
    return phase


def remote_config(phase: Phase, **extra: Any) -> dict[str, Any]:
    return phase.config(phase_host=f"http://{REMOTE_HOST}", phase_cache_ttl=0, **extra)


def test_plain_http_to_a_remote_host_is_refused_without_allow_http(remote: Phase) -> None:
    with pytest.raises(PhaseConfigError, match=r"PHASE_ALLOW_HTTP") as caught:
        settings_class(**remote_config(remote))()
    assert REMOTE_HOST in str(caught.value)
    assert remote.fake.requests == []


@pytest.mark.parametrize("value", ["true", "1", "yes", "ON", " True "])
def test_phase_allow_http_in_the_environment_allows_it(
    remote: Phase, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PHASE_ALLOW_HTTP", value)
    assert settings_class(**remote_config(remote))().db_host == "from-remote"
    (request,) = remote.fake.requests
    assert request.headers["host"] == REMOTE_HOST


@pytest.mark.parametrize("value", ["false", "0", "no", "off"])
def test_phase_allow_http_false_in_the_environment_still_refuses(
    remote: Phase, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PHASE_ALLOW_HTTP", value)
    with pytest.raises(PhaseConfigError, match=r"Refusing plain http://"):
        settings_class(**remote_config(remote))()
    assert remote.fake.requests == []


def test_phase_allow_http_false_in_the_environment_beats_model_config(
    remote: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHASE_ALLOW_HTTP", "false")
    with pytest.raises(PhaseConfigError, match=r"Refusing plain http://"):
        settings_class(**remote_config(remote, phase_allow_http=True))()


@pytest.mark.parametrize(("value", "allowed"), [("true", True), ("false", False), ("0", False)])
def test_a_string_phase_allow_http_in_model_config_is_parsed(
    remote: Phase, value: str, allowed: bool
) -> None:
    Settings = settings_class(**remote_config(remote, phase_allow_http=value))
    if allowed:
        assert Settings().db_host == "from-remote"
    else:
        with pytest.raises(PhaseConfigError, match=r"Refusing plain http://"):
            Settings()


def test_phase_allow_http_in_the_env_file_allows_it(remote: Phase, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PHASE_ALLOW_HTTP=true\n")
    Settings = settings_class(**remote_config(remote, env_file=".env"))
    assert Settings().db_host == "from-remote"


# --- phase_max_response_bytes ---------------------------------------------------------------------


def test_phase_max_response_bytes_limits_the_reply(phase: Phase) -> None:
    phase.set("DB_HOST", "x" * 5000)
    Small = settings_class(**phase.config(phase_max_response_bytes=1024))
    with pytest.raises(PhaseResponseError, match="max_response_bytes"):
        Small()
    Large = settings_class(**phase.config(phase_max_response_bytes=1024 * 1024))
    assert Large().db_host == "x" * 5000


def test_phase_max_response_bytes_limits_the_reply_of_aload(phase: Phase) -> None:
    phase.set("DB_HOST", "x" * 5000)
    Small = settings_class(**phase.config(phase_max_response_bytes=1024))
    with pytest.raises(PhaseResponseError, match="max_response_bytes"):
        asyncio.run(aload(Small))


# --- .phase.json ----------------------------------------------------------------------------------


def nested_folder(root: Path, depth: int) -> Path:
    folder = root.joinpath(*(f"d{i}" for i in range(1, depth + 1)))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def phase_json(phase: Phase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``.phase.json`` naming the fake's app, at the root of the test's folder, and the
    default search depth (the test configuration otherwise sets 0)."""
    monkeypatch.delenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", raising=False)
    phase.set("DB_HOST", "via-phase-json", env="staging")
    root = tmp_path / "project"
    root.mkdir()
    (root / ".phase.json").write_text(
        json.dumps(
            {"version": "2", "phaseApp": "demo", "appId": phase.app_id, "defaultEnv": "Staging"}
        )
    )
    return root


def test_phase_json_is_found_up_to_eight_folders_up_by_default(
    phase: Phase, phase_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Settings = settings_class(phase_token=phase.token, phase_host=phase.url)
    for depth in (0, 1, 8):
        monkeypatch.chdir(nested_folder(phase_json, depth))
        assert Settings().db_host == "via-phase-json", f"not found {depth} folders up"


def test_phase_json_nine_folders_up_is_not_found_by_default(
    phase: Phase, phase_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(nested_folder(phase_json, 9))
    Settings = settings_class(phase_token=phase.token, phase_host=phase.url)
    with pytest.raises(PhaseConfigError, match="no app id"):
        Settings()
    assert phase.fake.requests == []


def test_the_search_depth_variable_still_overrides_the_default(
    phase: Phase, phase_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(nested_folder(phase_json, 9))
    monkeypatch.setenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", "9")
    Settings = settings_class(phase_token=phase.token, phase_host=phase.url)
    assert Settings().db_host == "via-phase-json"
