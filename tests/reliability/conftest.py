"""Shared helpers of the reliability battery (RELIABILITY.md T1-T16).

- :class:`RawServer`: a TCP server on 127.0.0.1 whose connections are handled by test code,
  for faults the HTTP fake cannot act out (resets, drips, silence, TLS).
- :func:`closed_port`: a loopback port nothing listens on (connection refused).
- :class:`LogCapture` and :class:`CanaryScanner`: the leak sweep's eyes (T10), also used to
  count WARNINGs.
- :func:`settings_class`: a ``PhaseSettings`` subclass built for one test.

- :func:`report_figure`: a figure of the battery (the T10 sweep's counts) for the test report,
  printed only with ``-s``.

Every test of the battery runs with a short deadline (``DEADLINE``) so slow scenarios cost
seconds; time bounds allow ``MARGIN`` on top of it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from phase_settings import PhaseSettings, PhaseSettingsConfigDict

from ..conftest import Phase

DEADLINE = 2.0
MARGIN = 0.5
PACKAGE_DIR = str(Path(__import__("phase_settings").__file__).resolve().parent)

# on Python 3.12+ fork() in a threaded process warns; the fork tests filter exactly that.
FORK_WARNING = (
    "ignore:This process .* is multi-threaded, use of fork\\(\\) may lead to deadlocks in the "
    "child.:DeprecationWarning"
)


# --- settings classes ---------------------------------------------------------------------------


def settings_class(
    phase: Phase | None,
    fields: dict[str, Any],
    *,
    name: str = "Settings",
    sources: Callable[..., tuple[Any, ...]] | None = None,
    **config: Any,
) -> type[PhaseSettings]:
    """A ``PhaseSettings`` subclass with these fields (``name: type`` or ``(type, default)``)
    pointing at ``phase`` (or configured only by ``config``), with ``phase_deadline`` 2 s."""
    namespace: dict[str, Any] = {"__annotations__": {}}
    for field_name, spec in fields.items():
        annotation, *default = spec if isinstance(spec, tuple) else (spec,)
        namespace["__annotations__"][field_name] = annotation
        if default:
            namespace[field_name] = default[0]
    base = phase.config() if phase is not None else {}
    merged = {"phase_deadline": DEADLINE, **base, **config}
    namespace["model_config"] = PhaseSettingsConfigDict(**merged)  # type: ignore[typeddict-item]
    if sources is not None:
        namespace["settings_customise_sources"] = classmethod(sources)
    return type(name, (PhaseSettings,), namespace)


def timed(call: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run ``call``: its result (or None), the exception it raised (or None), seconds taken."""
    start = time.monotonic()
    try:
        result = call()
    except Exception as exc:
        return None, exc, time.monotonic() - start
    return result, None, time.monotonic() - start


def report_figure(
    request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    """Keep ``line`` as a ``figure`` property of the test's report (``--junitxml`` writes it)
    and print it at once only when output is not captured (``-s``): a run's output stays one
    line of dots, and ``pytest tests/reliability -s`` still shows every figure."""
    request.node.user_properties.append(("figure", line))
    if request.config.getoption("capture") == "no":
        with capsys.disabled():
            print(line)


# --- raw HTTP bytes -----------------------------------------------------------------------------


def http_response(
    status: int = 200,
    body: bytes = b"[]",
    headers: Iterable[tuple[str, str]] = (("Content-Type", "application/json"),),
    *,
    reason: str = "OK",
    content_length: bool = True,
) -> bytes:
    """One HTTP/1.1 response with ``Connection: close``."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def secrets_json(pairs: dict[str, str], path: str = "/") -> bytes:
    """A ``/v1/secrets/`` reply body holding these keys and values."""
    items = [
        {"id": f"id-{i}", "key": k, "value": v, "path": path, "version": 1, "type": "secret"}
        for i, (k, v) in enumerate(pairs.items())
    ]
    return json.dumps(items).encode()


# --- a raw TCP server ---------------------------------------------------------------------------

Handler = Callable[[socket.socket, bytes, "RawServer"], None]


class RawServer:
    """A TCP server on 127.0.0.1: each connection gets a thread that reads the request head and
    calls ``handler(conn, request_head, server)``; the connection is closed afterwards.

    Args:
        handler: what to do with a connection (see the handler factories below); it may be
            replaced between requests through :attr:`handler`.
        ssl_context: wrap accepted connections in TLS (server side) before reading.
        read_request: read the request head before calling the handler.

    Attributes:
        connections: accepted connections so far.
        requests: the request heads received (bytes).
        stopping: set when the server stops; handlers wait on it instead of sleeping.
        errors: exceptions raised by handlers (TLS failures are expected there).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        read_request: bool = True,
    ):
        self.handler = handler
        self.ssl_context = ssl_context
        self.read_request = read_request
        self.connections = 0
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="raw-server", daemon=True)

    def __enter__(self) -> RawServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(2)
        self._listener.close()
        with self._lock:
            still_open = list(self._open)
        for conn in still_open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(2)

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._open.add(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw_conn: socket.socket) -> None:
        conn = raw_conn
        try:
            conn.settimeout(5)
            if self.ssl_context is not None:
                conn = self.ssl_context.wrap_socket(raw_conn, server_side=True)
                with self._lock:
                    self._open.add(conn)
            head = read_head(conn) if self.read_request else b""
            with self._lock:
                self.requests.append(head)
            self.handler(conn, head, self)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            with self._lock:
                self._open.discard(raw_conn)
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()
            with contextlib.suppress(OSError):
                raw_conn.close()


