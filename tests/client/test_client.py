"""PhaseClient / AsyncPhaseClient against the loopback fake: endpoints, errors, headers."""

from __future__ import annotations

import dataclasses
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase_settings import (
    AsyncPhaseClient,
    PhaseAuthError,
    PhaseClient,
    PhaseConfigError,
    PhaseConflictError,
    PhaseConnectionError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseRequestError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSSEDisabledError,
    PhaseTLSError,
    Secret,
)
from phase_settings._client.client import ClientOptions
from phase_settings._core.deadline import Deadline
from phase_settings._core.failures import Kind, Stage
from phase_settings._core.protocol import Protocol
from phase_settings._settings.config import resolve_config
from phase_settings._transport.failures import classify_failure
from phase_settings.testing import FakePhase

from ..conftest import Phase


@pytest.fixture
def client(phase: Phase) -> Iterator[PhaseClient]:
    with PhaseClient(phase.token, phase.url, deadline=5, rng=random.Random(1)) as c:
        yield c


def test_list_secrets_returns_typed_records(phase: Phase, client: PhaseClient) -> None:
    phase.fake.set_secret(
        phase.app_id, "development", "db_host", "db-sekrit", comment="the db", tags=("backend",)
    )
    [secret] = client.list_secrets(phase.app_id, "Development")
    assert isinstance(secret, Secret)
    assert (secret.key, secret.value, secret.comment, secret.tags) == (
        "DB_HOST",
        "db-sekrit",
        "the db",
        ("backend",),
    )
    assert secret.path == "/" and secret.version == 1 and secret.type == "secret"
    assert secret.created_at is not None and secret.created_at.tzinfo is not None
    assert secret.override is None and secret.effective_value == "db-sekrit"
    assert "sekrit" not in repr(secret) + str(secret)


def test_request_shape_headers_and_query(phase: Phase, client: PhaseClient) -> None:
    client.list_secrets(phase.app_id, "development", path="/a b/c+d", key="K", tags=["x", "y z"])
    [request] = phase.fake.requests
    assert request.path == "/service/public/v1/secrets/"
    assert request.query == {
        "app_id": phase.app_id,
        "env": "development",
        "path": "/a b/c+d",
        "key": "K",
        "tags": "x,y z",
    }
    assert request.token_type == "ServiceAccount"
    assert request.headers["user-agent"].startswith("phase-settings/")
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers


def test_path_none_asks_for_every_folder(phase: Phase, client: PhaseClient) -> None:
    phase.set("A", "1")
    phase.set("B", "2", path="/deep/er")
    assert {s.key for s in client.list_secrets(phase.app_id, "development", path=None)} == {
        "A",
        "B",
    }
    assert "path" not in phase.fake.requests[-1].query
    assert [s.key for s in client.list_secrets(phase.app_id, "development")] == ["A"]


def test_create_update_delete_round_trip(phase: Phase, client: PhaseClient) -> None:
    [created] = client.create_secrets(
        phase.app_id,
        "development",
        [{"key": "new_key", "value": "v1", "comment": "c", "path": "/p", "tags": ("t",)}],
    )
    assert (created.key, created.value, created.path, created.tags) == (
        "NEW_KEY",
        "v1",
        "/p",
        ("t",),
    )
    [updated] = client.update_secrets(
        phase.app_id, "development", [{"id": created.id, "value": "v2"}]
    )
    assert updated.value == "v2" and updated.version == created.version + 1
    with pytest.raises(PhaseConflictError) as conflict:
        client.create_secrets(
            phase.app_id, "development", [{"key": "NEW_KEY", "value": "x", "path": "/p"}]
        )
    assert conflict.value.status == 409 and conflict.value.error == "Duplicate secret found"
    assert client.delete_secrets(phase.app_id, "development", [created.id]) == 1
    assert client.list_secrets(phase.app_id, "development", path="/p") == []
    with pytest.raises(PhaseNotFoundError):
        client.delete_secrets(phase.app_id, "development", [created.id])


