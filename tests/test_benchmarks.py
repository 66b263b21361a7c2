"""The benchmarks compare like with like: their workload loads the same values both ways."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import common


def test_phase_and_env_sides_of_the_benchmark_load_identical_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, app_id, token = common.serve_fake(200)
    with fake.serve() as url:
        Settings = common.phase_settings_class(
            phase_app_id=app_id, phase_env="development", phase_token=token, phase_host=url
        )
        from_phase = Settings()
        assert [r.method for r in fake.requests] == ["GET"]  # 200 mixed fields, one request
    for key, value in common.secrets(200).items():
        monkeypatch.setenv(key, value)
    from_env = common.env_settings_class()()
    assert from_phase.model_dump() == from_env.model_dump()
    assert len(from_phase.model_dump()) == 200
    kinds = {type(v).__name__ for v in from_phase.model_dump().values()}
    assert kinds == {"str", "int", "bool", "SecretStr", "list"}


def test_scale_workload_pads_values_to_the_requested_size() -> None:
    fake, app_id, _ = common.serve_fake(10, value_bytes=1024)
    sizes = {
        len(fake.get_secret(app_id, "development", f"FIELD_{i:03d}")["value"])  # type: ignore[index]
        for i in range(10)
        if common.field_kind(i) in ("str", "secret")
    }
    assert sizes == {1024}
