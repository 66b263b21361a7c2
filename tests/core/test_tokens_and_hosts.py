"""Token forms, the API base rule, and the http:// refusal."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase_settings import PhaseClient, PhaseConfigError
from phase_settings._core.tokens import auth_header
from phase_settings._core.urls import api_base, is_loopback
from phase_settings._settings.config import parse_verify_ssl

HEX = "ab" * 32
OTHER = "cd" * 32


@pytest.mark.parametrize(
    ("token", "header"),
    [
        (f"pss_service:v2:{HEX}:{OTHER}:{OTHER}:{OTHER}", f"Bearer ServiceAccount {HEX}"),
        (f"pss_service:v1:{HEX}:{OTHER}:{OTHER}:{OTHER}", f"Bearer Service {HEX}"),
        (f"pss_user:v1:{HEX}:{OTHER}:{OTHER}:{OTHER}", f"Bearer User {HEX}"),
        (f"ServiceAccount {HEX}", f"Bearer ServiceAccount {HEX}"),
        (f"User {HEX}", f"Bearer User {HEX}"),
        (f"Service {HEX}", f"Bearer Service {HEX}"),
        (f"  pss_service:v2:{HEX}:{OTHER}\n", f"Bearer ServiceAccount {HEX}"),
    ],
)
def test_every_documented_token_form_maps_to_its_header(token: str, header: str) -> None:
    assert auth_header(token) == header


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pss_service",
        f"pss_service:v2:{HEX[:-1]}:x",  # 63 hex digits
        f"pss_service:v2:{HEX}z:x",
        f"pss_service:2:{HEX}:x",
        f"pss_user:vX:{HEX}:x",
        f"pss_other:v1:{HEX}:x",
        f"Bearer ServiceAccount {HEX}",  # the header, not the token
        f"serviceaccount {HEX}",
        f"ServiceAccount  {HEX}",
        HEX,
    ],
)
def test_malformed_tokens_raise_config_error_without_echoing(token: str) -> None:
    with pytest.raises(PhaseConfigError) as info:
        auth_header(token)
    message = str(info.value) + repr(info.value)
    assert "PHASE_SERVICE_TOKEN" in message
    assert HEX not in message and HEX[:-1] not in message
    assert "pss_service:v2:…" in message


# One bad token per branch of the parser: their messages are the fixed text a message may hold.
_BRANCH_SAMPLES = (
    "x",
    f"pss_service:vX:{HEX}:x",
    f"pss_service:v3:{HEX}:x",
    f"pss_service:v2:{HEX[:-1]}:x",
    f"Token {HEX}",
)


def _fixed_messages() -> list[str]:
    messages = []
    for sample in _BRANCH_SAMPLES:
        with pytest.raises(PhaseConfigError) as info:
            auth_header(sample)
        messages.append(str(info.value))
    return messages


@given(st.text(alphabet=string.printable, max_size=120))
def test_token_parser_never_raises_anything_but_config_error(text: str) -> None:
    try:
        header = auth_header(text)
    except PhaseConfigError as exc:
        # The input may coincide with the message's fixed wording ('pss_serv' is part of the
        # hint 'pss_service:v2:…'); what must never appear is the input beyond that wording.
        token = text.strip()
        if len(token) >= 8 and token in str(exc):
            assert any(token in fixed for fixed in _fixed_messages()), "message echoes the token"
    else:
        kind, value = header.split(" ")[1:]
        assert kind in ("ServiceAccount", "Service", "User")
        assert len(value) == 64 and all(c in string.hexdigits for c in value)


@given(
    st.sampled_from([("pss_service", 1), ("pss_service", 2), ("pss_user", 1)]),
    st.binary(min_size=32, max_size=32),
)
def test_generated_valid_tokens_round_trip(known: tuple[str, int], raw: bytes) -> None:
    prefix, version = known
    value = raw.hex()
    header = auth_header(f"{prefix}:v{version}:{value}:{OTHER}:{OTHER}:{OTHER}")
    assert header.endswith(" " + value)
    expected = "User" if prefix == "pss_user" else ("ServiceAccount" if version == 2 else "Service")
    assert header.split(" ")[1] == expected


@pytest.mark.parametrize(
    "token",
    [
        f"pss_service:v3:{HEX}:{OTHER}",
        f"pss_service:v0:{HEX}:{OTHER}",
        f"pss_user:v2:{HEX}:{OTHER}",
        f"pss_user:v7:{HEX}",
    ],
)
def test_unknown_token_versions_are_refused_naming_the_known_ones(token: str) -> None:
    """A newer token format is never sent as a legacy kind: the error names the versions this
    release knows."""
    with pytest.raises(PhaseConfigError) as info:
        auth_header(token)
    message = str(info.value)
    assert "pss_service:v2" in message and "pss_service:v1" in message
    assert "pss_user:v1" in message
    assert token.split(":")[1] in message  # the version it got
    assert HEX not in message and OTHER not in message
    with pytest.raises(PhaseConfigError):
        PhaseClient(token, host="https://phase.example.com")


@pytest.mark.parametrize(
    ("host", "base"),
    [
        (None, "https://api.phase.dev"),
        ("https://api.phase.dev", "https://api.phase.dev"),
        ("https://api.phase.dev/", "https://api.phase.dev"),
        ("https://console.phase.dev", "https://console.phase.dev/service/public"),
        ("https://phase.acme.com/", "https://phase.acme.com/service/public"),
        ("https://phase.acme.com/service/public", "https://phase.acme.com/service/public"),
        ("https://phase.acme.com/service/public/", "https://phase.acme.com/service/public"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/service/public"),
        ("http://localhost:1", "http://localhost:1/service/public"),
        ("http://[::1]:1", "http://[::1]:1/service/public"),
    ],
)
def test_host_rule(host: str | None, base: str) -> None:
    assert api_base(host) == base


@pytest.mark.parametrize(
    "host", ["http://phase.example", "http://10.0.0.1", "http://192.168.1.2:80"]
)
def test_plain_http_off_loopback_is_refused_unless_allowed(host: str) -> None:
    with pytest.raises(PhaseConfigError, match="PHASE_ALLOW_HTTP"):
        api_base(host)
    assert api_base(host, allow_http=True).startswith("http://")


@pytest.mark.parametrize("host", ["ftp://x", "phase.example.com", "https://", "https://u:p@h.com"])
def test_unusable_hosts_are_config_errors(host: str) -> None:
    with pytest.raises(PhaseConfigError):
        api_base(host)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.9.9.9") and is_loopback("::1")
    assert is_loopback("localhost") and is_loopback("LOCALHOST.")
    assert not is_loopback("128.0.0.1") and not is_loopback("phase.dev")


def test_verify_ssl_values() -> None:
    assert parse_verify_ssl(None) is True
    assert parse_verify_ssl("false") is False and parse_verify_ssl("FALSE") is False
    assert parse_verify_ssl("true") is True
    assert parse_verify_ssl("/etc/ssl/ca.pem") == "/etc/ssl/ca.pem"


def test_client_refuses_http_before_opening_any_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal happens before any socket: ``phase.example`` resolves here to a loopback
    listener, and after the refused call nothing has connected to it (nor looked the name up).
    Without the refusal the call would connect and fail with a connection error instead."""
    import socket

    lookups: list[object] = []
    real = socket.getaddrinfo

    def resolve(host: object, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        return real("127.0.0.1", *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with pytest.raises(PhaseConfigError, match="PHASE_ALLOW_HTTP"):
            with PhaseClient(f"pss_service:v2:{HEX}:{OTHER}", f"http://phase.example:{port}") as c:
                c.list_apps(deadline=2)
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # a connection made by the client would be waiting here
    assert lookups == []


def test_client_without_token_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHASE_SERVICE_TOKEN", raising=False)
    monkeypatch.delenv("PHASE_TOKEN", raising=False)
    with pytest.raises(PhaseConfigError, match="PHASE_SERVICE_TOKEN"):
        PhaseClient()


def test_client_reads_token_and_host_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", f"pss_user:v1:{HEX}:{OTHER}")
    monkeypatch.setenv("PHASE_HOST", "https://phase.acme.com")
    with PhaseClient() as client:
        assert client.base_url == "https://phase.acme.com/service/public"
        assert client.token_type == "User"
        assert HEX not in repr(client)
