"""PhaseSettingsSource and PhaseSettings against the loopback fake Phase server."""

from __future__ import annotations

import enum
import json
import keyword
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from phase_settings import (
    PhaseAuthError,
    PhaseClient,
    PhaseConfigError,
    PhaseNotFoundError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    PhaseSettingsSource,
    PhaseSSEDisabledError,
    load_status,
)
from phase_settings.testing import FakePhase

from .. import _modes
from ..conftest import Phase

# Every test here runs over REST and over the end-to-end-encrypted API.
phase_mode = _modes.phase_mode
REQUESTS_PER_LOAD = _modes.REQUESTS_PER_LOAD


def settings_class(phase: Phase, fields: dict[str, Any], **config: Any) -> type[PhaseSettings]:
    namespace: dict[str, Any] = {"__annotations__": {}}
    for name, spec in fields.items():
        annotation, *default = spec if isinstance(spec, tuple) else (spec,)
        namespace["__annotations__"][name] = annotation
        if default:
            namespace[name] = default[0]
    namespace["model_config"] = PhaseSettingsConfigDict(**phase.config(**config))  # type: ignore[typeddict-item]
    return type("Settings", (PhaseSettings,), namespace)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Db(BaseModel):
    host: str
    port: int = 5432


def test_mixed_fields_load_with_one_request(phase: Phase, phase_mode: str) -> None:
    values = {
        "DATABASE_URL": "postgres://u:p@db/app",
        "STRIPE_KEY": "sk_live_1",
        "MAX_CONNECTIONS": "25",
        "DEBUG": "true",
        "ALLOWED_HOSTS": '["a.com","b.com"]',
        "LIMITS": '{"a": 1}',
        "DB__HOST": "db.internal",
        "DB__PORT": "6543",
        "COLOR": "blue",
        "RATIO": "0.5",
    }
    for key, value in values.items():
        phase.set(key, value)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        database_url: str
        stripe_key: SecretStr
        max_connections: int = 10
        debug: bool = False
        allowed_hosts: list[str] = []
        limits: dict[str, int] = {}
        db: Db
        color: Color = Color.RED
        ratio: float = 1.0
        untouched: str = "default"

    s = Settings()
    assert s.database_url == "postgres://u:p@db/app"
    assert s.stripe_key.get_secret_value() == "sk_live_1"
    assert (s.max_connections, s.debug, s.ratio) == (25, True, 0.5)
    assert s.allowed_hosts == ["a.com", "b.com"] and s.limits == {"a": 1}
    assert s.db == Db(host="db.internal", port=6543)
    assert s.color is Color.BLUE and s.untouched == "default"
    assert phase.gets() == REQUESTS_PER_LOAD[phase_mode]
    assert load_status(Settings).source == "phase"


