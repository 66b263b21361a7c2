"""The HTTP transport: httpcore's pool or HTTP proxy with the deadline-clamping network
backend, behind httpx's public ``BaseTransport`` / ``AsyncBaseTransport`` interfaces.

TLS verified, no transport-level retries, httpx's default pool limits, environment proxies
for remote hosts only (never for loopback), redirects and ``.netrc`` left to the client
(which follows none and reads none).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx

from .._core.urls import proxy_for
from .._errors import PhaseConfigError
from .netbackend import AsyncDeadlineBackend, DeadlineBackend

__all__ = ["AsyncPhaseTransport", "PhaseTransport", "build_async_transport", "build_transport"]


@functools.cache
def ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """One SSL context per setting per process (building one costs milliseconds).

    Args:
        verify: True for the certifi trust store, False to disable verification, or a path to
            a CA bundle file or directory.
    """
    if verify is True:
        return httpx.create_ssl_context()
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    path = Path(verify).expanduser()
    try:
        if path.is_dir():
            return ssl.create_default_context(capath=str(path))
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise PhaseConfigError(
            f"PHASE_VERIFY_SSL names a CA bundle that cannot be loaded ({path}): "
            f"{type(exc).__name__}; give a PEM file or directory, 'true' or 'false'"
        ) from None


@functools.cache
def _plain_http_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def default_limits() -> httpx.Limits:
    """httpx's own default pool limits (those ``httpx.HTTPTransport()`` uses)."""
    default = inspect.signature(httpx.HTTPTransport).parameters["limits"].default
    return default if isinstance(default, httpx.Limits) else httpx.Limits()


# httpcore's exceptions and the httpx ones its transport raises for them, subclasses first.
_MAPPING: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
_CORE_ERRORS = tuple(source for source, _ in _MAPPING)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except _CORE_ERRORS as exc:
        raise _httpx_error(exc) from exc


def _httpx_error(exc: Exception) -> httpx.TransportError:
    for source, target in _MAPPING:
        if isinstance(exc, source):
            return target(str(exc))
    return httpx.TransportError(str(exc))  # pragma: no cover - every httpcore error is mapped


def _core_request(request: httpx.Request, content: Any) -> httpcore.Request:
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=content,
        extensions=request.extensions,
    )


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Any):
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self._stream

    def close(self) -> None:
        self._stream.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any):
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


class PhaseTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore ``ConnectionPool`` or ``HTTPProxy``."""

    def __init__(self, pool: httpcore.ConnectionPool | httpcore.HTTPProxy):
        self.pool = pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with _mapped():
            reply = self.pool.handle_request(_core_request(request, request.stream))
        return httpx.Response(
            status_code=reply.status,
            headers=reply.headers,
            stream=_Body(reply.stream),
            extensions=reply.extensions,
        )

    def close(self) -> None:
        self.pool.close()


class AsyncPhaseTransport(httpx.AsyncBaseTransport):
    """An httpx async transport over an httpcore ``AsyncConnectionPool`` or
    ``AsyncHTTPProxy``; runs under asyncio and trio."""

    def __init__(self, pool: httpcore.AsyncConnectionPool | httpcore.AsyncHTTPProxy):
        self.pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _mapped():
            reply = await self.pool.handle_async_request(_core_request(request, request.stream))
        return httpx.Response(
            status_code=reply.status,
            headers=reply.headers,
            stream=_AsyncBody(reply.stream),
            extensions=reply.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


def _settings(base: str, verify: bool | str) -> tuple[httpx.Proxy | None, dict[str, Any]]:
    proxy_url = proxy_for(base)
    proxy = None
    if proxy_url is not None:
        try:
            proxy = httpx.Proxy(proxy_url)
            if proxy.url.scheme not in ("http", "https"):
                raise ValueError(proxy.url.scheme)
        except ValueError:
            raise PhaseConfigError(
                "The environment's proxy (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY) must be an "
                "http:// or https:// URL"
            ) from None
    # Plain http:// without a proxy never does TLS (redirects are not followed), so it skips
    # loading the CA bundle (~50 ms).
    plain = base.startswith("http://") and proxy is None
    limits = default_limits()
    options: dict[str, Any] = {
        "ssl_context": _plain_http_context() if plain else ssl_context(verify),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": True,
        "http2": False,
        "retries": 0,
    }
    return proxy, options


def _proxy_options(proxy: httpx.Proxy) -> dict[str, Any]:
    return {
        "proxy_url": httpcore.URL(
            scheme=proxy.url.raw_scheme,
            host=proxy.url.raw_host,
            port=proxy.url.port,
            target=proxy.url.raw_path,
        ),
        "proxy_auth": proxy.raw_auth,
        "proxy_headers": proxy.headers.raw,
    }


def build_transport(base: str, verify: bool | str) -> PhaseTransport:
    """The sync transport for the API base ``base``."""
    proxy, options = _settings(base, verify)
    backend = DeadlineBackend()
    if proxy is None:
        return PhaseTransport(httpcore.ConnectionPool(network_backend=backend, **options))
    return PhaseTransport(
        httpcore.HTTPProxy(network_backend=backend, **_proxy_options(proxy), **options)
    )


def build_async_transport(base: str, verify: bool | str) -> AsyncPhaseTransport:
    """The async transport for the API base ``base`` (asyncio or trio)."""
    proxy, options = _settings(base, verify)
    backend = AsyncDeadlineBackend()
    if proxy is None:
        return AsyncPhaseTransport(httpcore.AsyncConnectionPool(network_backend=backend, **options))
    return AsyncPhaseTransport(
        httpcore.AsyncHTTPProxy(network_backend=backend, **_proxy_options(proxy), **options)
    )