def test_user_override_is_exposed_and_effective(phase: Phase) -> None:
    phase.set("K", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "K", "mine")
    with PhaseClient(user, phase.url) as c:
        [secret] = c.list_secrets(phase.app_id, "development")
    assert secret.value == "shared" and secret.effective_value == "mine"
    assert secret.override is not None and secret.override.is_active
    assert "mine" not in repr(secret)


def test_apps_and_environments(phase: Phase, client: PhaseClient) -> None:
    apps = client.list_apps()
    assert [a.name for a in apps] == ["demo"] and apps[0].sse_enabled
    envs = client.list_environments(phase.app_id)
    assert [e.name for e in envs] == ["Development", "Staging", "Production"]
    assert [e.env_type for e in envs] == ["dev", "staging", "prod"]


@pytest.mark.parametrize(
    ("make", "error", "status", "text"),
    [
        (
            lambda p: {"app_id": "00000000-0000-0000-0000-000000000000"},
            PhaseNotFoundError,
            404,
            "App with ID 00000000-0000-0000-0000-000000000000 not found",
        ),
        (lambda p: {"env": "nope"}, PhaseNotFoundError, 404, "Environment 'nope' not found"),
        (
            lambda p: {"token": p.fake.add_service_account(envs=("staging",))},
            PhaseAuthError,
            401,
            "Service account cannot access this environment",
        ),
        (
            lambda p: {"token": p.fake.add_user(envs=("staging",))},
            PhaseAuthError,
            403,
            "User cannot access this environment",
        ),
    ],
)
def test_refusals_map_to_typed_errors(phase: Phase, make, error, status, text) -> None:  # type: ignore[no-untyped-def]
    args = {"app_id": phase.app_id, "env": "development", "token": phase.token, **make(phase)}
    with PhaseClient(args["token"], phase.url) as c, pytest.raises(error) as info:
        c.list_secrets(args["app_id"], args["env"])
    assert info.value.status == status and info.value.error is not None
    assert info.value.error.startswith(text)
    assert sum(1 for r in phase.fake.requests if r.method == "GET") == 1  # never retried


def test_revoked_token(phase: Phase, client: PhaseClient) -> None:
    phase.fake.revoke(phase.token)
    with pytest.raises(PhaseAuthError, match="PHASE_SERVICE_TOKEN") as info:
        client.list_secrets(phase.app_id, "development")
    assert info.value.error == "Token expired or deleted"


def test_sse_disabled_in_sse_mode(phase: Phase) -> None:
    """REST only: an app without SSE is refused, and the message says how to read it."""
    phase.fake.set_sse(phase.app_id, False)
    with PhaseClient(phase.token, phase.url, mode="sse") as client:
        with pytest.raises(PhaseSSEDisabledError) as info:
            client.list_secrets(phase.app_id, "development")
    assert info.value.status == 400
    assert "pss_ token that carries key parts" in str(info.value)


def test_wrong_host_404_html_is_a_response_error(phase: Phase) -> None:
    with PhaseClient(phase.token, phase.url + "/nothing/service/public") as c:
        with pytest.raises(PhaseResponseError, match="PHASE_HOST"):
            c.list_secrets(phase.app_id, "development")


def test_rate_limit_error_carries_retry_after(phase: Phase) -> None:
    phase.fake.rate_limit("1/m")
    with PhaseClient(phase.token, phase.url, deadline=2) as c:
        c.list_secrets(phase.app_id, "development")
        with pytest.raises(PhaseRateLimitError) as info:
            c.list_secrets(phase.app_id, "development")
    assert info.value.retry_after is not None and 55 <= info.value.retry_after <= 60
    assert info.value.status == 429


def test_server_errors_are_retried_then_raised(phase: Phase) -> None:
    waits: list[float] = []
    phase.fake.fail_next(503, times=5)
    with PhaseClient(phase.token, phase.url, sleep=waits.append, rng=random.Random(3)) as c:
        with pytest.raises(PhaseServerError) as info:
            c.list_secrets(phase.app_id, "development")
    assert info.value.status == 503
    assert len(phase.fake.requests) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0


def test_a_transient_failure_then_success(phase: Phase) -> None:
    phase.set("K", "v")
    phase.fake.fail_next(502)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        assert [s.key for s in c.list_secrets(phase.app_id, "development")] == ["K"]
    assert len(phase.fake.requests) == 2


