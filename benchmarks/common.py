"""Shared workload of the benchmarks: a 200-field Settings class and an environment of 200
secrets served by the loopback fake Phase server. Every figure is a ratio against a baseline
measured in the same run, so the machine's speed cancels out."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from phase_settings import PhaseSettings, PhaseSettingsConfigDict
from phase_settings.testing import FakePhase

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


def phase_settings_class(n: int = 200, **config: Any) -> type[PhaseSettings]:
    """A PhaseSettings class with ``n`` fields of mixed types."""
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


def serve_fake(n: int = 200, value_bytes: int | None = None) -> tuple[FakePhase, str, str]:
    """A fake with one app holding ``n`` secrets; returns (fake, app_id, token)."""
    fake = FakePhase()
    app_id = fake.add_app("bench")
    token = fake.add_service_account(envs=None)
    for key, value in secrets(n).items():
        if value_bytes is not None:
            value = (
                (value + "y" * value_bytes)[:value_bytes]
                if field_kind(int(key[6:])) in ("str", "secret")
                else value
            )
        fake.set_secret(app_id, "development", key, value)
    return fake, app_id, token


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def verdict(name: str, value: float, target: float, unit: str = "", lower: bool = True) -> bool:
    ok = value <= target if lower else value >= target
    sign = "<=" if lower else ">="
    print(
        f"{name:<44} {value:>9.3f}{unit}  (target {sign} {target:g}{unit})  "
        f"{'PASS' if ok else 'FAIL'}",
        flush=True,
    )
    return ok
