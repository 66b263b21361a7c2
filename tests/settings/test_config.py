"""``.phase.json`` problems are configuration errors that say what is wrong and name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase_settings import PhaseConfigError
from phase_settings._settings.config import find_phase_json, resolve_config


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("[1, 2]", "must hold a JSON object"),
        ('"appId"', "not a JSON string"),
        ("42", "not a JSON number"),
        ('{"appId": 42}', "appId must be a string, not a JSON number"),
        ('{"appId": ["a"]}', "appId must be a string, not a JSON array"),
        ('{"appId": "a", "defaultEnv": true}', "defaultEnv must be a string, not a JSON boolean"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_bad_phase_json_is_a_config_error_naming_the_file(
    tmp_path: Path, content: str, says: str
) -> None:
    path = tmp_path / ".phase.json"
    path.write_text(content)
    with pytest.raises(PhaseConfigError) as info:
        resolve_config({"phase_token": "pss_service:v2:" + "ab" * 32}, {})
    message = str(info.value)
    assert says in message and str(path) in message


def test_an_unreadable_phase_json_is_not_called_invalid_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ".phase.json"
    path.write_text('{"appId": "a"}')
    real = Path.read_text

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        if self == path:
            raise PermissionError(13, "Permission denied")  # what a mode-000 file gives
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(PhaseConfigError) as info:
        find_phase_json(tmp_path)
    message = str(info.value)
    assert "cannot be read (Permission denied)" in message and "not valid JSON" not in message
    assert str(path) in message


def test_a_phase_json_that_is_not_utf8_is_not_called_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / ".phase.json"
    path.write_bytes(b'{"appId": "\xff\xfe"}')
    with pytest.raises(PhaseConfigError) as info:
        find_phase_json(tmp_path)
    assert "cannot be read" in str(info.value) and str(path) in str(info.value)


def test_a_good_phase_json_gives_app_and_env(tmp_path: Path) -> None:
    (tmp_path / ".phase.json").write_text('{"appId": "app-1", "defaultEnv": "Staging", "v": 2}')
    config = resolve_config({"phase_token": "pss_service:v2:" + "ab" * 32}, {})
    assert (config.app_id, config.env) == ("app-1", "Staging")


def test_the_settings_table_the_config_dict_and_the_resolved_config_agree() -> None:
    """Every phase_* key is a row of the one table, a key of ``PhaseSettingsConfigDict`` and
    a field of ``ResolvedConfig``; a key added to one and not the others fails here."""
    from phase_settings import PhaseSettingsConfigDict
    from phase_settings._defaults import SETTINGS
    from phase_settings._settings.config import ResolvedConfig

    typed = {k for k in PhaseSettingsConfigDict.__annotations__ if k.startswith("phase_")}
    assert typed == set(SETTINGS)
    renamed = {"phase_path": "paths", "phase_tags": "tags"}
    fields = {renamed.get(k, k.removeprefix("phase_")) for k in SETTINGS}
    assert fields <= set(ResolvedConfig._fields)


def test_defaults_come_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from phase_settings._defaults import SETTINGS

    config = resolve_config({"phase_token": "pss_service:v2:" + "ab" * 32}, {})
    assert config.timeout == SETTINGS["phase_timeout"].default == 10.0
    assert config.deadline == 15.0 and config.max_attempts == 3 and config.cache_ttl == 300.0
    assert config.max_response_bytes == 32 * 1024 * 1024 and config.fallback == "dotenv"
    monkeypatch.setenv("PHASE_TOKEN", "pss_user:v1:" + "cd" * 32)
    assert resolve_config({}, {}).token is not None  # the second name of the token's row


TOKEN = "pss_service:v2:" + "ab" * 32


def test_allow_http_from_the_environment_or_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config({"phase_token": TOKEN}, {}).allow_http is False
    monkeypatch.setenv("PHASE_ALLOW_HTTP", "true")
    assert resolve_config({"phase_token": TOKEN}, {}).allow_http is True
    monkeypatch.delenv("PHASE_ALLOW_HTTP")
    assert resolve_config({"phase_token": TOKEN, "phase_allow_http": "yes"}, {}).allow_http
    assert not resolve_config({"phase_token": TOKEN, "phase_allow_http": "false"}, {}).allow_http


def test_tags_and_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE_TAGS", "backend, web")
    monkeypatch.setenv("PHASE_TOKEN", TOKEN)
    config = resolve_config({}, {})
    assert config.tags == ("backend", "web")
    assert config.token is not None and config.token.get_secret_value() == TOKEN
    assert config.token_origin == "PHASE_TOKEN"


def test_phase_json_is_found_up_to_8_parent_folders_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH")
    (tmp_path / ".phase.json").write_text('{"appId": "from-the-top"}')
    eight_down = tmp_path.joinpath(*"abcdefgh")
    nine_down = eight_down / "i"
    nine_down.mkdir(parents=True)
    assert find_phase_json(eight_down) == {"appId": "from-the-top"}
    assert find_phase_json(nine_down) == {}
