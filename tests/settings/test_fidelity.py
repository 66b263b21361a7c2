"""PhaseSettings changes nothing but adding Phase: the four differences once found, each in both
directions (values through Phase, and plain environment variables in a PhaseSettings class
without a token), compared with a plain BaseSettings of the same configuration."""

from __future__ import annotations

import gc
import json
import logging
import weakref
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from phase_settings import (
    LiveSettings,
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    PhaseSettingsSource,
    clear_cache,
    load_status,
)

from ..conftest import Phase


class Sub(BaseModel):
    x: str = ""
    y: str = ""


def build(base: type[BaseSettings], fields: dict[str, Any], **config: Any) -> type[BaseSettings]:
    namespace: dict[str, Any] = {"__annotations__": {}}
    for name, spec in fields.items():
        annotation, *default = spec if isinstance(spec, tuple) else (spec,)
        namespace["__annotations__"][name] = annotation
        if default:
            namespace[name] = default[0]
    namespace["model_config"] = SettingsConfigDict(**config)  # type: ignore[typeddict-item]
    return type("Settings", (base,), namespace)


def through_phase(phase: Phase, pairs: dict[str, str], fields: dict[str, Any], **kw: Any) -> Any:
    for key, value in pairs.items():
        phase.set(key, value)
    return build(PhaseSettings, fields, **phase.config())(**kw)


def through_env(
    monkeypatch: pytest.MonkeyPatch, pairs: dict[str, str], fields: dict[str, Any], **kw: Any
) -> tuple[Any, Any]:
    """(a PhaseSettings without a token, a plain BaseSettings) loaded from env vars."""
    for key, value in pairs.items():
        monkeypatch.setenv(key, value)
    plain = build(BaseSettings, fields, env_nested_delimiter="__")(**kw)
    return build(PhaseSettings, fields)(**kw), plain


# --- 1. a field whose name ends in "_" keeps its nested values -------------------------------

KEYWORD_FIELDS: dict[str, Any] = {"from_": (Sub, Sub()), "class_": (Sub, Sub()), "name": (str, "")}
KEYWORD_PAIRS = {"FROM___X": "1", "CLASS___Y": "2", "NAME": "n"}
KEYWORD_EXPECTED = {"from_": {"x": "1", "y": ""}, "class_": {"x": "", "y": "2"}, "name": "n"}


def test_trailing_underscore_field_keeps_nested_values_through_phase(phase: Phase) -> None:
    loaded = through_phase(phase, KEYWORD_PAIRS, KEYWORD_FIELDS)
    assert loaded.model_dump() == KEYWORD_EXPECTED


def test_trailing_underscore_field_keeps_nested_values_from_env_vars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours, plain = through_env(monkeypatch, KEYWORD_PAIRS, KEYWORD_FIELDS)
    assert ours.model_dump() == plain.model_dump() == KEYWORD_EXPECTED


# --- 2. init kwargs reach Phase exactly as they reach env vars ---------------------------------


class Color(Enum):
    RED = 1
    BLUE = 2


INIT_KWARG_CASES: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any]]] = [
    ("_env_prefix", {"_env_prefix": "APP_"}, {"APP_NAME": "a", "NAME": "b"}, {"name": (str, "-")}),
    ("_case_sensitive", {"_case_sensitive": True}, {"NAME": "upper"}, {"name": (str, "-")}),
    (
        "_env_nested_delimiter",
        {"_env_nested_delimiter": "--"},
        {"SUB--X": "1", "SUB__Y": "2"},
        {"sub": (Sub, Sub())},
    ),
    (
        "_env_nested_max_split",
        {"_env_nested_max_split": 1},
        {"SUB__X": "1", "SUB__Y__Z": "2"},
        {"sub": (dict[str, Any], {})},
    ),
    (
        "_env_parse_none_str",
        {"_env_parse_none_str": "null"},
        {"LIMIT": "null"},
        {"limit": (int | None, 5)},
    ),
    (
        "_env_parse_enums",
        {"_env_parse_enums": True},
        {"COLOR": "BLUE"},
        {"color": (Color, Color.RED)},
    ),
    ("_env_ignore_empty", {"_env_ignore_empty": True}, {"NAME": ""}, {"name": (str, "dflt")}),
]


