"""T11: transport policy. Plain http is refused off loopback before any socket exists; redirects
are errors and their targets see nothing; ``.netrc`` and proxy variables change nothing on
loopback; a self-signed certificate fails with ``PhaseTLSError`` (one connection, no retry, no
fallback) and passes with the CA bundle given as ``verify_ssl`` / ``phase_verify_ssl``.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phase_settings import (
    PhaseClient,
    PhaseConfigError,
    PhaseResponseError,
    PhaseTLSError,
    load_status,
)

from ..conftest import Phase
from .conftest import (
    DEADLINE,
    MARGIN,
    RawServer,
    http_response,
    make_self_signed,
    secrets_json,
    send,
    settings_class,
    timed,
)

REFUSED_HOSTS = [
    "http://phase.example",
    "http://phase.example:8080/service/public",
    "HTTP://PHASE.EXAMPLE",
    " http://phase.example/ ",
    "http://10.0.0.1",
    "http://192.168.1.10:8000",
    "http://0.0.0.0:8000",
    "http://2130706433",  # 127.0.0.1 as one number: not recognised, so refused
    "http://127.0.0.1.nip.io",
    "http://localhost.phase.example",
    "http://127.0.0.1@phase.example",
    "http://phase.example#@127.0.0.1",
    "http://phase.example?@127.0.0.1",
    "http://user:pass@127.0.0.1",
    "ftp://127.0.0.1",
    "phase.example",
]


class SocketSpy:
    """Counts every attempt to resolve a name or open a socket connection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for owner, name in [
            (socket, "create_connection"),
            (socket, "getaddrinfo"),
            (socket.socket, "connect"),
            (socket.socket, "connect_ex"),
        ]:
            monkeypatch.setattr(owner, name, self._spy(name))

    def _spy(self, name: str) -> Any:
        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            raise AssertionError(f"socket operation {name} attempted")

        return spy


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_plain_http_off_loopback_is_refused_before_any_socket(
    host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
    (tmp_path / ".env").write_text("DATABASE_URL=from-dotenv\n")
    spy = SocketSpy(monkeypatch)
    with pytest.raises(PhaseConfigError) as info:
        PhaseClient(token, host)
    assert "ab" * 32 not in str(info.value)
    Settings = settings_class(
        None,
        {"database_url": str},
        phase_token=token,
        phase_host=host,
        phase_app_id="app",
        env_file=".env",  # a configuration error never falls back
    )
    with pytest.raises(PhaseConfigError):
        Settings()
    monkeypatch.setenv("PHASE_HOST", host)
    with pytest.raises(PhaseConfigError):
        PhaseClient(token)
    assert spy.calls == []


def test_plain_http_to_loopback_works(phase: Phase) -> None:
    phase.set("DATABASE_URL", "ok")
    port = phase.url.rsplit(":", 1)[1]
    for host in (phase.url, f"http://localhost:{port}", f"http://127.0.0.1:{port}/"):
        with PhaseClient(phase.token, host) as client:
            assert [s.value for s in client.list_secrets(phase.app_id, "development")] == ["ok"]


@pytest.fixture
def second_server() -> Iterator[RawServer]:
    with RawServer(send(http_response(200, secrets_json({"DATABASE_URL": "redirected"})))) as s:
        yield s


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_an_error_and_its_target_sees_nothing(
    phase: Phase, second_server: RawServer, status: int, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=from-dotenv\n")
    location = f"{second_server.url}/service/public/v1/secrets/?app_id={phase.app_id}&env=dev"
    phase.fake.fail_next(status, headers={"Location": location}, body=b"", times=2)
    with PhaseClient(phase.token, phase.url, deadline=DEADLINE) as client:
        _, error, _ = timed(lambda: client.list_secrets(phase.app_id, "development"))
    assert isinstance(error, PhaseResponseError) and error.status == status
    Settings = settings_class(phase, {"database_url": str}, env_file=".env")
    _, error, _ = timed(Settings)
    assert isinstance(error, PhaseResponseError), "a redirect must not fall back either"
    assert second_server.connections == 0 and second_server.requests == []
    assert len(phase.fake.requests) == 2  # one each, no retry


def test_netrc_and_proxy_variables_change_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A hostile ``.netrc`` for 127.0.0.1 and proxy variables pointing at a trap: the request
    still carries exactly our Authorization header and goes straight to the server."""
    body = secrets_json({"DATABASE_URL": "direct"})
    token = "pss_service:v2:" + "0f" * 32 + ":" + "11" * 32
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(netrc))
    with RawServer(send(http_response(200, body))) as server, RawServer(send(b"")) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
            monkeypatch.setenv(name, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with PhaseClient(token, server.url) as client:
            assert client.list_secrets("app", "development")[0].value == "direct"
        Settings = settings_class(
            None,
            {"database_url": str},
            phase_token=token,
            phase_host=server.url,
            phase_app_id="app",
            phase_env="development",
        )
        assert Settings().database_url == "direct"  # type: ignore[attr-defined]
        heads = list(server.requests)
        assert proxy.connections == 0
    assert len(heads) == 2
    for head in heads:
        lines = head.decode("latin-1").split("\r\n")
        auth = [line for line in lines if line.lower().startswith("authorization:")]
        assert auth == ["Authorization: Bearer ServiceAccount " + "0f" * 32], auth
        assert b"netrc" not in head and b"Basic" not in head


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RawServer, Path]]:
    ca, cert, key = make_self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    body = secrets_json({"DATABASE_URL": "over-tls"})
    with RawServer(send(http_response(200, body)), ssl_context=context) as server:
        yield server, ca


def test_self_signed_certificate_fails_without_retry_or_fallback(
    tls_server: tuple[RawServer, Path], tmp_path: Path
) -> None:
    server, _ = tls_server
    token = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
    with PhaseClient(token, server.url, deadline=DEADLINE) as client:
        _, error, elapsed = timed(lambda: client.list_secrets("app", "development"))
    assert isinstance(error, PhaseTLSError), repr(error)
    assert server.connections == 1 and elapsed <= DEADLINE + MARGIN

    (tmp_path / ".env").write_text("DATABASE_URL=from-dotenv\n")
    Settings = settings_class(
        None,
        {"database_url": str},
        phase_token=token,
        phase_host=server.url,
        phase_app_id="app",
        phase_env="development",
        env_file=".env",
    )
    _, error, elapsed = timed(Settings)
    assert isinstance(error, PhaseTLSError), "TLS failures never fall back"
    assert server.connections == 2 and elapsed <= DEADLINE + MARGIN
    status = load_status(Settings)
    assert status.last_error is not None and status.last_error.startswith("PhaseTLSError")
    print(f"[T11] self-signed: PhaseTLSError after 1 connection each, {elapsed * 1000:.0f} ms")


def test_self_signed_certificate_passes_with_its_ca_bundle(
    tls_server: tuple[RawServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls_server
    token = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
    with PhaseClient(token, server.url, verify_ssl=str(ca)) as client:
        assert client.list_secrets("app", "development")[0].value == "over-tls"
    config: dict[str, Any] = {
        "phase_token": token,
        "phase_host": server.url,
        "phase_app_id": "app",
        "phase_env": "development",
        "phase_cache_ttl": 0,
    }
    Settings = settings_class(None, {"database_url": str}, phase_verify_ssl=str(ca), **config)
    assert Settings().database_url == "over-tls"  # type: ignore[attr-defined]
    monkeypatch.setenv("PHASE_VERIFY_SSL", str(ca))
    FromEnv = settings_class(None, {"database_url": str}, name="FromEnv", **config)
    assert FromEnv().database_url == "over-tls"  # type: ignore[attr-defined]
    assert server.connections == 3


def test_a_certificate_for_another_name_fails_even_with_its_ca(
    tls_server: tuple[RawServer, Path],
) -> None:
    """The certificate names 127.0.0.1; ``localhost`` is another name: PhaseTLSError, once."""
    server, ca = tls_server
    token = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
    host = server.url.replace("127.0.0.1", "localhost")
    with PhaseClient(token, host, verify_ssl=str(ca), deadline=DEADLINE) as client:
        _, error, _ = timed(lambda: client.list_secrets("app", "development"))
    assert isinstance(error, PhaseTLSError), repr(error)
    assert server.connections == 1
    with PhaseClient(token, host, verify_ssl=False) as client:  # verification off: it works
        assert client.list_secrets("app", "development")[0].value == "over-tls"
