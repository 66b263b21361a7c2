"""T14 behind an HTTP proxy: the slow-server battery (a drip, silence after the headers, silence
in the TLS handshake, a proxy that never answers) repeated through a proxy named in the
environment, for a host name that is not loopback, with the sync and the async client (under
asyncio and trio). Every call ends by its deadline + 0.5 s with a ``PhaseConnectionError``,
never a ``PhaseTLSError``; a real certificate failure through the proxy is a ``PhaseTLSError``.

The proxy is a loopback server that answers itself (plain requests in absolute form, and
``CONNECT`` tunnels whose TLS it terminates with a test certificate): nothing leaves 127.0.0.1,
and the host name ``phase.example.com`` is never resolved (the suite's resolver refuses it).
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest

from phase_settings import (
    AsyncPhaseClient,
    PhaseClient,
    PhaseConnectionError,
    PhaseError,
    PhaseTLSError,
)

from .conftest import (
    MARGIN,
    RawServer,
    drip,
    http_response,
    make_self_signed,
    read_head,
    secrets_json,
    silent,
    stall_after,
)

DEADLINE = 2.0
TOKEN = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
BODY = secrets_json({"DATABASE_URL": "from-phase"})
VALID = http_response(200, BODY)
HEAD_ONLY = VALID[: VALID.index(b"\r\n\r\n") + 4]
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"

Handler = Callable[[Any, bytes, RawServer], None]

# scenario -> (scheme of PHASE_HOST, what the proxy does once it has read the request head)
PLAIN = {
    "plain: drip 1 byte / 0.1 s": drip(VALID, 0.1),
    "plain: headers, then stall": stall_after(HEAD_ONLY),
    "plain: accept, never write": silent,
}


def tunnel(then: Handler | None, context: ssl.SSLContext) -> Handler:
    """Answer ``CONNECT``, terminate TLS with ``context``, read the request, then ``then``;
    ``None``: answer ``CONNECT`` and stay silent in the TLS handshake."""

    def handler(conn: Any, head: bytes, srv: RawServer) -> None:
        conn.sendall(ESTABLISHED)
        if then is None:
            srv.stopping.wait(30)
            return
        with context.wrap_socket(conn, server_side=True) as tls:
            then(tls, read_head(tls), srv)

    return handler


def connect_scenarios(context: ssl.SSLContext) -> dict[str, Handler]:
    return {
        "CONNECT: hang in the TLS handshake": tunnel(None, context),
        "CONNECT: TLS, then drip 1 byte / 0.1 s": tunnel(drip(VALID, 0.1), context),
        "CONNECT: TLS, headers, then stall": tunnel(stall_after(HEAD_ONLY), context),
        "CONNECT: never answered": silent,
    }


@pytest.fixture
def server_context(tmp_path: Path) -> ssl.SSLContext:
    _ca, cert, key = make_self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def scenarios(server_context: ssl.SSLContext) -> dict[str, Handler]:
    return PLAIN | connect_scenarios(server_context)


class Proxy:
    """One loopback proxy for every scenario: scenario ``i`` uses the host name
    ``s<i>.phase.example.com``, which the proxy reads from the request line (plain requests
    carry the absolute URL, tunnels the ``CONNECT`` target) to act that scenario out."""

    def __init__(self, scenarios: dict[str, Handler]):
        self.kinds = list(scenarios)
        self.handlers = list(scenarios.values())
        self.seen: dict[str, list[bytes]] = {kind: [] for kind in self.kinds}
        self.server = RawServer(self._dispatch)

    def host(self, kind: str) -> str:
        scheme = "http" if kind.startswith("plain") else "https"
        return f"{scheme}://s{self.kinds.index(kind)}.phase.example.com"

    def _dispatch(self, conn: Any, head: bytes, srv: RawServer) -> None:
        match = re.match(rb"(GET http://|CONNECT )s(\d+)\.phase\.example\.com[:/]", head)
        if match is None:
            return  # not a request of this test: closed unanswered
        index = int(match.group(2))
        self.seen[self.kinds[index]].append(head.split(b"\r\n", 1)[0])
        self.handlers[index](conn, head, srv)


@pytest.fixture
def proxy(scenarios: dict[str, Handler], monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """The proxy, named by the environment as every proxy variable."""
    proxy = Proxy(scenarios)
    with proxy.server:
        url = f"http://127.0.0.1:{proxy.server.port}"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(name, url)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


# verify_ssl=False: the slow scenarios are about time (the proxy's certificate is not for
# phase.example.com); the certificate test below verifies.
OPTIONS: dict[str, Any] = {"deadline": DEADLINE, "allow_http": True, "verify_ssl": False}


def check(proxy: Proxy, results: dict[str, tuple[BaseException | None, float]], label: str) -> None:
    for kind, (_error, elapsed) in sorted(results.items()):
        print(f"[T14-proxy] {label:14} {kind:40} {elapsed * 1000:5.0f} ms")
    worst = max(elapsed for _e, elapsed in results.values())
    print(f"[T14-proxy] {label:14} worst {worst * 1000:.0f} ms")
    for kind, (error, elapsed) in results.items():
        assert proxy.seen[kind], f"{kind}: the proxy was not used"
        expected = b"GET http://" if kind.startswith("plain") else b"CONNECT "
        assert proxy.seen[kind][0].startswith(expected), f"{kind}: {proxy.seen[kind][0]!r}"
        assert elapsed <= DEADLINE + MARGIN, f"{kind}: {elapsed:.2f} s"
        assert isinstance(error, PhaseConnectionError), f"{kind}: {error!r}"
        assert not isinstance(error, PhaseTLSError)


def sync_call(host: str, **options: Any) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        with PhaseClient(TOKEN, host, **(OPTIONS | options)) as client:
            client.list_secrets("app", "development")
    except PhaseError as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


async def async_call(host: str, **options: Any) -> tuple[BaseException | None, float]:
    start = time.monotonic()
    try:
        async with AsyncPhaseClient(TOKEN, host, **(OPTIONS | options)) as client:
            await client.list_secrets("app", "development")
    except PhaseError as exc:
        return exc, time.monotonic() - start
    return None, time.monotonic() - start


def test_sync_client_keeps_its_deadline_behind_a_proxy(proxy: Proxy) -> None:
    with ThreadPoolExecutor(len(proxy.kinds)) as pool:
        futures = {kind: pool.submit(sync_call, proxy.host(kind)) for kind in proxy.kinds}
        results = {kind: f.result(timeout=DEADLINE + 10) for kind, f in futures.items()}
    check(proxy, results, "sync")


@pytest.mark.anyio
async def test_async_client_keeps_its_deadline_behind_a_proxy(
    proxy: Proxy, anyio_backend: str
) -> None:
    results: dict[str, tuple[BaseException | None, float]] = {}

    async def one(kind: str) -> None:
        results[kind] = await async_call(proxy.host(kind))

    with anyio.fail_after(DEADLINE + 10):
        async with anyio.create_task_group() as group:
            for kind in proxy.kinds:
                group.start_soon(one, kind)
    check(proxy, results, f"async {anyio_backend}")


@pytest.fixture
def tls_proxy(server_context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A proxy whose tunnel presents a certificate no trust store accepts for the host."""

    def respond(conn: Any, _head: bytes, srv: RawServer) -> None:
        conn.sendall(VALID)

    proxy = Proxy({"CONNECT: untrusted certificate": tunnel(respond, server_context)})
    with proxy.server:
        url = f"http://127.0.0.1:{proxy.server.port}"
        monkeypatch.setenv("HTTPS_PROXY", url)
        monkeypatch.setenv("https_proxy", url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        yield proxy


def test_a_real_certificate_failure_through_the_proxy_is_a_tls_error(tls_proxy: Proxy) -> None:
    (kind,) = tls_proxy.kinds
    error, elapsed = sync_call(tls_proxy.host(kind), verify_ssl=True)
    assert isinstance(error, PhaseTLSError), repr(error)
    assert len(tls_proxy.seen[kind]) == 1, "a TLS failure is not retried"
    assert elapsed <= DEADLINE + MARGIN


@pytest.mark.anyio
async def test_async_certificate_failure_through_the_proxy_is_a_tls_error(
    tls_proxy: Proxy, anyio_backend: str
) -> None:
    (kind,) = tls_proxy.kinds
    error, _elapsed = await async_call(tls_proxy.host(kind), verify_ssl=True)
    assert isinstance(error, PhaseTLSError), repr(error)
    assert len(tls_proxy.seen[kind]) == 1, "a TLS failure is not retried"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tls_silent_server() -> Iterator[RawServer]:
    """A loopback server that accepts and never answers the TLS handshake (no proxy)."""
    with RawServer(silent, read_request=False) as server:
        yield server


def test_a_tls_handshake_hang_without_proxy_is_a_connection_error(
    tls_silent_server: RawServer,
) -> None:
    host = f"https://127.0.0.1:{tls_silent_server.port}"
    error, elapsed = sync_call(host)
    assert isinstance(error, PhaseConnectionError), repr(error)
    assert elapsed <= DEADLINE + MARGIN


@pytest.mark.anyio
async def test_async_tls_handshake_hang_without_proxy_is_a_connection_error(
    tls_silent_server: RawServer, anyio_backend: str
) -> None:
    host = f"https://127.0.0.1:{tls_silent_server.port}"
    error, elapsed = await async_call(host)
    assert isinstance(error, PhaseConnectionError), repr(error)
    assert elapsed <= DEADLINE + MARGIN