@pytest.mark.parametrize(
    ("kwarg", "kwargs", "pairs", "fields"), INIT_KWARG_CASES, ids=[c[0] for c in INIT_KWARG_CASES]
)
def test_init_kwargs_shape_phase_keys_as_they_shape_env_vars(
    phase: Phase,
    monkeypatch: pytest.MonkeyPatch,
    kwarg: str,
    kwargs: dict[str, Any],
    pairs: dict[str, str],
    fields: dict[str, Any],
) -> None:
    from_phase = through_phase(phase, pairs, fields, **kwargs)
    ours, plain = through_env(monkeypatch, pairs, fields, **kwargs)
    assert from_phase.model_dump() == plain.model_dump() == ours.model_dump()
    try:  # the kwarg makes a difference: without it the same keys load otherwise, or fail
        without_kwarg = build(BaseSettings, fields, env_nested_delimiter="__")().model_dump()
    except ValidationError:
        without_kwarg = None
    assert plain.model_dump() != without_kwarg


def test_env_file_kwarg_decides_where_phase_keys_are_read(phase: Phase, tmp_path: Path) -> None:
    phase.set("NAME", "from-phase")
    (tmp_path / "prod.env").write_text(
        f"PHASE_SERVICE_TOKEN={phase.token}\nPHASE_HOST={phase.url}\n"
        f"PHASE_APP_ID={phase.app_id}\nPHASE_ENV=development\nOTHER=from-file\n",
        encoding="utf-16",
    )
    Settings = build(PhaseSettings, {"name": (str, "-"), "other": (str, "-")})
    loaded = Settings(_env_file="prod.env", _env_file_encoding="utf-16")
    assert (loaded.name, loaded.other) == ("from-phase", "from-file")  # type: ignore[attr-defined]
    assert load_status(Settings).source == "phase"


def test_phase_keys_are_never_prefixed(phase: Phase, tmp_path: Path) -> None:
    phase.set("APP_NAME", "from-phase")
    (tmp_path / ".env").write_text(
        f"PHASE_SERVICE_TOKEN={phase.token}\nPHASE_HOST={phase.url}\nPHASE_APP_ID={phase.app_id}\n"
        "PHASE_ENV=development\n"
    )
    Settings = build(PhaseSettings, {"name": (str, "-")}, env_file=".env")
    assert Settings(_env_prefix="APP_").name == "from-phase"  # type: ignore[attr-defined]


def test_env_file_kwarg_without_phase_keys_reads_fields_as_plain_settings(
    tmp_path: Path,
) -> None:
    (tmp_path / "prod.env").write_text("NAME=from-file\nPHASE_ENV=staging\n")
    ours = build(PhaseSettings, {"name": (str, "-")})(_env_file="prod.env")
    plain = build(BaseSettings, {"name": (str, "-")}, extra="ignore")(_env_file="prod.env")
    assert ours.model_dump() == plain.model_dump() == {"name": "from-file"}


# --- 3. the env, dotenv and secrets sources are pydantic-settings' own -------------------------


def test_sources_are_pydantic_settings_own_under_their_own_names(phase: Phase) -> None:
    seen: list[str] = []

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        name: str = ""

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], *args: Any, **kwargs: Any
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources = super().settings_customise_sources(settings_cls, *args, **kwargs)
            seen.extend(type(s).__qualname__ for s in sources)
            return sources

    Settings()
    assert seen == [
        "InitSettingsSource",
        "EnvSettingsSource",
        "PhaseSettingsSource",
        "DotEnvSettingsSource",
        "SecretsSettingsSource",
    ]