def test_post_is_not_retried_after_reaching_the_server(phase: Phase) -> None:
    phase.fake.fail_next(503, times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        with pytest.raises(PhaseServerError):
            c.create_secrets(phase.app_id, "development", [{"key": "K", "value": "v"}])
    assert len(phase.fake.requests) == 1


def test_post_whose_connection_dies_after_sending_is_not_retried(phase: Phase) -> None:
    # The server read the request and closed without answering: it may have created the
    # secret, so sending it again could create it twice.
    phase.fake.fail_next(None, drop=True, times=3)
    sleeps: list[float] = []
    with PhaseClient(phase.token, phase.url, sleep=sleeps.append, rng=random.Random(1)) as c:
        with pytest.raises(PhaseConnectionError):
            c.create_secrets(phase.app_id, "development", [{"key": "K", "value": "v"}])
    assert [r.method for r in phase.fake.requests] == ["POST"]
    assert sleeps == []


def test_post_is_retried_when_it_never_reached_the_server(phase: Phase) -> None:
    # Nothing listens on the port: the connection is refused, so the secret was surely not
    # created and sending it again is safe.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{port}"
    with PhaseClient(phase.token, url, sleep=sleeps.append, rng=random.Random(1)) as c:
        with pytest.raises(PhaseConnectionError):
            c.create_secrets(phase.app_id, "development", [{"key": "K", "value": "v"}])
    assert len(sleeps) == 2  # three attempts (the default), two waits between them


def test_post_is_retried_after_a_429(phase: Phase) -> None:
    phase.fake.fail_next(429, headers={"Retry-After": "2"})
    sleeps: list[float] = []
    with PhaseClient(phase.token, phase.url, sleep=sleeps.append, rng=random.Random(1)) as c:
        [created] = c.create_secrets(phase.app_id, "development", [{"key": "K", "value": "v"}])
    assert created.key == "K"
    assert [r.method for r in phase.fake.requests] == ["POST", "POST"]
    assert sleeps == [2.0]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_the_retried_server_errors(phase: Phase, status: int) -> None:
    phase.set("K", "v")
    phase.fake.fail_next(status)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        assert [s.key for s in c.list_secrets(phase.app_id, "development")] == ["K"]
    assert len(phase.fake.requests) == 2


@pytest.mark.parametrize("status", [501, 505, 507])
def test_other_server_errors_are_not_retried(phase: Phase, status: int) -> None:
    phase.fake.fail_next(status, times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        with pytest.raises(PhaseServerError) as info:
            c.list_secrets(phase.app_id, "development")
    assert info.value.status == status
    assert len(phase.fake.requests) == 1


def test_other_4xx_is_a_request_error_not_retried(phase: Phase) -> None:
    phase.fake.fail_next(413, body=json.dumps({"error": "Too big"}))
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseRequestError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.status == 413 and info.value.error == "Too big"
    assert len(phase.fake.requests) == 1


def test_redirect_is_not_followed(phase: Phase) -> None:
    phase.fake.fail_next(302, headers={"Location": "http://127.0.0.1:9/steal"}, body="")
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseResponseError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.status == 302 and "redirect" in str(info.value)


def test_body_over_the_limit_is_refused_before_parsing(phase: Phase) -> None:
    for i in range(50):
        phase.set(f"K{i}", "x" * 100)
    with PhaseClient(phase.token, phase.url, max_response_bytes=2000) as c:
        with pytest.raises(PhaseResponseError, match="max_response_bytes"):
            c.list_secrets(phase.app_id, "development")


def test_error_text_is_sanitised_and_truncated(phase: Phase) -> None:
    phase.fake.fail_next(400, body=json.dumps({"error": "bad\x00\x1b[31m" + "y" * 500}))
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseRequestError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.error is not None
    assert len(info.value.error) <= 200 and "\x00" not in info.value.error
    assert "\x1b" not in str(info.value)


def test_closed_port_is_a_connection_error(phase: Phase) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PhaseClient(phase.token, f"http://127.0.0.1:{port}", sleep=lambda s: None) as c:
        with pytest.raises(PhaseConnectionError):
            c.list_secrets(phase.app_id, "development")


def test_in_process_transport(phase: Phase) -> None:
    phase.set("K", "v")
    with PhaseClient(phase.token, "http://127.0.0.1", transport=phase.fake.transport()) as c:
        assert c.list_secrets(phase.app_id, "development")[0].value == "v"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_async_client_matches_the_sync_one(phase: Phase, anyio_backend: str) -> None:
    phase.set("K", "v")
    async with AsyncPhaseClient(phase.token, phase.url) as c:
        created = await c.create_secrets(phase.app_id, "development", [{"key": "N", "value": "n"}])
        await c.update_secrets(phase.app_id, "development", [{"id": created[0].id, "value": "m"}])
        assert [a.name for a in await c.list_apps()] == ["demo"]
        assert len(await c.list_environments(phase.app_id)) == 3
        secrets = await c.list_secrets(phase.app_id, "development")
        assert await c.delete_secrets(phase.app_id, "development", [created[0].id]) == 1
    assert {(s.key, s.value) for s in secrets} == {("K", "v"), ("N", "m")}


@pytest.mark.anyio
async def test_async_client_errors(phase: Phase, anyio_backend: str) -> None:
    phase.fake.fail_next(401, body=json.dumps({"error": "Token expired or deleted"}))
    async with AsyncPhaseClient(phase.token, phase.url) as c:
        with pytest.raises(PhaseAuthError):
            await c.list_secrets(phase.app_id, "development")


@pytest.mark.anyio
async def test_async_retries_wait_with_the_event_loop_in_use(
    phase: Phase, anyio_backend: str
) -> None:
    """Two 503s then success: the waits are real sleeps of the running loop (asyncio or trio),
    each within the backoff window, and the third attempt succeeds."""
    phase.set("K", "v")
    phase.fake.fail_next(503, times=2)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(0)

    async with AsyncPhaseClient(
        phase.token, phase.url, sleep=sleep, rng=random.Random(5), deadline=5
    ) as c:
        [secret] = await c.list_secrets(phase.app_id, "development")
    assert secret.value == "v"
    assert len(waits) == 2 and 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0
    assert phase.gets() == 3


@pytest.mark.anyio
async def test_async_deadline_holds_under_either_loop(anyio_backend: str) -> None:
    """A server that accepts and never answers: the call ends by its deadline."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        async with AsyncPhaseClient(TOKEN, host, deadline=1.0) as c:
            with pytest.raises(PhaseConnectionError):
                await c.list_apps()
        assert time.monotonic() - start <= 1.5


# --- options -------------------------------------------------------------------------------

TOKEN = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32


def test_options_are_checked_once_frozen_and_never_show_the_token() -> None:
    options = ClientOptions(token=TOKEN, host="https://phase.example.com", deadline=4)
    assert options.base_url == "https://phase.example.com/service/public"
    assert options.deadline == 4.0 and options.timeout == 10.0 and options.max_attempts == 3
    assert options.token_type == "ServiceAccount"
    assert "ab" * 32 not in repr(options) and "cd" * 32 not in repr(options)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.deadline = 9  # type: ignore[misc]
    with pytest.raises(PhaseConfigError, match="max_attempts"):
        options.replace(max_attempts=0)
    with pytest.raises(PhaseConfigError, match="PHASE_ALLOW_HTTP"):
        ClientOptions(token=TOKEN, host="http://phase.example.com")


def test_options_from_a_resolved_config_build_both_clients(phase: Phase) -> None:
    phase.set("K", "v")
    config = resolve_config(
        {"phase_token": phase.token, "phase_host": phase.url, "phase_max_attempts": 2}, {}
    )
    options = ClientOptions.from_config(config, deadline=3)
    assert options.max_attempts == 2 and options.deadline == 3.0
    with PhaseClient.from_options(options) as c:
        assert c.list_secrets(phase.app_id, "development")[0].value == "v"
        assert (c.base_url, c.max_attempts, c.deadline) == (options.base_url, 2, 3.0)

    async def main() -> str:
        async with AsyncPhaseClient.from_options(options) as ac:
            return (await ac.list_secrets(phase.app_id, "development"))[0].value

    assert anyio.run(main) == "v"


def test_the_pool_keeps_httpx_default_limits_not_ten() -> None:
    """15 concurrent calls on one client open 15 connections at once (a pool capped at 10
    would hold five of them back until the first ten finish)."""
    want = 15
    lock = threading.Lock()
    arrived = threading.Condition(lock)
    state = {"open": 0, "peak": 0}
    body = b"[]"
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            with arrived:
                state["open"] += 1
                state["peak"] = max(state["peak"], state["open"])
                arrived.notify_all()
                arrived.wait_for(lambda: state["open"] >= want, timeout=3)
            conn.sendall(reply)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.1)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        try:
            with (
                PhaseClient(TOKEN, host, deadline=10, max_attempts=1) as c,
                ThreadPoolExecutor(want) as pool,
            ):
                futures = [pool.submit(c.list_secrets, "app", "dev") for _ in range(want)]
                for future in futures:
                    future.result(timeout=10)
        finally:
            stop.set()
            acceptor.join(2)
    assert state["peak"] == want


# --- failures, classified by type (one table) ----------------------------------------------


def _caused(outer: BaseException, *causes: BaseException) -> BaseException:
    current = outer
    for cause in causes:
        current.__cause__ = cause
        current = cause
    return outer


def _h11_error() -> BaseException:
    import h11

    return h11.RemoteProtocolError("illegal status line")


FAILURES = [
    # (exception, stage, kind, reached the server)
    (httpx.ConnectTimeout("t"), "send", Kind.CONNECTION, False),
    (httpx.ReadTimeout("t"), "send", Kind.CONNECTION, True),
    (httpx.ReadTimeout("t"), "body", Kind.CONNECTION, True),
    (httpx.WriteTimeout("t"), "send", Kind.CONNECTION, True),
    (httpx.PoolTimeout("t"), "send", Kind.CONNECTION, False),
    (TimeoutError(), "send", Kind.CONNECTION, True),
    # a TLS handshake that timed out (after an ssl error was seen on the way) is still a timeout
    (_caused(httpx.ConnectTimeout("t"), ssl.SSLError(1, "x")), "send", Kind.CONNECTION, False),
    (
        _caused(httpx.ConnectError("e"), ssl.SSLCertVerificationError(1, "x")),
        "send",
        Kind.TLS,
        False,
    ),
    (_caused(httpx.ConnectError("e"), ssl.SSLError(1, "wrong version")), "send", Kind.TLS, False),
    (_caused(httpx.ConnectError("e"), ssl.SSLEOFError(8, "eof")), "send", Kind.CONNECTION, False),
    # message text means nothing: only types do
    (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"), "send", Kind.CONNECTION, False),
    (httpx.ReadError("SSL: bad"), "body", Kind.CONNECTION, True),
    (httpx.RemoteProtocolError("Server disconnected"), "send", Kind.CONNECTION, True),
    (_caused(httpx.RemoteProtocolError("x"), _h11_error()), "send", Kind.NOT_HTTP, True),
    (_caused(httpx.RemoteProtocolError("x"), _h11_error()), "body", Kind.CONNECTION, True),
    (httpx.DecodingError("d"), "body", Kind.DECODING, True),
    (httpx.UnsupportedProtocol("u"), "send", Kind.BAD_URL, False),
    (httpx.ConnectError("refused"), "send", Kind.CONNECTION, False),
    (httpx.ProxyError("407"), "send", Kind.CONNECTION, False),
    (httpx.ReadError("reset"), "body", Kind.CONNECTION, True),
    (ConnectionResetError(), "body", Kind.CONNECTION, True),
]


@pytest.mark.parametrize(("exc", "stage", "kind", "reached"), FAILURES)
def test_failure_table(exc: BaseException, stage: Stage, kind: Kind, reached: bool) -> None:
    failure = classify_failure(exc, stage)
    assert (failure.kind, failure.reached_server) == (kind, reached)


def test_a_timeout_is_a_connection_error_and_a_certificate_failure_a_tls_error() -> None:
    core = Protocol(ClientOptions(token=TOKEN, host="https://phase.example.com"))
    deadline = Deadline(5)
    slow = _caused(httpx.ConnectTimeout("t"), ssl.SSLError(1, "x"))
    timeout = core.failure(slow, classify_failure(slow, "send"), deadline)
    assert type(timeout.error) is PhaseConnectionError
    refused = _caused(httpx.ConnectError("e"), ssl.SSLCertVerificationError(1, "x"))
    cert = core.failure(refused, classify_failure(refused, "send"), deadline)
    assert type(cert.error) is PhaseTLSError


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "key",
                    "value",
                    "tags",
                    "path",
                    "version",
                    "override",
                    "type",
                    "error",
                    "data",
                    "isActive",
                ]
            )
            | st.text(max_size=3),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_json_values, status=st.sampled_from([200, 200, 200, 400, 404, 409, 422, 500]))
def test_wrong_shapes_only_ever_raise_phase_errors(payload: object, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(payload).encode())

    token = "pss_service:v2:" + "ab" * 32 + ":x"
    with PhaseClient(
        token, "http://127.0.0.1", transport=httpx.MockTransport(handler), max_attempts=1
    ) as c:
        for call in (
            lambda: c.list_secrets("app", "dev"),
            c.list_apps,
            lambda: c.list_environments("app"),
        ):
            try:
                call()
            except PhaseError as exc:
                assert "ab" * 32 not in str(exc) + repr(exc)


def test_every_error_str_and_repr_hide_the_token(phase: Phase) -> None:
    hexpart = phase.token.split(":")[2]
    for status in (400, 401, 403, 404, 409, 429, 500, 503):
        phase.fake.fail_next(status)
        with PhaseClient(phase.token, phase.url, max_attempts=1) as c:
            with pytest.raises(PhaseError) as info:
                c.list_secrets(phase.app_id, "development")
            assert hexpart not in str(info.value) + repr(info.value) + repr(c)


def test_fake_fixture_is_registered(fake_phase: FakePhase) -> None:
    app = fake_phase.add_app("via-fixture")
    token = fake_phase.add_service_account(envs=None)
    fake_phase.set_secret(app, "development", "K", "v")
    with PhaseClient(token, fake_phase.url) as c:
        assert c.list_secrets(app, "development")[0].key == "K"


def test_a_peer_that_does_not_speak_http_is_a_response_error_not_an_outage(
    phase: Phase,
) -> None:
    phase.fake.fail_next(raw=b"SSH-2.0-OpenSSH_9.6\r\nkex\r\n\r\n", times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        with pytest.raises(PhaseResponseError, match="PHASE_HOST"):
            c.list_secrets(phase.app_id, "development")
    assert len(phase.fake.requests) == 1  # not retried: a wrong host is not transient


def test_localhost_subdomains_are_not_trusted_as_loopback() -> None:
    from phase_settings import PhaseConfigError

    with pytest.raises(PhaseConfigError):
        PhaseClient("pss_service:v2:" + "ab" * 32 + ":x", host="http://phase.localhost:8080")


def test_a_socks_proxy_in_the_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1")
    monkeypatch.setenv("https_proxy", "socks5://127.0.0.1:1")
    with (
        PhaseClient(TOKEN, "https://phase.example.com") as c,
        pytest.raises(PhaseConfigError, match="HTTPS_PROXY"),
    ):
        c.list_apps()


@pytest.mark.parametrize("cls", [PhaseClient, AsyncPhaseClient])
def test_constructor_defaults_are_the_configuration_defaults(cls: type) -> None:
    """``PhaseClient(...)`` defaults (timeout 10 s, deadline 15 s, 3 attempts, 32 MiB) are
    the ``phase_*`` defaults, so a client and a settings load behave alike."""
    import inspect

    from phase_settings._defaults import DEFAULTS

    parameters = inspect.signature(cls).parameters
    for name in ("timeout", "deadline", "max_attempts", "max_response_bytes"):
        assert parameters[name].default == DEFAULTS[f"phase_{name}"], name
    options = ClientOptions(token=TOKEN)
    assert (options.timeout, options.deadline, options.max_attempts) == (10.0, 15.0, 3)
    assert options.max_response_bytes == 32 * 1024 * 1024
