"""A threaded HTTP/1.1 server on 127.0.0.1 that hands every request to ``FakePhase.handle``.

Keep-alive is supported (``protocol_version = "HTTP/1.1"``); each connection has its own
daemon thread. :meth:`FakePhaseServer.stop` returns quickly even with idle keep-alive
connections or hanging requests open: it wakes every waiting handler and shuts every
connection down instead of waiting for clients to go away.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._wire import FakeResponse

__all__ = ["FakePhaseServer"]

_MAX_BODY_BYTES = 64 * 1024 * 1024
_INTERNAL_ERROR = b'{"error":"Internal server error."}'


class _Handle(Protocol):
    def __call__(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        client_port: int | None = None,
    ) -> FakeResponse: ...


class _BadRequest(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakePhase"
    sys_version = ""
    # An idle keep-alive connection is closed after this many seconds.
    timeout = 60
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body are written separately: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK would add ~40 ms to every response.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler looks up do_<METHOD>: every method reaches the fake, which
        # decides (PATCH on /v1/secrets/ is a 403 there, not a 501 here).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as error:
            self.close_connection = True
            self.send_error(400, str(error))
            return
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        try:
            response = self.server.phase_handle(
                self.command, self.path, headers, body, client_port=self.client_address[1]
            )
        except Exception:
            self.server.errors.append(traceback.format_exc())
            headers_500 = [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(_INTERNAL_ERROR))),
            ]
            self._send(500, headers_500, _INTERNAL_ERROR, False)
            return
        if response.drop:
            self.close_connection = True
            return
        if response.hang is not None:
            self.close_connection = True
            self.server.stopping.wait(response.hang)
            return
        if response.raw is not None:
            self.close_connection = True
            self.wfile.write(response.raw)
            self.wfile.flush()
            return
        headers_out = list(response.headers.items())
        self._send(response.status, headers_out, response.body, response.close)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, close: bool) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        self.wfile.flush()
        if close:
            self.close_connection = True

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        if not declared.strip().isdigit():
            raise _BadRequest("invalid Content-Length")
        length = int(declared)
        if length > _MAX_BODY_BYTES:
            raise _BadRequest("request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                break
            total += size
            if total > _MAX_BODY_BYTES:
                raise _BadRequest("request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)
        # Trailer fields end with an empty line (or the connection's end); a bounded wait.
        for _ in range(100):
            trailer = self.rfile.readline(8192)
            if trailer in (b"\r\n", b"\n", b""):
                break
        return b"".join(chunks)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handle: _Handle) -> None:
        self.phase_handle = handle
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._process,
            args=(request, client_address),
            name="fake-phase-connection",
            daemon=True,
        )
        with self._lock:
            self._workers.add(thread)
        thread.start()

    def _process(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._workers.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away mid-response is normal here (tests drop connections).
        return

    def track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)
        if self.stopping.is_set():
            _shutdown(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)

    def join_threads(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._workers)
        for thread in threads:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            thread.join(remaining)


def _shutdown(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class FakePhaseServer:
    """Serve a request handler over HTTP/1.1 on 127.0.0.1 in a background thread.

    Args:
        handle: Called for every request as ``handle(method, target, headers, body,
            client_port=port)``; returns a ``FakeResponse``.
        port: The port to listen on; 0 picks a free one.
    """

    def __init__(self, handle: _Handle, *, port: int = 0) -> None:
        self._handle = handle
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions raised by the handler (each answered with a 500)."""
        return list(self._httpd.errors) if self._httpd is not None else []

    def start(self) -> str:
        """Start listening and serving.

        Returns:
            The root URL, ``http://127.0.0.1:<port>``.

        Raises:
            RuntimeError: Started already.
        """
        if self._httpd is not None:
            raise RuntimeError("the server is running already")
        httpd = _HTTPServer(("127.0.0.1", self._port), self._handle)
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-phase-server",
            daemon=True,
        )
        self._httpd, self._thread = httpd, thread
        thread.start()
        self.url = f"http://127.0.0.1:{httpd.server_port}"
        return self.url

    def stop(self, timeout: float = 0.5) -> None:
        """Stop serving and close every connection; returns within about ``timeout`` + 0.1 s.

        Args:
            timeout: How long to wait for connection threads to finish after their sockets
                are shut down (they are daemon threads either way).
        """
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        thread.join(timeout)
        httpd.server_close()
        httpd.close_connections()
        httpd.join_threads(timeout)
        self._httpd = self._thread = None
        self.url = None