def test_loading_through_phase_equals_loading_through_env_vars(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = {
        f"FIELD_{i}": v
        for i, v in enumerate(["a", "1", "true", "[1,2]", '{"k":"v"}', "2.5", "x y", ""])
    }
    for key, value in pairs.items():
        phase.set(key, value)

    fields: dict[str, Any] = {
        "field_0": str,
        "field_1": int,
        "field_2": bool,
        "field_3": list[int],
        "field_4": dict[str, str],
        "field_5": float,
        "field_6": SecretStr,
        "field_7": str,
    }
    from_phase = settings_class(phase, fields)()

    class FromEnv(BaseSettings):
        model_config = SettingsConfigDict(env_nested_delimiter="__")
        __annotations__ = dict(fields)

    for key, value in pairs.items():
        monkeypatch.setenv(key, value)
    assert from_phase.model_dump() == FromEnv().model_dump()  # type: ignore[call-arg]


def test_env_prefix_alias_and_case_folding(phase: Phase) -> None:
    phase.set("APP_NAME", "svc")
    phase.set("LEGACY_PORT", "8081")
    phase.set("TOKEN_ALIAS", "t")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(env_prefix="APP_", **phase.config())  # type: ignore[typeddict-item]
        name: str
        port: int = Field(default=0, validation_alias=AliasChoices("NEW_PORT", "LEGACY_PORT"))
        token: str = Field(default="", validation_alias="token_alias")

    s = Settings()
    assert (s.name, s.port, s.token) == ("svc", 8081, "t")


def test_case_sensitive_config_is_respected(phase: Phase) -> None:
    phase.set("NAME", "upper")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(case_sensitive=True, **phase.config())  # type: ignore[typeddict-item]
        name: str = "unset"
        NAME: str = "unset"

    s = Settings()
    assert s.NAME == "upper" and s.name == "unset"


@pytest.mark.parametrize(
    ("env_value", "dotenv_value", "expected"),
    [("from-env", "from-dotenv", "from-env"), (None, "from-dotenv", "from-phase")],
)
def test_env_vars_beat_phase_and_phase_beats_dotenv(
    phase: Phase,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    env_value: str | None,
    dotenv_value: str,
    expected: str,
) -> None:
    phase.set("NAME", "from-phase")
    (tmp_path / ".env").write_text(f"NAME={dotenv_value}\nONLY_DOTENV=d\n")
    if env_value:
        monkeypatch.setenv("NAME", env_value)
    S = settings_class(phase, {"name": str, "only_dotenv": (str, "default")}, env_file=".env")
    s = S()
    assert s.name == expected  # type: ignore[attr-defined]
    assert s.only_dotenv == "d"  # type: ignore[attr-defined]


def test_init_kwargs_beat_everything_and_defaults_lose(phase: Phase) -> None:
    phase.set("NAME", "from-phase")
    S = settings_class(phase, {"name": str, "other": (str, "dflt")})
    assert S(name="init").name == "init"  # type: ignore[attr-defined]
    assert S().other == "dflt"  # type: ignore[attr-defined]


def test_phase_keys_in_env_file_configure_the_source_and_are_not_fields(
    phase: Phase, tmp_path: Path
) -> None:
    phase.set("NAME", "from-phase")
    (tmp_path / ".env").write_text(
        f"PHASE_SERVICE_TOKEN={phase.token}\nPHASE_HOST={phase.url}\n"
        f"PHASE_APP_ID={phase.app_id}\nPHASE_ENV=development\n"
    )

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(env_file=".env")
        name: str

    assert Settings().name == "from-phase"


def test_each_configuration_path(
    phase: Phase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = phase.fake.add_app("other")
    phase.fake.set_secret(other, "development", "NAME", "other-app")
    phase.fake.set_secret(other, "staging", "NAME", "other-staging")
    phase.set("NAME", "demo-app")

    class FromConfig(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        name: str

    assert FromConfig().name == "demo-app"
    monkeypatch.setenv("PHASE_APP_ID", other)  # the environment beats model_config
    assert FromConfig().name == "other-app"
    monkeypatch.setenv("PHASE_ENV", "STAGING")  # matched case-insensitively by Phase
    assert FromConfig().name == "other-staging"

    class ByArgument(FromConfig):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **kwargs: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (PhaseSettingsSource(settings_cls, app_id=phase.app_id, env="development"),)

    assert ByArgument().name == "demo-app"  # the argument beats the environment


def test_app_id_and_env_from_phase_json_in_a_parent_folder(
    phase: Phase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    phase.set("NAME", "via-phase-json", env="staging")
    (tmp_path / ".phase.json").write_text(
        json.dumps(
            {"version": "2", "phaseApp": "demo", "appId": phase.app_id, "defaultEnv": "Staging"}
        )
    )
    nested = tmp_path / "a" / "b" / "c"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    monkeypatch.setenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", "8")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(phase_token=phase.token, phase_host=phase.url)
        name: str

    assert Settings().name == "via-phase-json"


def test_multi_path_merge_later_folder_wins(phase: Phase, phase_mode: str) -> None:
    phase.set("NAME", "root")
    phase.set("ONLY_ROOT", "r")
    phase.set("NAME", "backend", path="/backend")
    S = settings_class(phase, {"name": str, "only_root": str}, phase_path=["/", "/backend"])
    s = S()
    assert (s.name, s.only_root) == ("backend", "r")  # type: ignore[attr-defined]
    # one request per folder; over E2EE one key reply more, shared by the load's folders
    assert phase.gets() == {"sse": 2, "e2ee": 1 + 2}[phase_mode]


@pytest.mark.parametrize(
    ("setting", "expected"), [("/backend", "backend"), ("/,/backend", "backend"), ("/", "root")]
)
def test_phase_path_environment_forms(
    phase: Phase, monkeypatch: pytest.MonkeyPatch, setting: str, expected: str
) -> None:
    phase.set("NAME", "root")
    phase.set("NAME", "backend", path="/backend")
    monkeypatch.setenv("PHASE_PATH", setting)
    assert settings_class(phase, {"name": str})().name == expected  # type: ignore[attr-defined]


def test_every_folder_with_star_and_conflicting_key_names_both_paths(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    phase.set("ROOT_KEY", "r")
    phase.set("DEEP_KEY", "d", path="/a/b")
    monkeypatch.setenv("PHASE_PATH", "*")
    S = settings_class(phase, {"root_key": str, "deep_key": str})
    s = S()
    assert (s.root_key, s.deep_key) == ("r", "d")  # type: ignore[attr-defined]
    assert phase.fake.requests[-1].query.get("path") is None  # one request, every folder
    phase.set("ROOT_KEY", "other", path="/x")
    from phase_settings import clear_cache

    clear_cache()
    with pytest.raises(PhaseConfigError, match=r"ROOT_KEY.*(/x.*/ |/ .*/x)") as info:
        S()
    assert "other" not in str(info.value)


def test_tags_filter(phase: Phase, phase_mode: str) -> None:
    phase.fake.set_secret(phase.app_id, "development", "TAGGED", "t", tags=("backend",))
    phase.set("UNTAGGED", "u")
    S = settings_class(phase, {"tagged": (str, "-"), "untagged": (str, "-")}, phase_tags="backend")
    s = S()
    assert (s.tagged, s.untagged) == ("t", "-")  # type: ignore[attr-defined]
    sent = phase.fake.requests[-1]  # REST: a query parameter; E2EE: the Tags header
    assert (sent.query if phase_mode == "sse" else sent.headers).get("tags") == "backend"


def test_personal_overrides_apply_for_user_tokens_only(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "localhost")
    as_service = settings_class(phase, {"db_host": str})()
    as_user = settings_class(phase, {"db_host": str}, phase_token=user)()
    no_overrides = settings_class(
        phase, {"db_host": str}, phase_token=user, phase_use_overrides=False
    )()
    assert as_service.db_host == "shared"  # type: ignore[attr-defined]
    assert as_user.db_host == "localhost"  # type: ignore[attr-defined]
    assert no_overrides.db_host == "shared"  # type: ignore[attr-defined]


def test_inactive_override_is_ignored(phase: Phase) -> None:
    phase.set("DB_HOST", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "DB_HOST", "x", active=False)
    assert settings_class(phase, {"db_host": str}, phase_token=user)().db_host == "shared"  # type: ignore[attr-defined]


def test_building_sources_makes_no_request(phase: Phase, phase_mode: str) -> None:
    phase.set("NAME", "n")
    S = settings_class(phase, {"name": str})
    source = PhaseSettingsSource(S)
    assert phase.fake.requests == []
    assert source()["name"] == "n"
    assert phase.gets() == REQUESTS_PER_LOAD[phase_mode]


def test_no_token_means_local_development(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / ".env").write_text("NAME=local\n")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(phase_app_id="x", env_file=".env")
        name: str

    with caplog.at_level(logging.INFO, logger="phase_settings"):
        assert Settings().name == "local"
    assert any("No Phase token" in r.getMessage() for r in caplog.records)
    assert load_status(Settings).source == "none"


def test_required_without_token_names_the_variable() -> None:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(phase_app_id="x", phase_required=True)
        name: str = ""

    with pytest.raises(PhaseConfigError, match="PHASE_SERVICE_TOKEN"):
        Settings()


def test_token_without_app_id_names_every_place_to_set_it(phase: Phase) -> None:
    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(phase_token=phase.token, phase_host=phase.url)
        name: str = ""

    with pytest.raises(PhaseConfigError) as info:
        Settings()
    assert all(s in str(info.value) for s in ("phase_app_id", "PHASE_APP_ID", ".phase.json"))
    assert phase.fake.requests == []


def test_unresolved_reference_warns_with_the_key_only(
    phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("BROKEN", "x-${DOES_NOT_EXIST}-y")
    phase.set("FINE", "${{RAILWAY}}")
    with caplog.at_level(logging.WARNING, logger="phase_settings"):
        s = settings_class(phase, {"broken": str, "fine": str})()
    assert s.broken == "x-${DOES_NOT_EXIST}-y"  # type: ignore[attr-defined]
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and "BROKEN" in messages[0]
    assert "DOES_NOT_EXIST" not in messages[0]


def test_server_resolved_references_arrive_resolved(phase: Phase) -> None:
    phase.set("DB_HOST", "db.internal")
    phase.set("DATABASE_URL", "postgres://${DB_HOST}:5432/app")
    assert settings_class(phase, {"database_url": str})().database_url == (  # type: ignore[attr-defined]
        "postgres://db.internal:5432/app"
    )


def test_missing_field_names_the_phase_key_app_and_env_without_values(phase: Phase) -> None:
    phase.set("OTHER", "sekrit-value-1")
    S = settings_class(phase, {"database_url": str, "other": str}, env_prefix="APP_")
    phase.set("APP_OTHER", "sekrit-value-2")
    with pytest.raises(ValidationError) as info:
        S()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "APP_DATABASE_URL" in notes and phase.app_id in notes and "development" in notes
    assert "sekrit" not in str(info.value) + notes


def test_secret_values_never_appear_in_validation_errors(phase: Phase) -> None:
    phase.set("PORT", "sekrit-not-a-number")
    with pytest.raises(ValidationError) as info:
        settings_class(phase, {"port": int})()
    assert "sekrit" not in str(info.value)
    assert "sekrit" not in repr(info.value)


def test_values_from_the_environment_are_hidden_in_validation_errors_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PhaseSettings defaults to hide_input_in_errors=True: an environment variable that fails
    # validation (a password pasted into the wrong variable, say) is not echoed either.
    monkeypatch.setenv("PORT", "sekrit-not-a-number")

    class Settings(PhaseSettings):
        port: int

    with pytest.raises(ValidationError) as info:
        Settings()
    assert [e["loc"] for e in info.value.errors()] == [("port",)]
    assert "sekrit" not in str(info.value)
    assert "sekrit" not in repr(info.value)


def test_unknown_phase_keys_are_ignored(phase: Phase) -> None:
    phase.set("NAME", "n")
    phase.set("SOMETHING_ELSE", "ignored")
    s = settings_class(phase, {"name": str})()
    assert s.model_dump() == {"name": "n"}


@pytest.mark.parametrize(
    ("make_bad", "error"),
    [
        (lambda p: {"phase_app_id": "00000000-0000-0000-0000-000000000000"}, PhaseNotFoundError),
        (lambda p: {"phase_env": "nope"}, PhaseNotFoundError),
        # REST refuses the token (403); the E2EE API lists no environment it can read
        (lambda p: {"phase_token": p.fake.add_user(envs=())}, (PhaseAuthError, PhaseNotFoundError)),
    ],
)
def test_phase_refusals_raise_and_never_fall_back(
    phase: Phase, tmp_path: Path, make_bad: Any, error: Any, phase_mode: str
) -> None:
    (tmp_path / ".env").write_text("NAME=local\n")
    S = settings_class(phase, {"name": str}, env_file=".env", **make_bad(phase))
    with pytest.raises(error[phase_mode == "e2ee"] if isinstance(error, tuple) else error):
        S()


def test_sse_disabled_app(phase: Phase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE_MODE", "sse")  # REST only (auto mode reads it over E2EE)
    phase.fake.set_sse(phase.app_id, False)
    with pytest.raises(PhaseSSEDisabledError, match="SSE"):
        settings_class(phase, {"name": (str, "")})()


def test_injected_client_is_used(phase: Phase) -> None:
    phase.set("NAME", "through-transport")
    client = PhaseClient(phase.token, host="http://127.0.0.1", transport=phase.fake.transport())

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(extra="ignore")
        name: str

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **kwargs: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                PhaseSettingsSource(
                    settings_cls, app_id=phase.app_id, env="development", client=client
                ),
            )

    assert Settings().name == "through-transport"
    assert "token" not in repr(PhaseSettingsSource(Settings, app_id="a"))
    client.close()


def test_source_repr_shows_what_it_reads_never_the_token(phase: Phase) -> None:
    S = settings_class(phase, {"name": (str, "")})
    text = repr(PhaseSettingsSource(S, app_id="app-1", env="prod", token=phase.token))
    assert "app-1" in text and "prod" in text
    assert phase.token.split(":")[2] not in text


def test_pydantic_settings_surface_the_source_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins what phase-settings reads of pydantic-settings: EnvSettingsSource's public
    configuration attributes, its field pass reading ``self.env_vars``, ``parse_env_vars``, and
    the dotenv source's ``env_file``/``env_file_encoding``/``env_vars``."""
    from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource
    from pydantic_settings.sources.utils import parse_env_vars

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_", env_nested_delimiter="__")
        name: str = ""

    monkeypatch.setenv("APP_NAME", "from-env")
    env = EnvSettingsSource(Settings, case_sensitive=False, env_nested_max_split=2)
    assert (env.env_prefix, env.env_nested_delimiter, env.env_nested_max_split) == (
        "APP_",
        "__",
        2,
    )
    assert {env.case_sensitive, env.env_ignore_empty} == {False}
    assert (env.env_parse_none_str, env.env_parse_enums) == (None, None)
    assert env.env_prefix_target == "variable"
    env.env_vars = parse_env_vars({"APP_NAME": "replaced"}, False, False, None)
    assert env() == {"name": "replaced"}  # the field pass reads env_vars as set
    env.env_vars = {}
    assert env() == {}  # an empty environment fills nothing (the Phase source's shortcut)
    dotenv = DotEnvSettingsSource(Settings, env_file="x.env", env_file_encoding="latin-1")
    assert (dotenv.env_file, dotenv.env_file_encoding, dict(dotenv.env_vars)) == (
        "x.env",
        "latin-1",
        {},
    )


_names = st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,4})?", fullmatch=True).filter(
    lambda n: not n.startswith(("model", "phase", "settings")) and not keyword.iskeyword(n)
)
_env_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        _names,
        st.one_of(
            st.tuples(st.just(str), _env_text),
            st.tuples(st.just(int), st.integers(-(10**6), 10**6).map(str)),
            st.tuples(st.just(bool), st.sampled_from(["true", "false", "1", "0", "yes"])),
            st.tuples(st.just(list[int]), st.lists(st.integers(0, 9), max_size=3).map(json.dumps)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_generated_fields_load_the_same_through_phase_and_env(
    fields_and_values: dict[str, tuple[Any, str]],
) -> None:
    fake = FakePhase()
    app_id = fake.add_app("gen")
    token = fake.add_service_account(envs=None)
    for name, (_, value) in fields_and_values.items():
        fake.set_secret(app_id, "development", name.upper(), value)
    annotations = {name: kind for name, (kind, _) in fields_and_values.items()}
    with fake.serve() as url:
        from_phase = type(
            "FromPhase",
            (PhaseSettings,),
            {
                "__annotations__": annotations,
                "model_config": PhaseSettingsConfigDict(
                    phase_app_id=app_id,
                    phase_env="development",
                    phase_token=token,
                    phase_host=url,
                ),
            },
        )
        phase_values = from_phase().model_dump()
    from_env = type(
        "FromEnv",
        (BaseSettings,),
        {
            "__annotations__": annotations,
            "model_config": SettingsConfigDict(env_nested_delimiter="__"),
        },
    )
    with pytest.MonkeyPatch.context() as mp:
        for name, (_, value) in fields_and_values.items():
            mp.setenv(name.upper(), value)
        assert phase_values == from_env().model_dump()
