"""Token forms, the API base URL, TLS and the HTTP transport.

Everything here runs before a socket is opened, so a bad token or a refused ``http://`` host
fails fast with a :class:`PhaseConfigError` that never echoes the token.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from ._errors import PhaseConfigError, scrubbed

if TYPE_CHECKING:
    from ._retry import Deadline

__all__ = [
    "DEFAULT_HOST",
    "api_base",
    "auth_header",
    "build_transport",
    "deadline_scope",
    "is_loopback",
    "ssl_context",
    "token_fingerprint",
]

DEFAULT_HOST = "https://api.phase.dev"
_SERVICE_PUBLIC = "/service/public"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_VERSION = re.compile(r"v[0-9]+", re.ASCII)
_REST_TYPES = ("ServiceAccount", "Service", "User")
TOKEN_FORMS = (
    "expected pss_service:v2:… or pss_user:v1:… (or the console's 'ServiceAccount <token>')"
)


def _secret(token: str | SecretStr) -> str:
    return token.get_secret_value() if isinstance(token, SecretStr) else token


@scrubbed()
def auth_header(token: str | SecretStr, *, name: str = "PHASE_SERVICE_TOKEN") -> str:
    """The ``Authorization`` header value for a Phase token, in any of its documented forms.

    Raises:
        PhaseConfigError: the token is in no known form. The message never contains it.
    """
    raw = _secret(token).strip()
    parts = raw.split(":")
    if len(parts) >= 3 and parts[0] in ("pss_service", "pss_user"):
        version, value = parts[1], parts[2]
        if not _VERSION.fullmatch(version):
            raise PhaseConfigError(
                f"{name} is not a Phase token: its version segment is not v<number>; {TOKEN_FORMS}"
            )
        if not _HEX64.fullmatch(value):
            raise PhaseConfigError(
                f"{name} is not a Phase token: its third ':'-separated segment must be 64 hex "
                f"digits; {TOKEN_FORMS}"
            )
        if parts[0] == "pss_user":
            kind = "User"
        else:
            kind = "ServiceAccount" if version == "v2" else "Service"
        return f"Bearer {kind} {value}"
    words = raw.split(" ")
    if len(words) == 2 and words[0] in _REST_TYPES and _HEX64.fullmatch(words[1]):
        return f"Bearer {raw}"
    raise PhaseConfigError(f"{name} is not a Phase token: {TOKEN_FORMS}")


def token_kind(header: str) -> str:
    """The token type word of an ``Authorization`` header built by :func:`auth_header`."""
    return header.split(" ")[1]


def token_fingerprint(header: str) -> str:
    """A short, one-way name for a token: cache keys and logs use this, never the token."""
    return hashlib.sha256(header.encode()).hexdigest()[:16]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback ranges 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True  # not "*.localhost": whether those resolve to loopback is up to the resolver
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@scrubbed()
def api_base(host: str | None, *, allow_http: bool = False) -> str:
    """The API base URL for ``PHASE_HOST``.

    ``https://api.phase.dev`` is used as is, a URL already ending in ``/service/public`` as is,
    anything else gets ``/service/public`` appended (self-hosted Phase, and the console URL
    that the Phase CLI documents).

    Raises:
        PhaseConfigError: not an http(s) URL, or plain ``http://`` to a host that is not
            loopback without ``allow_http``.
    """
    url = (host or DEFAULT_HOST).strip().rstrip("/")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        hostname = None
    if parts.scheme not in ("http", "https") or not hostname:
        raise PhaseConfigError(
            "PHASE_HOST must be an http(s) URL such as https://api.phase.dev or "
            "https://phase.example.com (the self-hosted console)"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PhaseConfigError(
            "PHASE_HOST must not contain credentials, a query or a fragment; "
            "give the console or API base URL only"
        )
    if parts.scheme == "http" and not allow_http and not is_loopback(hostname):
        raise PhaseConfigError(
            f"Refusing plain http:// to {hostname}: the token would travel unencrypted. Use "
            "https://, or set PHASE_ALLOW_HTTP=true (phase_allow_http) if you really mean it"
        )
    if url == DEFAULT_HOST or url.endswith(_SERVICE_PUBLIC):
        return url
    return url + _SERVICE_PUBLIC


@functools.cache
def ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """One SSL context per setting per process (building one costs milliseconds).

    Args:
        verify: True for the system/certifi trust store, False to disable verification, or a
            path to a CA bundle file or directory.
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


def _context_for(base: str, verify: bool | str, proxy: str | None) -> ssl.SSLContext:
    """The SSL context a transport needs. Plain http:// to Phase without a proxy never does
    TLS (redirects are not followed), so it skips loading the CA bundle (~50 ms)."""
    if base.startswith("http://") and proxy is None:
        return _plain_http_context()
    return ssl_context(verify)


def _proxy_for(url: str) -> str | None:
    """The environment proxy for a remote URL; never one for loopback."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    import urllib.request

    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy


# --- the deadline of the load running on this thread --------------------------------------------
#
# httpx's read timeout applies to each read, so a server that drips one byte a second keeps a
# request alive forever. The network backend in ``_deadline`` clamps every socket operation to
# the time left before the deadline of the load running on this thread.

_local = threading.local()


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[None]:
    """Make ``deadline`` bound every socket operation on this thread while the block runs."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = deadline
    try:
        yield
    finally:
        _local.deadline = previous


def current_deadline() -> Deadline | None:
    """The deadline of the load running on this thread, if any."""
    return getattr(_local, "deadline", None)


def build_transport(base: str, verify: bool | str) -> httpx.HTTPTransport:
    """The sync transport: TLS verified, no transport-level retries, proxies only off loopback,
    every socket operation bounded by the current load's deadline."""
    import httpcore  # only a process that talks to Phase pays for it

    from ._deadline import DeadlineBackend

    proxy = _proxy_for(base)
    context = _context_for(base, verify, proxy)
    transport = httpx.HTTPTransport(verify=context, retries=0, trust_env=False, proxy=proxy)
    if proxy is None:
        # httpx builds its pool with the default backend; ours differs only in the clamp.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            retries=0,
            network_backend=DeadlineBackend(),
        )
    return transport


def build_async_transport(base: str, verify: bool | str) -> httpx.AsyncHTTPTransport:
    """The async transport (the deadline is enforced with ``asyncio.timeout`` by the caller)."""
    proxy = _proxy_for(base)
    return httpx.AsyncHTTPTransport(
        verify=_context_for(base, verify, proxy), retries=0, trust_env=False, proxy=proxy
    )


def env_flag(value: str | None) -> bool | None:
    """Parse a boolean environment value; None when unset or empty."""
    if value is None or not value.strip():
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise PhaseConfigError(f"expected true or false, got a value of {len(value)} characters")


def parse_verify_ssl(value: str | bool | None) -> bool | str:
    """``PHASE_VERIFY_SSL``: ``false`` disables verification (as the Phase CLI does), a path is
    a CA bundle, anything else verifies."""
    if value is None or isinstance(value, bool):
        return True if value is None else value
    stripped = value.strip()
    if stripped.lower() == "false":
        return False
    if stripped.lower() in ("", "true", "1", "yes", "on"):
        return True
    if stripped.lower() in ("0", "no", "off"):
        return False
    return os.fspath(Path(stripped).expanduser())
