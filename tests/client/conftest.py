"""Fixtures of the client tests: a proxy that never answers, for every proxy variable."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy")


def pending_connections(listener: socket.socket) -> int:
    """How many connections wait in ``listener``'s backlog (accepted and closed here)."""
    listener.setblocking(False)
    count = 0
    for _ in range(64):
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            break
        conn.close()
        count += 1
    return count


@pytest.fixture
def proxy_everything(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Every proxy variable names a loopback port that never answers; nothing is exempt."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield listener
    finally:
        listener.close()
