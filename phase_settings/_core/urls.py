"""URLs: the API base for ``PHASE_HOST``, the loopback rule and the environment-proxy rule.

No HTTP library is imported: a refused host fails before any socket is opened.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from urllib.parse import urlsplit

from .._defaults import PHASE_CLOUD
from .._errors import PhaseConfigError, scrubbed

__all__ = ["DEFAULT_HOST", "api_base", "is_loopback", "proxy_for"]

DEFAULT_HOST = PHASE_CLOUD
_SERVICE_PUBLIC = "/service/public"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback ranges 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost":
        return True  # not "*.localhost": whether those resolve to loopback is up to the resolver
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


def proxy_for(url: str) -> str | None:
    """The environment proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, minus
    ``NO_PROXY``) for a remote URL; never one for a loopback host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy
