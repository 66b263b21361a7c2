"""Injected faults, the request log and the in-process httpx transport.

None of this is Phase's behaviour: it is what a test arranges (a 503, a delay, a dropped
connection, raw bytes) and observes (the requests received).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus

import httpx

from ._wire import FakeResponse, compact


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. The token is never stored.

    Attributes:
        method: The HTTP method, upper case.
        path: The path as received (still percent-encoded), without the query string.
        query: Query parameters as sent (names unchanged; the last value of a repeated name).
        token_type: ``"ServiceAccount"``, ``"User"`` or ``"Service"`` when the Authorization
            header named one of those types, else None.
        client_port: The client's TCP port (None for the in-process transport).
        headers: Request headers with lower-cased names, without ``authorization``.
        timestamp: When the request arrived, from the fake's clock (``time.monotonic`` unless
            another clock was given).
        body: The request body bytes.
    """

    method: str
    path: str
    query: dict[str, str]
    token_type: str | None
    client_port: int | None
    headers: dict[str, str]
    timestamp: float
    body: bytes = field(default=b"", repr=False)


@dataclass
class Fault:
    status: int | None
    headers: dict[str, str] | None
    body: bytes | None
    remaining: int
    delay: float
    drop: bool
    hang: float | None
    raw: bytes | None


class Faults:
    """The queue of :meth:`FakePhase.fail_next` faults, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self) -> Fault | None:
        """The fault for the next request, if any (counted down)."""
        with self._lock:
            if not self._queue:
                return None
            fault = self._queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._queue.popleft()
            return fault


def fault_response(fault: Fault) -> FakeResponse:
    """The response of a fault with a status."""
    status = fault.status if fault.status is not None else 503
    body = fault.body
    if body is None:
        if status == 500:
            reason = "Internal server error."
        else:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Error"
        body = compact({"error": reason})
    given = fault.headers or {}
    names = {name.lower() for name in given}
    headers: dict[str, str] = {}
    if "content-type" not in names:
        headers["Content-Type"] = "application/json"
    headers.update(given)
    lying = "content-length" in names
    if not lying:
        headers["Content-Length"] = str(len(body))
    elif "connection" not in names:
        # The connection is closed after a response whose length may be a lie: say so, or a
        # keep-alive client could send its next request into the closing socket.
        headers["Connection"] = "close"
    return FakeResponse(status, headers, body, close=lying)


Handle = Callable[[str, str, Mapping[str, str], bytes], FakeResponse]


def transport(handle: Handle) -> httpx.MockTransport:
    """An httpx transport that answers with ``handle`` in process."""

    def handler(request: httpx.Request) -> httpx.Response:
        headers: dict[str, str] = {}
        for name, value in request.headers.multi_items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        target = request.url.raw_path.decode("ascii", errors="replace")
        response = handle(request.method, target, headers, request.content)
        if response.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if response.hang is not None:
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        status, items, body = response.status, list(response.headers.items()), response.body
        if response.raw is not None:
            parsed = _parse_raw_response(response.raw)
            if parsed is None:
                raise httpx.RemoteProtocolError(
                    "Server sent a malformed response.", request=request
                )
            status, items, body = parsed
        elif request.method != "HEAD":
            declared = next((v for k, v in items if k.lower() == "content-length"), None)
            if declared is not None:
                if not declared.strip().isdigit():
                    raise httpx.RemoteProtocolError("Invalid Content-Length.", request=request)
                length = int(declared)
                if length > len(body):
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body",
                        request=request,
                    )
                body = body[:length]
        return httpx.Response(status, headers=items, content=body, request=request)

    return httpx.MockTransport(handler)


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _parse_raw_response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Parse raw response bytes as an HTTP/1.1 client would, or None if it would fail."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        return None
    lines = head.split(b"\r\n")
    status_match = _STATUS_LINE.fullmatch(lines[0])
    if status_match is None:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            return None
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    lengths = {v for k, v in headers if k.lower() == "content-length"}
    if len(lengths) > 1:
        return None
    body = rest
    if lengths:
        declared = lengths.pop()
        if not declared.isdigit() or int(declared) > len(rest):
            return None
        body = rest[: int(declared)]
    return int(status_match.group(1)), headers, body