def test_env_var_decode_error_names_envsettingssource(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITEMS", "[not json")
    fields = {"items": (list[int], [])}
    with pytest.raises(SettingsError) as ours:
        build(PhaseSettings, fields)()
    with pytest.raises(SettingsError) as plain:
        build(BaseSettings, fields)()
    assert str(ours.value) == str(plain.value)
    assert 'from source "EnvSettingsSource"' in str(ours.value)


def test_phase_decode_error_names_phasesettingssource(phase: Phase) -> None:
    phase.set("ITEMS", "[not json")
    with pytest.raises(SettingsError) as info:
        build(PhaseSettings, {"items": (list[int], [])}, **phase.config())()
    assert (
        str(info.value) == 'error parsing value for field "items" from source "PhaseSettingsSource"'
    )


def test_debug_output_names_the_stock_sources(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PYDANTIC_SETTINGS_DEBUG", "1")
    monkeypatch.setenv("NAME", "n")
    with caplog.at_level(logging.DEBUG, logger="pydantic_settings"):
        build(PhaseSettings, {"name": (str, "-")})()
    text = caplog.text
    assert "EnvSettingsSource" in text and "_FastEnv" not in text


# --- 4. a loaded class is garbage-collectable --------------------------------------------------


def _collected(make: Any) -> bool:
    ref = make()
    for _ in range(3):
        gc.collect()
    return ref() is None


def test_a_class_loaded_through_phase_is_collected(phase: Phase) -> None:
    phase.set("NAME", "n")

    def make() -> weakref.ref[type]:
        Settings = build(PhaseSettings, {"name": str}, **phase.config())
        assert Settings().name == "n"  # type: ignore[attr-defined]
        assert load_status(Settings).source == "phase"
        return weakref.ref(Settings)

    assert _collected(make)


def test_a_class_loaded_from_env_vars_is_collected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAME", "n")

    def make() -> weakref.ref[type]:
        Settings = build(PhaseSettings, {"name": str})
        Settings.settings_cached()
        Settings.settings_clear_cache()
        return weakref.ref(Settings)

    assert _collected(make)


def test_a_reload_shares_no_mutable_value_with_an_earlier_instance(phase: Phase) -> None:
    phase.set("DATA", json.dumps({"hosts": ["a"], "limits": {"n": 1}}))
    Settings = build(PhaseSettings, {"data": dict[str, Any]}, **phase.config())
    for _ in range(3):  # every load, the first and those reusing its decoded values
        loaded = Settings()
        assert loaded.data == {"hosts": ["a"], "limits": {"n": 1}}  # type: ignore[attr-defined]
        loaded.data["hosts"].append("mutated")  # type: ignore[attr-defined]
        loaded.data["limits"]["n"] = 2  # type: ignore[attr-defined]
    assert phase.gets() == 1
    phase.set("DATA", json.dumps({"hosts": ["b"]}))
    clear_cache()
    assert Settings().data == {"hosts": ["b"]}  # type: ignore[attr-defined]


# --- secret values never in a ValidationError's data ------------------------------------------

SECRET = "sekrit-not-a-number-7f3a"


def test_phase_values_are_masked_in_errors_and_json_with_the_same_types_and_messages(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {"port": int, "hosts": list[int], "sub": Sub, "name": str}
    pairs = {"PORT": SECRET, "HOSTS": json.dumps([1, SECRET]), "SUB": json.dumps({"x": 5})}
    with pytest.raises(ValidationError) as from_phase:
        through_phase(phase, pairs, fields)
    with pytest.raises(ValidationError) as from_env:
        through_env(monkeypatch, pairs, fields)
    masked, plain = from_phase.value, from_env.value
    assert [(e["type"], e["loc"], e["msg"]) for e in masked.errors()] == [
        (e["type"], e["loc"], e["msg"]) for e in plain.errors()
    ]
    assert SECRET in repr(plain.errors())  # what pydantic shows without masking
    for text in (str(masked), repr(masked.errors()), masked.json(), repr(masked)):
        assert SECRET not in text
    assert masked.errors()[0]["input"] == "**********"


def test_a_validator_message_holding_the_value_is_masked_too(phase: Phase) -> None:
    from pydantic import field_validator

    phase.set("NAME", SECRET)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        name: str

        @field_validator("name")
        @classmethod
        def check(cls, value: str) -> str:
            raise ValueError(f"{value} is not allowed")

    with pytest.raises(ValidationError) as info:
        Settings()
    [error] = info.value.errors()
    assert (error["type"], error["loc"]) == ("value_error", ("name",))
    assert error["msg"] == "Value error, ********** is not allowed"
    assert SECRET not in info.value.json() + repr(info.value.errors())


# --- LiveSettings.status describes the handle's own instance ----------------------------------


def test_live_status_ignores_a_fallback_of_the_class_elsewhere(
    phase: Phase, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("API_KEY=from-dotenv\n")
    phase.set("API_KEY", "from-phase")
    Settings = build(
        PhaseSettings,
        {"api_key": SecretStr},
        env_file=".env",
        phase_deadline=1.0,
        phase_max_attempts=1,
        **phase.config(),
    )
    live = LiveSettings(Settings)
    assert live.status.source == "phase"
    clear_cache()  # no last good values: the next load elsewhere falls back to .env
    phase.fake.fail_next(503, times=5)
    assert Settings().api_key.get_secret_value() == "from-dotenv"  # type: ignore[attr-defined]
    assert load_status(Settings).source == "dotenv"
    assert live.current.api_key.get_secret_value() == "from-phase"  # type: ignore[attr-defined]
    assert live.status.source == "phase" and live.status.last_error is None


def test_live_status_follows_its_own_refresh_not_later_loads_elsewhere(
    phase: Phase, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("API_KEY=from-dotenv\n")
    phase.set("API_KEY", "from-phase")
    Settings = build(
        PhaseSettings,
        {"api_key": SecretStr},
        env_file=".env",
        phase_deadline=1.0,
        phase_max_attempts=1,
        phase_cache_ttl=0,
        **phase.config(),
    )
    phase.fake.fail_next(503, times=1)
    live = LiveSettings(Settings)  # built during an outage: from .env
    assert live.status.source == "dotenv"
    clear_cache()  # ends the outage backoff: the next load elsewhere asks Phase
    assert Settings().api_key.get_secret_value() == "from-phase"  # type: ignore[attr-defined]
    assert load_status(Settings).source == "phase"
    assert live.status.source == "dotenv"  # its instance still holds the .env values
    phase.fake.fail_next(503, times=1)
    with pytest.raises(PhaseServerError):
        live.refresh()
    assert live.status.source == "dotenv" and "PhaseServerError" in str(live.status.last_error)
    assert live.refresh() == frozenset({"api_key"})
    assert live.status.source == "phase" and live.status.stale_since is None


# --- the public members the command line builds on --------------------------------------------


def test_source_result_and_with_overrides(phase: Phase) -> None:
    phase.set("NAME", "root")
    phase.set("NAME", "backend", path="/backend")
    Settings = build(PhaseSettings, {"name": str}, **phase.config())
    source = PhaseSettingsSource(Settings)
    assert source.result is None
    assert source() == {"name": "root"}
    assert source.result is not None
    assert source.result.values == {"NAME": "root"} and source.result.origins == {"NAME": "/"}
    assert source.result.status.source == "phase"
    assert "root" not in repr(source.result)
    other = source.with_overrides(path="/backend")
    assert type(other) is PhaseSettingsSource and other is not source
    assert other() == {"name": "backend"}
    assert other.result is not None and other.result.origins == {"NAME": "/backend"}
    assert source() == {"name": "root"}  # the original is unchanged
    with pytest.raises(TypeError):
        source.with_overrides(no_such_argument=1)
