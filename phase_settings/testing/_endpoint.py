"""The serving half of :class:`FakePhase`: requests in, responses out.

:meth:`Endpoint.handle` records a request, acts out a pending fault, and otherwise routes it to
the REST views, the E2EE views, or the server's few plain pages. The loopback server of
:meth:`Endpoint.serve` and the in-process :meth:`Endpoint.transport` both call it, so they
answer alike.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import parse_qsl, unquote

import httpx

from . import _server, _serving, _throttle
from ._auth import TOKEN_TYPES, route
from ._e2ee import E2eeApi
from ._e2ee_tokens import tokens_view
from ._rest import RestApi
from ._serving import Fault, RecordedRequest
from ._state import Store
from ._wire import NOT_FOUND_HTML, FakeResponse, Reply, head_only, html, plain_json

SERVER_VERSION = "v2.73.2"


class Endpoint:
    """Everything about answering requests; :class:`FakePhase` adds the test-facing state API."""

    def __init__(
        self, legacy_auth: bool = False, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.legacy_auth = legacy_auth
        self._clock = clock
        self._store = Store()
        self._lock = self._store.lock
        self._throttle = _throttle.Throttle(clock)
        self._rest = RestApi(self._store, self._throttle, legacy_auth)
        self._e2ee = E2eeApi(self._store, self._throttle)
        self._faults = _serving.Faults()
        self._requests: list[RecordedRequest] = []
        self._server: _server.FakePhaseServer | None = None
        self._past_errors: list[str] = []
        # Set while a server stops, so that injected delays end at once.
        self._wake = threading.Event()

    # ------------------------------------------------------ throttle, faults, log

    def rate_limit(self, rate: str | None) -> None:
        """Throttle requests as the server's ``RATE_LIMIT_DEFAULT`` does.

        A sliding window per account, shared by every throttled route of both APIs (only
        requests that pass authentication count, and refused ones do not), and one window per
        client IP for the E2EE tokens endpoint (every client of the fake shares it).

        Args:
            rate: ``"<count>/<period>"`` where only the period's first letter counts
                (``s``, ``m``, ``h`` or ``d``: ``"5/minute"`` is ``"5/m"``); None turns the
                throttle off and forgets the windows.

        Raises:
            ValueError: The rate is malformed.
        """
        parsed = None if rate is None else _throttle.parse_rate(rate)
        with self._lock:
            self._throttle.configure(parsed)

    def fail_next(
        self,
        status: int | None = 503,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        times: int = 1,
        delay: float = 0.0,
        drop: bool = False,
        hang: float | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Make the next requests (any route) fail. Calls queue up in order.

        Args:
            status: The status to answer with; None answers normally (after ``delay``).
            headers: Extra response headers. ``Content-Type`` defaults to
                ``application/json``; ``Content-Length`` is computed unless given here (so a
                test can lie about it; the response then says ``Connection: close`` and the
                connection is closed after it).
            body: The body; None gives ``{"error": "<reason>"}`` for the status.
            times: How many requests this applies to.
            delay: Seconds to wait before answering (normally or with ``status``).
            drop: Close the connection without any response.
            hang: Read the request, then send nothing for this many seconds and close.
            raw: Write exactly these bytes (status line, headers, body, possibly malformed),
                then close the connection. Include ``Connection: close`` in well-formed bytes,
                or a keep-alive client may reuse the closing connection for its next request.

        Raises:
            ValueError: Inconsistent arguments.
        """
        actions = sum((drop, hang is not None, raw is not None))
        if actions > 1:
            raise ValueError("choose at most one of drop, hang and raw")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0 or (hang is not None and hang < 0):
            raise ValueError("delay and hang must not be negative")
        if status is None and not actions and not delay:
            raise ValueError("status=None needs a delay, drop, hang or raw")
        if status is not None and not 100 <= status <= 999:
            raise ValueError(f"not an HTTP status: {status}")
        payload = body.encode() if isinstance(body, str) else body
        given = dict(headers) if headers is not None else None
        self._faults.add(Fault(status, given, payload, times, delay, drop, hang, raw))

    def clear_faults(self) -> None:
        """Forget every pending :meth:`fail_next`."""
        self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------ serving

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve real HTTP/1.1 (keep-alive) on 127.0.0.1 while the block runs.

        Stopping takes well under a second, even with idle, delayed or hanging
        connections open: they are shut down.

        Args:
            port: The port; 0 picks a free one.

        Yields:
            The root URL, e.g. ``http://127.0.0.1:54321`` (so ``PHASE_HOST=url`` works).

        Raises:
            RuntimeError: This fake is serving already.
        """
        server = _server.FakePhaseServer(self.handle, port=port)
        with self._lock:
            if self._server is not None:
                raise RuntimeError("this FakePhase is serving already")
            self._server = server
        try:
            url = server.start()
        except BaseException:
            with self._lock:
                self._server = None
            raise
        try:
            yield url
        finally:
            self._wake.set()
            try:
                server.stop()
            finally:
                with self._lock:
                    self._past_errors.extend(server.errors)
                    self._server = None
                self._wake.clear()

    @property
    def url(self) -> str:
        """The root URL while :meth:`serve` runs.

        Raises:
            RuntimeError: Not serving.
        """
        server = self._server
        if server is None or server.url is None:
            raise RuntimeError("this FakePhase is not serving; use `with fake.serve():`")
        return server.url

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of exceptions the fake raised while serving (each answered with a 500).

        A non-empty list means a bug in the fake; the ``fake_phase`` fixture fails on it.
        """
        with self._lock:
            server = self._server
            current = server.errors if server is not None else []
            return [*self._past_errors, *current]

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that calls :meth:`handle` in process (sync and async clients).

        Faults map to what httpx raises on a real socket: ``drop`` and unparseable ``raw``
        bytes raise ``httpx.RemoteProtocolError``, ``hang`` raises ``httpx.ReadTimeout`` at
        once, ``delay`` sleeps.

        Returns:
            The transport, for ``httpx.Client(transport=...)``.
        """
        return _serving.transport(self.handle)

    # ------------------------------------------------------------ request handling

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        client_port: int | None = None,
    ) -> FakeResponse:
        """Answer one request: the core shared by the server and the transport.

        Records the request, applies a pending :meth:`fail_next`, and otherwise answers as
        Phase would.

        Args:
            method: The HTTP method.
            target: The request target: path and query string, as sent.
            headers: Request headers (any case).
            body: The request body.
            client_port: The client's TCP port, for the request log.

        Returns:
            The response, or a fault for the caller to act out (drop, hang, raw bytes).
        """
        method = method.upper()
        if target.startswith(("http://", "https://")):
            # An absolute-form target (a proxy request): keep path and query only.
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash != -1 else "/"
        raw_path, _, query_string = target.partition("#")[0].partition("?")
        lowered = {name.lower(): value for name, value in headers.items()}
        query = dict(parse_qsl(query_string, keep_blank_values=True, errors="replace"))
        self._record(method, raw_path or "/", query, lowered, body, client_port)
        fault = self._faults.take()
        if fault is not None:
            if fault.delay:
                self._wake.wait(fault.delay)
            if fault.drop:
                return FakeResponse(0, drop=True)
            if fault.hang is not None:
                return FakeResponse(0, hang=fault.hang)
            if fault.raw is not None:
                return FakeResponse(0, raw=fault.raw)
            if fault.status is not None:
                return head_only(method, _serving.fault_response(fault))
        try:
            with self._lock:
                response = self._dispatch(
                    method, raw_path or "/", query_string, query, lowered, body
                )
        except Reply as reply:
            response = reply.response
        return head_only(method, response)

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        client_port: int | None,
    ) -> None:
        parts = headers.get("authorization", "").split(" ")
        token_type = (
            parts[1]
            if len(parts) >= 3 and parts[0].lower() == "bearer" and parts[1] in TOKEN_TYPES
            else None
        )
        safe_headers = {name: value for name, value in headers.items() if name != "authorization"}
        record = RecordedRequest(
            method=method,
            path=path,
            query=query,
            token_type=token_type,
            client_port=client_port,
            headers=safe_headers,
            timestamp=self._clock(),
            body=bytes(body),
        )
        with self._lock:
            self._requests.append(record)

    def _dispatch(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> FakeResponse:
        path = unquote(raw_path, errors="replace")
        found = route(path, self.legacy_auth)
        if found is None:
            if self.legacy_auth and not path.endswith("/") and route(path + "/", True):
                # Django's APPEND_SLASH redirect, which servers before v2.69.0 had.
                location = raw_path + "/" + (f"?{query_string}" if query_string else "")
                return FakeResponse(
                    301,
                    {
                        "Content-Type": "text/html; charset=utf-8",
                        "Location": location,
                        "X-Frame-Options": "DENY",
                        "Content-Length": "0",
                    },
                )
            return html(404, NOT_FOUND_HTML)
        name, detail_id = found
        if name == "root":
            message = (
                "API is alive. Please see https://docs.phase.dev/public-api for documentation "
                "on available endpoints."
            )
            return plain_json(200, {"message": message, "status": "ok"})
        if name == "health":
            return plain_json(200, {"status": "alive", "version": SERVER_VERSION})
        if name == "e2ee_tokens":
            return tokens_view(self._store, self._throttle, method, headers)
        if name == "e2ee_secrets":
            return self._e2ee.view(method, query, headers, body)
        return self._rest.view(name, detail_id, method, query, headers, body)
