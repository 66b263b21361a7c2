"""T9: fork safety. After ``os.fork()`` the child never uses the parent's connections or a lock
some parent thread held; it may reuse cached values; the parent keeps working.

Every request carries a test-only ``X-Test-Pid`` header (added by wrapping ``httpx.Client.send``)
and the server below numbers its TCP connections, so a connection used by two processes shows
up as one connection number with two PIDs. (Client ports are not enough: on loopback Linux
reuses a closed connection's port at once, so two children that ran one after the other can
share a port without sharing a connection.)
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import phase_settings
import phase_settings._load.runtime
from phase_settings import LiveSettings, load_status

from .conftest import (
    FORK_WARNING,
    RawServer,
    fork_child,
    read_head,
    settings_class,
    wait_child,
)

CYCLES = 50
CHILD_TIMEOUT = 5.0
TOKEN = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32


@dataclass
class KeepAliveServer:
    """Answers every GET on a kept-alive connection with DATABASE_URL=``value``; records
    (connection number, X-Test-Pid) per request; ``delay_next`` holds one answer back."""

    value: str = "v0"
    version: int = 1
    delay_next: float = 0.0
    records: list[tuple[int, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def handle(self, conn: socket.socket, head: bytes, srv: RawServer) -> None:
        number = next(self._numbers)
        conn.settimeout(30)
        while head and not srv.stopping.is_set():
            pid = "?"
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("x-test-pid:"):
                    pid = line.split(":", 1)[1].strip()
            with self._lock:
                self.records.append((number, pid))
                delay, self.delay_next = self.delay_next, 0.0
                item = {"id": "1", "key": "DATABASE_URL", "value": self.value, "path": "/"}
                body = json.dumps([{**item, "version": self.version}]).encode()
            if delay and srv.stopping.wait(delay):
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            head = read_head(conn)

    def set(self, value: str) -> None:
        with self._lock:
            self.value, self.version = value, self.version + 1

    def requests(self) -> int:
        with self._lock:
            return len(self.records)

    def by_connection(self) -> tuple[dict[int, set[str]], dict[str, list[int]]]:
        pids_of: dict[int, set[str]] = defaultdict(set)
        connections_of: dict[str, list[int]] = defaultdict(list)
        with self._lock:
            for number, pid in self.records:
                pids_of[number].add(pid)
                connections_of[pid].append(number)
        return pids_of, connections_of


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KeepAliveServer, str]]:
    original = httpx.Client.send

    def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        request.headers["X-Test-Pid"] = str(os.getpid())
        return original(client, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    recorder = KeepAliveServer()
    with RawServer(recorder.handle) as raw:
        yield recorder, raw.url


def _settings(url: str) -> type[Any]:
    return settings_class(
        None,
        {"database_url": str},
        phase_token=TOKEN,
        phase_host=url,
        phase_app_id="app",
        phase_env="development",
    )


def _hold(lock: Any, held: threading.Event, release: threading.Event) -> None:
    with lock:
        held.set()
        release.wait(5)


@pytest.mark.filterwarnings(FORK_WARNING)
def test_fork_cycles_share_no_connection_and_never_hang(
    server: tuple[KeepAliveServer, str],
) -> None:
    recorder, url = server
    Settings = _settings(url)
    live = LiveSettings(Settings)  # the parent's pool is warm from here on
    parent = str(os.getpid())
    modes: list[str] = []
    child_times: list[float] = []
    children: list[str] = []

    def child(force: str) -> dict[str, Any]:
        cached = Settings().database_url  # type: ignore[attr-defined]
        if force == "clear_cache":
            phase_settings.clear_cache()
            fresh = Settings().database_url  # type: ignore[attr-defined]
        else:
            child_live = LiveSettings(Settings)
            child_live.refresh()
            fresh = child_live.current.database_url  # type: ignore[attr-defined]
        return {"pid": os.getpid(), "cached": cached, "fresh": fresh}

    for cycle in range(CYCLES):
        mode = ("plain", "plain", "cache lock held", "clients lock held", "mid-fetch")[cycle % 5]
        modes.append(mode)
        recorder.set(f"v{cycle}")
        helper: threading.Thread | None = None
        release = threading.Event()
        if mode in ("cache lock held", "clients lock held"):
            lock = (
                phase_settings._load.runtime.runtime.cache._lock
                if mode == "cache lock held"
                else phase_settings._load.runtime.runtime._lock
            )
            held = threading.Event()
            helper = threading.Thread(target=_hold, args=(lock, held, release), daemon=True)
            helper.start()
            assert held.wait(5)
        elif mode == "mid-fetch":
            asked = recorder.requests()
            recorder.delay_next = 0.3
            helper = threading.Thread(target=live.refresh, daemon=True)
            helper.start()
            limit = time.monotonic() + 5
            while recorder.requests() == asked:  # the parent's fetch is in flight
                assert time.monotonic() < limit
                time.sleep(0.002)
        force = "clear_cache" if cycle % 2 else "refresh"
        forked = fork_child(lambda force=force: child(force))  # type: ignore[misc]
        release.set()
        if mode == "plain":
            live.refresh()  # the parent refreshes while the child does
        code, payload, elapsed = wait_child(forked, CHILD_TIMEOUT)
        if helper is not None:
            helper.join(5)
        assert code == 0, payload
        result = payload["result"]
        assert result["fresh"] == f"v{cycle}", (mode, result)
        child_times.append(elapsed)
        children.append(str(result["pid"]))

    # the parent still works after its children exited, on its own kept-alive connection
    before = set(recorder.by_connection()[1][parent])
    recorder.set("after")
    live.refresh()
    assert live.current.database_url == "after"  # type: ignore[attr-defined]
    assert load_status(Settings).source == "phase"
    pids_of, connections_of = recorder.by_connection()
    assert connections_of[parent][-1] in before, "the parent lost its connection to a child"

    shared = {number: pids for number, pids in pids_of.items() if len(pids) > 1}
    assert shared == {}, f"connections used by two processes: {shared}"
    assert all(connections_of.get(pid) for pid in children), "a child made no request"
    child_requests = sum(len(connections_of[pid]) for pid in children)
    assert max(child_times) < CHILD_TIMEOUT
    print(
        f"[T9] {CYCLES} fork cycles ({modes.count('plain')} plain, "
        f"{modes.count('cache lock held')} with the cache lock held, "
        f"{modes.count('clients lock held')} with the clients lock held, "
        f"{modes.count('mid-fetch')} mid-fetch): {len(pids_of)} connections, "
        f"{len(shared)} used by two processes; children made {child_requests} requests; "
        f"slowest child {max(child_times) * 1000:.0f} ms; parent OK afterwards"
    )


@pytest.mark.filterwarnings(FORK_WARNING)
def test_a_started_refresher_restarts_in_the_child(server: tuple[KeepAliveServer, str]) -> None:
    """DESIGN §5: a started ``LiveSettings`` restarts its thread in a forked child (gunicorn
    ``--preload``); the child's refresh uses the child's own connection."""
    recorder, url = server
    recorder.set("v1")
    live = LiveSettings(_settings(url))
    live.start(interval=60)
    try:

        def child() -> dict[str, Any]:
            names = [t.name for t in threading.enumerate() if t.is_alive()]
            live.refresh()
            value = live.current.database_url  # type: ignore[attr-defined]
            live.stop()
            return {"threads": names, "value": value}

        recorder.set("v2")
        code, payload, elapsed = wait_child(fork_child(child), CHILD_TIMEOUT)
    finally:
        live.stop()
    assert code == 0, payload
    result = payload["result"]
    assert any(name.startswith("phase-settings-refresh-") for name in result["threads"])
    assert result["value"] == "v2"
    pids_of, _ = recorder.by_connection()
    assert all(len(pids) == 1 for pids in pids_of.values())
    assert live.current.database_url == "v1"  # type: ignore[attr-defined]  # the parent's own
    print(f"[T9] started refresher restarted in the child; child done in {elapsed * 1000:.0f} ms")
