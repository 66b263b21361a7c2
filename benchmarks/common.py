"""Shared helpers of the benchmarks (the parent process): the loopback fake and timing. Every
figure is a ratio against a baseline measured in the same run, so the machine's speed cancels
out."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from workload import (
    OUT,
    annotations,
    env_settings_class,
    field_kind,
    phase_settings_class,
    secrets,
    value_for,
)

from phase_settings.testing import FakePhase

__all__ = [
    "OUT",
    "annotations",
    "env_settings_class",
    "field_kind",
    "median",
    "phase_settings_class",
    "secrets",
    "serve_fake",
    "timed",
    "value_for",
    "verdict",
]


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