def read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    """Read up to the end of the request head (the body of a GET is empty)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def send(data: bytes) -> Handler:
    """Write ``data`` and close."""

    def handler(conn: socket.socket, _head: bytes, _srv: RawServer) -> None:
        conn.sendall(data)

    return handler


def silent(conn: socket.socket, _head: bytes, srv: RawServer) -> None:
    """Accept and read the request, never write (until the server stops)."""
    srv.stopping.wait(30)


def drip(data: bytes, interval: float) -> Handler:
    """Write ``data`` one byte every ``interval`` seconds."""

    def handler(conn: socket.socket, _head: bytes, srv: RawServer) -> None:
        for i in range(len(data)):
            if srv.stopping.wait(interval):
                return
            conn.sendall(data[i : i + 1])

    return handler


def stall_after(data: bytes) -> Handler:
    """Write ``data`` (say, the headers), then stall until the server stops."""

    def handler(conn: socket.socket, _head: bytes, srv: RawServer) -> None:
        conn.sendall(data)
        srv.stopping.wait(30)

    return handler


def reset_after(data: bytes) -> Handler:
    """Write ``data``, then reset the connection (RST, not FIN)."""

    def handler(conn: socket.socket, _head: bytes, _srv: RawServer) -> None:
        if data:
            conn.sendall(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return handler


def closed_port() -> int:
    """A loopback port with no listener: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SendCounter:
    """Counts the requests the client hands to httpx (``httpx.Client.send``): with the server's
    count, it gives the amplification of any retry layer below the client's own."""

    def __init__(self, monkeypatch: Any) -> None:
        import httpx

        self.count = 0
        self._lock = threading.Lock()
        original = httpx.Client.send

        def counting(client: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
            return original(client, *args, **kwargs)

        monkeypatch.setattr(httpx.Client, "send", counting)


class VirtualTime:
    """A monotonic clock that jumps forward when the client sleeps: storms run in milliseconds
    while the deadline arithmetic sees the waits."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds


# --- forked children ------------------------------------------------------------------------------


@dataclass
class Child:
    pid: int
    read_fd: int
    started: float


def fork_child(work: Callable[[], Any]) -> Child:
    """Fork; the child runs ``work()``, writes its JSON result (small) to a pipe and
    ``os._exit``s: 0 when ``work`` returned, 1 when it raised (the error's repr is sent)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_fd)
            try:
                payload: Any = {"result": work()}
                code = 0
            except BaseException as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_fd, json.dumps(payload, default=str).encode()[:60000])
        finally:
            os._exit(code)
    os.close(write_fd)
    return Child(pid, read_fd, time.monotonic())


def wait_child(child: Child, timeout: float = 5.0) -> tuple[int, Any, float]:
    """Wait for a forked child: (exit code, its payload, seconds since the fork). A child
    still running after ``timeout`` is killed and the test fails."""
    limit = child.started + timeout
    try:
        while True:
            pid, status = os.waitpid(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > limit:
                os.kill(child.pid, signal.SIGKILL)
                os.waitpid(child.pid, 0)
                raise AssertionError(f"child {child.pid} still running after {timeout} s")
            time.sleep(0.002)
        elapsed = time.monotonic() - child.started
        chunks = []
        while chunk := os.read(child.read_fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(child.read_fd)
    data = b"".join(chunks)
    return os.waitstatus_to_exitcode(status), json.loads(data) if data else None, elapsed


# --- logs and canaries --------------------------------------------------------------------------


class LogCapture(logging.Handler):
    """Keeps every record, formatted with its exception and stack (what a log file would get)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        text = self.format(record)
        self.texts.append(f"{text} args={record.args!r}")

    def warnings(self, logger_prefix: str = "phase_settings") -> list[logging.LogRecord]:
        return [
            r
            for r in self.records
            if r.levelno == logging.WARNING and r.name.startswith(logger_prefix)
        ]


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[LogCapture]:
    """Capture every log record of the process (root logger at ``level``: httpx, httpcore,
    phase_settings)."""
    handler = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _b64_forms(data: bytes) -> list[str]:
    """Base64 fingerprints of ``data`` wherever it sits in a longer encoded buffer: the
    encoding of the middle part is the same for a given offset modulo 3."""
    forms = []
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + data).decode()
            inner = encoded[4 if offset else 0 : -4]
            if len(inner) >= 12:
                forms.append(inner.rstrip("="))
    return forms


def encoded_forms(secret: str) -> set[str]:
    """``secret`` raw, JSON-escaped, percent-encoded, repr-escaped and base64-encoded."""
    data = secret.encode()
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        repr(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        *_b64_forms(data),
    }
    return {f for f in forms if f}


@dataclass
class CanaryScanner:
    """Looks for canaries (token parts, secret values) in every text it is given."""

    canaries: dict[str, str]  # label -> secret text
    scanned_bytes: int = 0
    scanned_texts: int = 0
    hits: list[tuple[str, str, str]] = field(default_factory=list)  # label, form, where

    def __post_init__(self) -> None:
        self._forms = {label: encoded_forms(value) for label, value in self.canaries.items()}

    def scan(self, where: str, text: str) -> None:
        self.scanned_texts += 1
        self.scanned_bytes += len(text.encode("utf-8", "replace"))
        lowered = text.lower()
        for label, forms in self._forms.items():
            for form in forms:
                # hex tokens may be shown upper-cased; everything else is matched as is
                if form in text or (form.isalnum() and form.lower() in lowered):
                    self.hits.append((label, form, f"{where}: …{_around(text, form)}…"))
                    break

    def scan_exception(self, where: str, exc: BaseException) -> None:
        """str, repr, the formatted traceback, and the locals of the library's own frames."""
        self.scan(f"{where} str", str(exc))
        self.scan(f"{where} repr", repr(exc))
        self.scan(f"{where} traceback", "".join(traceback.format_exception(exc)))
        for frame_text in library_frame_locals(exc):
            frame = frame_text.split("\n", 1)[0].removeprefix(PACKAGE_DIR + "/")
            self.scan(f"{where}: locals of {frame}", frame_text)


def _around(text: str, form: str) -> str:
    at = text.find(form)
    if at < 0:
        at = text.lower().find(form.lower())
    return text[max(0, at - 40) : at + len(form) + 10]


def library_frame_locals(exc: BaseException) -> list[str]:
    """``TracebackException(capture_locals=True)`` output of the frames in phase_settings, for
    the exception and every exception chained to it."""
    out: list[str] = []
    seen: set[int] = set()
    te: traceback.TracebackException | None = traceback.TracebackException.from_exception(
        exc, capture_locals=True
    )
    pending = [te]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            if frame.filename.startswith(PACKAGE_DIR) and "testing" not in frame.filename:
                shown = "\n".join(f"  {k} = {v}" for k, v in (frame.locals or {}).items())
                out.append(f"{frame.filename}:{frame.lineno} in {frame.name}\n{shown}")
        pending += [current.__cause__, current.__context__]
    return out


# --- TLS ------------------------------------------------------------------------------------------


def make_self_signed(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (generated now).

    Returns:
        (ca.pem, server.pem, server.key)
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "phase-settings test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path
