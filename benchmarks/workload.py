"""The benchmarks' workload: a settings class of 200 mixed fields and the 200 secrets that fill
it. Imports nothing from phase-settings at module level, so a child process measuring the
environment-variable baseline pays for none of the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr

OUT = Path(__file__).resolve().parent / "out"
KINDS = ("str", "int", "bool", "secret", "list")


def field_kind(i: int) -> str:
    return KINDS[i % len(KINDS)]


def value_for(i: int) -> str:
    kind = field_kind(i)
    if kind == "int":
        return str(1000 + i)
    if kind == "bool":
        return "true" if i % 2 else "false"
    if kind == "list":
        return json.dumps([f"host-{i}.example.com", f"alt-{i}.example.com"])
    return f"value-{i}-" + "x" * 40


def secrets(n: int = 200) -> dict[str, str]:
    return {f"FIELD_{i:03d}": value_for(i) for i in range(n)}


_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "bool": bool,
    "secret": SecretStr,
    "list": list[str],
}


def annotations(n: int = 200) -> dict[str, Any]:
    return {f"field_{i:03d}": _TYPES[field_kind(i)] for i in range(n)}


def phase_settings_class(n: int = 200, **config: Any) -> type[Any]:
    """A PhaseSettings class with ``n`` fields of mixed types."""
    from phase_settings import PhaseSettings, PhaseSettingsConfigDict

    return type(
        "BenchSettings",
        (PhaseSettings,),
        {"__annotations__": annotations(n), "model_config": PhaseSettingsConfigDict(**config)},
    )


def env_settings_class(n: int = 200) -> type[Any]:
    """The same fields on plain BaseSettings, loaded from environment variables (the floor)."""
    from pydantic_settings import BaseSettings, SettingsConfigDict

    return type(
        "EnvSettings",
        (BaseSettings,),
        {
            "__annotations__": annotations(n),
            "model_config": SettingsConfigDict(env_nested_delimiter="__"),
        },
    )
