"""How the fake's answers look on the wire: JSON encodings, header order and error bodies.

The real server builds responses along two code paths (DRF's renderer: compact JSON; Django's
``JsonResponse``: spaced JSON) and its two APIs order their headers differently, so every
response the fake sends is built here, byte for byte as recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SECRETS_ALLOW = "GET, POST, PUT, DELETE, HEAD, OPTIONS"
READ_ONLY_ALLOW = "GET, HEAD, OPTIONS"
TOKENS_ALLOW = "GET, OPTIONS"
SERVER_ERROR = "Internal server error."

# Django's default error page (django/views/defaults.py), byte for byte as recorded.
_ERROR_PAGE = """
<!doctype html>
<html lang="en">
<head>
  <title>{title}</title>
</head>
<body>
  <h1>{title}</h1><p>{details}</p>
</body>
</html>
"""
NOT_FOUND_HTML = _ERROR_PAGE.format(
    title="Not Found", details="The requested resource was not found on this server."
).encode()
SERVER_ERROR_HTML = _ERROR_PAGE.format(title="Server Error (500)", details="").encode()

_TRAILER = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class FakeResponse:
    """What :meth:`FakePhase.handle` answers.

    Attributes:
        status: The HTTP status code.
        headers: Response headers in the order they are sent.
        body: The response body (already empty for HEAD requests).
        drop: Close the connection without answering.
        hang: Read the request, send nothing for this many seconds, then close.
        raw: Write exactly these bytes to the socket instead of a response, then close.
        close: Close the connection after the response (set when a test lies about
            ``Content-Length``).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    hang: float | None = None
    raw: bytes | None = None
    close: bool = False


class Reply(Exception):
    """Raised inside request handling to answer at once with this response."""

    def __init__(self, response: FakeResponse) -> None:
        super().__init__(response.status)
        self.response = response


def compact(payload: Any) -> bytes:
    """DRF's JSONRenderer: compact, UTF-8, with U+2028/U+2029 escaped."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (possible through a JSON POST body) cannot be UTF-8: escape it.
        return json.dumps(payload, separators=(",", ":")).encode()


def spaced(payload: Any) -> bytes:
    """Django's JsonResponse: default separators, ASCII only."""
    return json.dumps(payload).encode()


# ---------------------------------------------------------------- the public REST API


def standard_headers(content_type: str, length: int, allow: str | None) -> dict[str, str]:
    """The header block of the REST API (and of Django's own pages)."""
    headers = {"Content-Type": content_type}
    if allow is not None:
        headers["Allow"] = allow
    headers.update({"X-Frame-Options": "DENY", "Content-Length": str(length), "Vary": "origin"})
    headers.update(_TRAILER)
    return headers


def with_extra(
    status: int, body: bytes, allow: str | None, extra: Mapping[str, str] | None
) -> FakeResponse:
    """A REST JSON response; ``extra`` headers come right after Content-Type, as recorded."""
    headers = standard_headers("application/json", len(body), allow)
    if extra:
        ordered = {"Content-Type": headers.pop("Content-Type"), **extra}
        headers = {**ordered, **headers}
    return FakeResponse(status, headers, body)


def json_response(status: int, payload: Any, allow: str) -> FakeResponse:
    """A REST JSON response rendered by DRF."""
    return with_extra(status, compact(payload), allow, None)


def error(
    status: int, message: str, allow: str, extra: Mapping[str, str] | None = None
) -> FakeResponse:
    """A REST ``{"error": …}`` response rendered by DRF."""
    return with_extra(status, compact({"error": message}), allow, extra)


def spaced_error(status: int, message: str, allow: str) -> FakeResponse:
    """A REST error the server builds with Django's JsonResponse."""
    return with_extra(status, spaced({"error": message}), allow, None)


def plain_json(status: int, payload: Any) -> FakeResponse:
    """A JsonResponse outside DRF (no Allow header)."""
    return with_extra(status, spaced(payload), None, None)


def html(status: int, body: bytes) -> FakeResponse:
    """One of Django's HTML error pages."""
    return FakeResponse(status, standard_headers("text/html; charset=utf-8", len(body), None), body)


def head_only(method: str, response: FakeResponse) -> FakeResponse:
    """The response without its body when the request was HEAD."""
    if method != "HEAD" or not response.body:
        return response
    return FakeResponse(response.status, response.headers, b"", close=response.close)


# ---------------------------------------------------------------- the E2EE API


@dataclass(frozen=True)
class E2eeWire:
    """Builds responses of one E2EE view: its ``Vary`` and ``Allow`` values are fixed.

    The tokens endpoint says ``Vary: Accept, origin, Cookie`` and ``Allow: GET, OPTIONS``;
    the secrets endpoint ``Vary: Accept, origin`` and the secrets methods.
    """

    vary: str
    allow: str

    def _headers(self, body: bytes, extra: Mapping[str, str] | None, typed: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json"} if typed else {}
        headers.update(extra or {})
        headers.update(
            {
                "Vary": self.vary,
                "Allow": self.allow,
                "X-Frame-Options": "DENY",
                "Content-Length": str(len(body)),
            }
        )
        headers.update(_TRAILER)
        return headers

    def json(self, status: int, payload: Any) -> FakeResponse:
        """A DRF-rendered JSON body (compact)."""
        body = compact(payload)
        return FakeResponse(status, self._headers(body, None, True), body)

    def error(
        self, status: int, message: str, extra: Mapping[str, str] | None = None
    ) -> FakeResponse:
        """A DRF-rendered ``{"error":"…"}`` (compact)."""
        body = compact({"error": message})
        return FakeResponse(status, self._headers(body, extra, True), body)

    def spaced_error(self, status: int, message: str) -> FakeResponse:
        """A ``JsonResponse`` ``{"error": "…"}`` (spaced), as the view's own errors are."""
        body = spaced({"error": message})
        return FakeResponse(status, self._headers(body, None, True), body)

    def empty(self) -> FakeResponse:
        """The 200 without a body (and without Content-Type) that every write answers."""
        return FakeResponse(200, self._headers(b"", None, False), b"")

    def unauthenticated(self, message: str) -> Reply:
        """A 401 with ``WWW-Authenticate: Bearer``, ready to raise."""
        return Reply(self.error(401, message, {"WWW-Authenticate": "Bearer"}))


TOKENS_WIRE = E2eeWire("Accept, origin, Cookie", TOKENS_ALLOW)
SECRETS_WIRE = E2eeWire("Accept, origin", SECRETS_ALLOW)
