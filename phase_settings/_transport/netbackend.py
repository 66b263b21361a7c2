"""httpcore network backends that clamp every connect, read, write and TLS handshake to the
time left before the current load's deadline (sync, and async under asyncio or trio).

They are given to httpcore's pools and proxies through their public ``network_backend=``
argument, so the clamp holds with and without an HTTP proxy, and for the TLS handshake inside
a proxy's ``CONNECT`` tunnel too.

Name resolution is clamped like the rest (:mod:`.resolver`): ``connect_tcp`` looks the host
up itself, waiting at most the time left, then connects to each address in turn. TLS still
verifies the name asked for: httpcore passes it to ``start_tls`` on its own.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpcore

from .._core.deadline import current_deadline
from .resolver import resolve, resolve_async

__all__ = ["AsyncDeadlineBackend", "DeadlineBackend", "clamp"]


def clamp(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """``timeout`` cut to the time left before the current deadline; raises ``expired`` when
    none is left (a zero timeout would make the socket non-blocking, not fail)."""
    deadline = current_deadline()
    if deadline is None:
        return timeout
    remaining = deadline.remaining()
    if remaining <= 0:
        raise expired("the load's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


_CONNECT = httpcore.ConnectTimeout
_READ = httpcore.ReadTimeout
_WRITE = httpcore.WriteTimeout


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, clamp(timeout, _READ))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, clamp(timeout, _WRITE))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._stream.start_tls(ssl_context, server_hostname, clamp(timeout, _CONNECT))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with every socket operation clamped to the deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in resolve(host, port, clamp(timeout, _CONNECT)):
            try:
                return _Stream(
                    self._backend.connect_tcp(
                        address, port, clamp(timeout, _CONNECT), local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, while time is left
        assert error is not None  # resolve() returns at least one address
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - Phase is never on a unix socket
        return _Stream(self._backend.connect_unix_socket(path, clamp(timeout, _CONNECT)))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are ours
        self._backend.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream):
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, clamp(timeout, _READ))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, clamp(timeout, _WRITE))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _AsyncStream(
            await self._stream.start_tls(ssl_context, server_hostname, clamp(timeout, _CONNECT))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend (asyncio or trio) with every socket operation clamped."""

    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await resolve_async(host, port, clamp(timeout, _CONNECT)):
            try:
                return _AsyncStream(
                    await self._backend.connect_tcp(
                        address, port, clamp(timeout, _CONNECT), local_address, socket_options
                    )
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, while time is left
        assert error is not None  # resolve_async() returns at least one address
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:  # pragma: no cover - Phase is never on a unix socket
        return _AsyncStream(await self._backend.connect_unix_socket(path, clamp(timeout, _CONNECT)))

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - retries are ours
        await self._backend.sleep(seconds)
