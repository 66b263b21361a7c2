"""Shared fixtures: every test starts with an empty cache, no PHASE_* variables, and a fresh
working directory (no stray .env or .phase.json)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

import phase_settings
from phase_settings.testing import FakePhase

# CI replays nothing from a local example database and draws the same examples on every run, so
# a run's outcome depends on the commit alone; locally, examples are random and failures replay.
hypothesis_settings.register_profile("ci", database=None, derandomize=True, print_blob=True)
hypothesis_settings.register_profile("random", database=None)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PHASE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", "0")
    monkeypatch.chdir(tmp_path)
    phase_settings.clear_cache()
    yield
    phase_settings.clear_cache()


@dataclass
class Phase:
    """A serving fake with one app: what most tests need."""

    fake: FakePhase
    url: str
    app_id: str
    token: str

    def set(self, key: str, value: str, *, env: str = "development", path: str = "/") -> None:
        self.fake.set_secret(self.app_id, env, key, value, path=path)

    def gets(self) -> int:
        return sum(1 for r in self.fake.requests if r.method == "GET")

    def config(self, **extra: object) -> dict[str, object]:
        """``model_config`` keys pointing at this fake."""
        return {
            "phase_app_id": self.app_id,
            "phase_env": "development",
            "phase_token": self.token,
            "phase_host": self.url,
            **extra,
        }


@pytest.fixture
def phase() -> Iterator[Phase]:
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield Phase(fake, url, app_id, token)
