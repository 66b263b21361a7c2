"""T5: Phase down at startup, with and without a .env fallback (DESIGN §4).

Only ``PhaseUnavailableError`` falls back (LoadStatus.source == "dotenv", exactly one WARNING
that names the cause and no value); auth, not-found and malformed replies raise the same error
whether or not a .env exists. Every decision comes within the 2 s deadline + 0.5 s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from phase_settings import (
    PhaseAuthError,
    PhaseClient,
    PhaseConnectionError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSettingsSource,
    PhaseUnavailableError,
    load_status,
)
from phase_settings.testing import FakePhase

from .conftest import (
    DEADLINE,
    MARGIN,
    RawServer,
    SendCounter,
    capture_logs,
    closed_port,
    settings_class,
    silent,
    timed,
)

PHASE_VALUE = "value-from-phase-5c1f"
DOTENV_VALUE = "value-from-dotenv-9e2b"
UNKNOWN_TOKEN = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32


@dataclass
class Scenario:
    host: str
    token: str
    app_id: str
    client: PhaseClient | None = None  # injected (the DNS case)
    fake: FakePhase | None = None
    raw: RawServer | None = None


@contextlib.contextmanager
def scenario(name: str) -> Iterator[Scenario]:
    """A Phase that fails in one way; each scenario has its own server (and so cache key)."""
    fake = FakePhase()
    app_id = fake.add_app("demo")
    fake.set_secret(app_id, "development", "DATABASE_URL", PHASE_VALUE)
    token = fake.add_service_account(envs=None)
    if name == "connection refused":
        yield Scenario(f"http://127.0.0.1:{closed_port()}", token, app_id)
    elif name == "accept, never respond":
        with RawServer(silent) as raw:
            yield Scenario(raw.url, token, app_id, raw=raw)
    elif name == "dns failure":

        def no_such_host(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

        with PhaseClient(
            token,
            "https://phase.invalid",
            deadline=DEADLINE,
            transport=httpx.MockTransport(no_such_host),
        ) as client:
            yield Scenario("https://phase.invalid", token, app_id, client=client)
    else:
        with fake.serve() as url:
            if name == "503 forever":
                fake.fail_next(503, times=100)
            elif name == "429 retry-after 52":
                fake.fail_next(429, headers={"Retry-After": "52"}, times=100)
            elif name == "403":
                fake.fail_next(403, body='{"error":"You do not have permission"}', times=100)
            elif name == "malformed 200":
                fake.fail_next(200, body="<html><body>Welcome to nginx!</body></html>", times=100)
            elif name == "404":
                app_id = "00000000-0000-4000-8000-000000000000"  # the server: app not found
            elif name == "401":
                token = UNKNOWN_TOKEN
            yield Scenario(url, token, app_id, fake=fake)


# scenario -> (error without fallback, falls back with .env, requests the client sends)
TABLE: dict[str, tuple[type[PhaseError], bool, int | None]] = {
    "connection refused": (PhaseConnectionError, True, 3),
    "accept, never respond": (PhaseConnectionError, True, 1),
    "503 forever": (PhaseServerError, True, 3),
    "429 retry-after 52": (PhaseRateLimitError, True, 1),
    "401": (PhaseAuthError, False, 1),
    "403": (PhaseAuthError, False, 1),
    "404": (PhaseNotFoundError, False, 1),
    "malformed 200": (PhaseResponseError, False, 1),
    "dns failure": (PhaseConnectionError, True, 3),
}


@pytest.mark.parametrize("with_dotenv", [False, True], ids=["no-fallback", "dotenv"])
@pytest.mark.parametrize("name", list(TABLE))
def test_startup_with_phase_down(
    name: str, with_dotenv: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    error_type, falls_back, requests = TABLE[name]
    sent = SendCounter(monkeypatch)
    config: dict[str, Any] = {}
    if with_dotenv:
        (tmp_path / ".env").write_text(f"DATABASE_URL={DOTENV_VALUE}\n")
        config["env_file"] = ".env"
    with scenario(name) as s:
        sources = None
        if s.client is not None:
            client = s.client

            def sources(
                cls: Any,
                settings_cls: Any,
                init_settings: Any,
                env_settings: Any,
                dotenv_settings: Any,
                file_secret_settings: Any,
            ) -> tuple[Any, ...]:
                phase = PhaseSettingsSource(settings_cls, client=client)
                return (init_settings, env_settings, phase, dotenv_settings)

        Settings = settings_class(
            None,
            {"database_url": str},
            sources=sources,
            phase_token=s.token,
            phase_host=s.host,
            phase_app_id=s.app_id,
            phase_env="development",
            **config,
        )
        with capture_logs(logging.DEBUG) as logs:
            settings, error, elapsed = timed(Settings)
        server_requests = len(s.fake.requests) if s.fake is not None else None
        connections = s.raw.connections if s.raw is not None else None

    assert elapsed <= DEADLINE + MARGIN, f"{name}: decision after {elapsed:.2f} s"
    status = load_status(Settings)
    warnings = logs.warnings()
    for record in warnings:
        message = record.getMessage()
        assert PHASE_VALUE not in message and DOTENV_VALUE not in message
        assert s.token.split(":")[2] not in message
    if with_dotenv and falls_back:
        assert error is None, error
        assert settings.database_url == DOTENV_VALUE
        assert status.source == "dotenv" and status.fetched_at is None
        assert status.stale_since is not None
        assert status.last_error is not None
        assert status.last_error.startswith(error_type.__name__)
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert error_type.__name__ in warnings[0].getMessage()
        outcome = "fallback to .env"
    else:
        assert isinstance(error, error_type), repr(error)
        assert isinstance(error, PhaseUnavailableError) == falls_back
        assert warnings == []
        assert status.source == "none" and status.last_error is not None
        outcome = type(error).__name__
    if requests is not None:
        assert sent.count == requests, (sent.count, requests)
    if server_requests is not None:
        assert server_requests == sent.count
    if connections is not None:
        assert connections == sent.count
    print(
        f"[T5] {name:22} {'with .env' if with_dotenv else 'no .env':9} -> {outcome:22} "
        f"requests={sent.count} decision={elapsed * 1000:.0f} ms"
    )
