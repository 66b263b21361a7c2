"""Transport failures classified by type, in one table, into the core's plain kinds
(:mod:`.._core.failures`); the drivers call :func:`classify_failure` and the core turns the
kind into the error a user reads.

A timeout at any stage (connect, TLS handshake, read, write, through a proxy or not) and a
dropped connection are transient: a :class:`PhaseConnectionError`, retried and eligible for
fallback, whose cause is named when known: the resolver's answer ("name not known now:
<host>" for EAI_NONAME, "name not resolved now: <host>" for EAI_AGAIN or a lookup past the
time left), "connection refused", "connection reset". Only a real certificate or TLS protocol
failure is a :class:`PhaseTLSError`; a peer that answers with bytes that are not HTTP is a
:class:`PhaseResponseError` (a wrong ``PHASE_HOST``). No message text is read: causes are
read from the exception types in the cause chain."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpcore
import httpx

from .._core.failures import Failure, Kind, Stage
from .resolver import NameNotResolved, ResolverTimeout

__all__ = ["Failure", "Kind", "Stage", "classify_failure"]


# ssl errors that mean the connection went away mid-handshake, not that TLS failed
_SSL_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)
_NOT_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError, httpx.ProxyError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _cause(exc: BaseException) -> tuple[str | None, str | None]:
    """The cause of a connection failure in words, and the host the resolver does not know."""
    for link in _chain(exc):
        if isinstance(link, NameNotResolved):
            if link.unknown:
                return f"name not known now: {link.host}", link.host
            return f"name not resolved now: {link.host}", None
        if isinstance(link, ResolverTimeout):
            return f"name not resolved now: {link.host}", None
        if isinstance(link, ConnectionRefusedError):
            return "connection refused", None
        if isinstance(link, ConnectionResetError):
            return "connection reset", None
    return None, None


def _connection(exc: BaseException, reached_server: bool, timeout: bool) -> Failure:
    cause, unknown_host = _cause(exc)
    return Failure(Kind.CONNECTION, reached_server, timeout, cause, unknown_host)


def classify_failure(exc: BaseException, stage: Stage) -> Failure:
    """What a transport exception means. ``stage`` is ``"send"`` until the reply's head has
    arrived, ``"body"`` while its body is read.

    The rows, first match wins:

    ===========================================  ==========  ======================
    exception                                    kind        reached the server
    ===========================================  ==========  ======================
    timeout (httpx or builtin), any stage        CONNECTION  not for connect/pool
    ssl error in the cause chain, but not EOF    TLS         no
    httpx.UnsupportedProtocol / InvalidURL       BAD_URL     no
    httpx.DecodingError                          DECODING    yes
    RemoteProtocolError caused by the HTTP       NOT_HTTP    yes
    parser, before the head arrived
    other RemoteProtocolError (a disconnect,     CONNECTION  yes
    a truncated body)
    httpx.ConnectError / ProxyError              CONNECTION  no
    any other httpx.TransportError or OSError    CONNECTION  yes
    ===========================================  ==========  ======================
    """
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return _connection(exc, not isinstance(exc, _NOT_SENT), True)
    for link in _chain(exc):
        if isinstance(link, ssl.SSLError) and not isinstance(link, _SSL_TRANSIENT):
            return Failure(Kind.TLS, False, False)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return Failure(Kind.BAD_URL, False, False)
    if isinstance(exc, httpx.DecodingError):
        return Failure(Kind.DECODING, True, False)
    if isinstance(exc, httpx.RemoteProtocolError):
        # httpx and httpcore raise their own error for a peer that closed without a reply; the
        # HTTP parser's error, as the cause, means the bytes that came were not HTTP.
        parser_error = any(
            not isinstance(link, httpx.HTTPError | httpcore.ProtocolError) for link in _chain(exc)
        )
        if stage == "send" and parser_error:
            return Failure(Kind.NOT_HTTP, True, False)
        return _connection(exc, True, False)
    return _connection(exc, not isinstance(exc, _NOT_SENT), False)
