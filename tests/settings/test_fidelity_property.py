"""The equivalence property: one key/value mapping loaded through Phase (the loopback fake) and
through environment variables gives the same model, or the same error type and location, for
generated model configurations and fields.

Keys are what Phase can store (``[A-Z0-9_]+``: Phase upper-cases keys) and values hold no
``${`` (Phase resolves references).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AliasChoices, BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, ForceDecode, NoDecode, SettingsError
from typing_extensions import TypedDict

from phase_settings import PhaseSettings, clear_cache
from phase_settings.testing import FakePhase


class Sub(BaseModel):
    x: int = 0
    y: str = ""


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int = 0
    y: int = 0


class Limits(TypedDict):
    low: int
    high: int


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12).filter(
    lambda v: "${" not in v
)
_json_int = st.integers(-5, 5).map(str)


def _json(values: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return values.map(json.dumps)


# name -> (annotation, default or a Field, the key suffixes it may be read from, values)
FIELDS: dict[str, tuple[Any, Any, list[str], st.SearchStrategy[str]]] = {
    "fid_text": (str, "-", ["FID_TEXT"], _text),
    "fid_count": (int, 0, ["FID_COUNT"], st.one_of(_json_int, _text)),
    "from_": (
        Sub,
        Sub(),
        ["FROM_", "FROM___X", "FROM___Y", "FROM__X"],
        st.one_of(_json_int, _json(st.fixed_dictionaries({"x": st.integers(0, 3)})), _text),
    ),
    "fid_sub": (
        Sub,
        Sub(),
        ["FID_SUB", "FID_SUB__X", "FID_SUB_X", "FID_SUB__Y"],
        st.one_of(_json_int, _json(st.fixed_dictionaries({"y": st.text("ab", max_size=3)})), _text),
    ),
    "fid_items": (
        list[int],
        [],
        ["FID_ITEMS"],
        st.one_of(_json(st.lists(st.integers(0, 9), max_size=3)), _text),
    ),
    "fid_map": (
        dict[str, Any],
        {},
        ["FID_MAP", "FID_MAP__A", "FID_MAP__A__B", "FID_MAP_A"],
        st.one_of(
            _json(st.dictionaries(st.sampled_from("ab"), st.integers(0, 3))), _json_int, _text
        ),
    ),
    "fid_color": (
        Color,
        Color.RED,
        ["FID_COLOR"],
        st.sampled_from(["red", "blue", "RED", "BLUE", "green", ""]),
    ),
    "fid_maybe": (int | None, None, ["FID_MAYBE"], st.sampled_from(["null", "None", "3", "", "x"])),
    "fid_either": (
        int | list[int],
        0,
        ["FID_EITHER"],
        st.one_of(_json_int, _json(st.lists(st.integers(0, 3), max_size=2)), _text),
    ),
    "fid_alias": (
        str,
        Field("-", validation_alias="ALIAS_NAME"),
        ["ALIAS_NAME", "FID_ALIAS"],
        _text,
    ),
    "fid_choice": (
        str,
        Field("-", validation_alias=AliasChoices("FIRST_KEY", "SECOND_KEY")),
        ["FIRST_KEY", "SECOND_KEY"],
        _text,
    ),
    "fid_raw": (
        Annotated[list[str], NoDecode],
        [],
        ["FID_RAW"],
        st.one_of(_json(st.lists(st.text("ab", max_size=2), max_size=2)), _text),
    ),
    "fid_forced": (
        Annotated[list[int], ForceDecode],
        [],
        ["FID_FORCED"],
        st.one_of(_json(st.lists(st.integers(0, 3), max_size=2)), _text),
    ),
    "fid_point": (
        Point,
        Point(),
        ["FID_POINT", "FID_POINT__X"],
        st.one_of(_json(st.fixed_dictionaries({"x": st.integers(0, 3)})), _json_int, _text),
    ),
    "fid_limits": (
        Limits | None,
        None,
        ["FID_LIMITS", "FID_LIMITS__LOW"],
        st.one_of(
            _json(st.fixed_dictionaries({"low": st.integers(0, 3), "high": st.integers(0, 3)})),
            _json_int,
            _text,
        ),
    ),
}

CONFIGS = st.fixed_dictionaries(
    {
        "env_prefix": st.sampled_from(["", "APP_", "app_"]),
        "case_sensitive": st.booleans(),
        "env_nested_delimiter": st.sampled_from([None, "__", "_"]),
        "env_nested_max_split": st.sampled_from([None, 1, 2]),
        "env_parse_none_str": st.sampled_from([None, "null", "None"]),
        "env_ignore_empty": st.booleans(),
        "env_parse_enums": st.sampled_from([None, True, False]),
    }
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    config = draw(CONFIGS)
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4, unique=True))
    prefix = config["env_prefix"].upper()
    pairs: dict[str, str] = {}
    for name in names:
        _, _, suffixes, values = FIELDS[name]
        for suffix in draw(st.lists(st.sampled_from(suffixes), min_size=1, max_size=2)):
            aliased = name in ("fid_alias", "fid_choice") and not suffix.startswith("FID_")
            key = suffix if aliased else draw(st.sampled_from([prefix, ""])) + suffix
            pairs[key] = draw(values)
    return config, names, pairs


def model(base: type[BaseSettings], names: list[str], config: dict[str, Any]) -> type[Any]:
    namespace: dict[str, Any] = {"__annotations__": {}, "model_config": config}
    for name in names:
        annotation, default, _, _ = FIELDS[name]
        namespace["__annotations__"][name] = annotation
        namespace[name] = default
    return type("Generated", (base,), namespace)


def outcome(make: Any) -> tuple[str, Any]:
    try:
        return "ok", make().model_dump()
    except ValidationError as exc:
        return "invalid", [(e["type"], e["loc"]) for e in exc.errors()]
    except SettingsError as exc:
        return "undecodable", str(exc).replace("PhaseSettingsSource", "EnvSettingsSource")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakePhase, str, str]]:
    fake = FakePhase()
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield fake, url, token


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cases())
def test_phase_and_env_vars_load_the_same(
    server: tuple[FakePhase, str, str], case: tuple[dict[str, Any], list[str], dict[str, str]]
) -> None:
    fake, url, token = server
    config, names, pairs = case
    config = {**config, "hide_input_in_errors": True}
    app_id = fake.add_app(f"gen-{uuid.uuid4().hex[:8]}")
    for key, value in pairs.items():
        fake.set_secret(app_id, "development", key, value)
    clear_cache()
    phase_config = {
        **config,
        "phase_app_id": app_id,
        "phase_env": "development",
        "phase_token": token,
        "phase_host": url,
        "phase_cache_ttl": 0,
    }
    from_phase = model(PhaseSettings, names, phase_config)
    through_phase = outcome(from_phase)
    assert outcome(from_phase) == through_phase  # loaded again: the same (the reuse is exact)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in pairs.items():
            mp.setenv(key, value)
        through_env = outcome(model(BaseSettings, names, config))
        without_token = outcome(model(PhaseSettings, names, config))
    assert through_phase == through_env
    assert without_token == through_env
