"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from phase_settings import PhaseClient, load_status
from phase_settings.testing import FakePhase

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(containing: str) -> Any:
    """The README's code block holding ``containing``, compiled as a user's module would be
    (without this file's ``from __future__ import annotations``)."""
    [found] = [b for b in BLOCKS if containing in b]
    return compile(found, "README.md", "exec", dont_inherit=True)


def test_quickstart_runs_on_env_vars_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://local")
    monkeypatch.setenv("STRIPE_KEY", "sk_local")
    namespace: dict[str, Any] = {}
    exec(block("settings = Settings()"), namespace)
    settings = namespace["settings"]
    assert settings.database_url == "postgres://local"
    assert settings.max_connections == 10 and settings.allowed_hosts == []
    assert load_status(namespace["Settings"]).source == "none"


def test_testing_example_passes_against_the_fixture(
    fake_phase: FakePhase, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace: dict[str, Any] = {}
    monkeypatch.setenv("DATABASE_URL", "postgres://local")
    monkeypatch.setenv("STRIPE_KEY", "sk_test")  # the example's fake holds DATABASE_URL only
    exec(block("settings = Settings()"), namespace)  # the quickstart's Settings class
    monkeypatch.delenv("DATABASE_URL")  # an environment variable would beat Phase
    exec(block("def test_settings(fake_phase, monkeypatch)"), namespace)
    namespace["test_settings"](fake_phase, monkeypatch)
    assert any(r.path.endswith("/v1/secrets/") for r in fake_phase.requests)


def test_client_example(fake_phase: FakePhase, monkeypatch: pytest.MonkeyPatch) -> None:
    app_id = fake_phase.add_app("demo")
    fake_phase.set_secret(app_id, "production", "EXISTING", "v", path="/deep")
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", fake_phase.add_service_account(envs=None))
    monkeypatch.setenv("PHASE_HOST", fake_phase.url)
    exec(block("with PhaseClient() as phase:"), {"PhaseClient": PhaseClient, "app_id": app_id})
    assert fake_phase.get_secret(app_id, "production", "NEW") is not None
