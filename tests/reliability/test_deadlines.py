"""T14: deadlines against slow servers. Each startup load ends by its deadline (2 s) + 0.5 s
with a typed error, or with the .env fallback when one is configured, however the server
stalls: a one-byte-per-second drip (the per-read timeout alone would never fire), a byte every
1.5 s (the read in progress at the deadline must be cut to the time left), silence
after accepting, headers then silence, ``Retry-After: 60`` on every answer.

The scenarios are independent (each has its own server, so its own cache key) and spend their
time waiting on sockets, so they run side by side: the test costs one deadline, not twenty.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from phase_settings import PhaseConnectionError, PhaseError, PhaseRateLimitError, aload, load_status
from phase_settings.testing import FakePhase

from ..conftest import Phase
from .conftest import (
    DEADLINE,
    MARGIN,
    RawServer,
    closed_port,
    drip,
    http_response,
    secrets_json,
    settings_class,
    silent,
    stall_after,
    timed,
)

BODY = secrets_json({"DATABASE_URL": "from-phase"})
VALID = http_response(200, BODY)
HEAD_ONLY = VALID[: VALID.index(b"\r\n\r\n") + 4]
DOTENV_VALUE = "from-dotenv"


@contextlib.contextmanager
def slow_server(kind: str) -> Iterator[tuple[str, str, str]]:
    """(host, token, app id) of a server that stalls in one way."""
    token = "pss_service:v2:" + "ab" * 32 + ":" + "cd" * 32
    handlers: dict[str, Any] = {
        "drip 1 byte/s": drip(VALID, 1.0),
        # lands past the deadline unless every read is cut to the time left (a read timeout of
        # the whole deadline, set when the request starts, would wait for the byte at 3 s)
        "drip 1 byte every 1.5 s": drip(VALID, 1.5),
        "drip 20 bytes/s (headers fast, body slow)": None,
        "accept, never write": silent,
        "headers, then stall": stall_after(HEAD_ONLY),
        "half the body, then stall": stall_after(VALID[: len(VALID) - len(BODY) // 2]),
    }
    if kind == "retry-after 60 on every answer":
        fake = FakePhase()
        app_id = fake.add_app("demo")
        token = fake.add_service_account(envs=None)
        fake.fail_next(429, headers={"Retry-After": "60"}, times=1000)
        with fake.serve() as url:
            yield url, token, app_id
        return
    if kind == "drip 20 bytes/s (headers fast, body slow)":

        def handler(conn: Any, head: bytes, srv: RawServer) -> None:
            conn.sendall(HEAD_ONLY)
            drip(BODY, 0.05)(conn, head, srv)

        handlers[kind] = handler
    with RawServer(handlers[kind]) as server:
        yield server.url, token, "app"


KINDS = [
    "drip 1 byte/s",
    "drip 1 byte every 1.5 s",
    "drip 20 bytes/s (headers fast, body slow)",
    "accept, never write",
    "headers, then stall",
    "half the body, then stall",
    "retry-after 60 on every answer",
]
EXPECTED = {kind: PhaseConnectionError for kind in KINDS} | {
    "retry-after 60 on every answer": PhaseRateLimitError
}


def run_case(kind: str, with_dotenv: bool, use_async: bool, folder: Path) -> dict[str, Any]:
    with slow_server(kind) as (host, token, app_id):
        config: dict[str, Any] = {
            "phase_token": token,
            "phase_host": host,
            "phase_app_id": app_id,
            "phase_env": "development",
        }
        if with_dotenv:
            config["env_file"] = str(folder / ".env")
        Settings = settings_class(None, {"database_url": str}, **config)
        call: Callable[[], Any] = (
            (lambda: asyncio.run(aload(Settings))) if use_async else Settings  # type: ignore[arg-type]
        )
        settings, error, elapsed = timed(call)
        return {
            "kind": kind,
            "dotenv": with_dotenv,
            "async": use_async,
            "value": getattr(settings, "database_url", None),
            "error": error,
            "elapsed": elapsed,
            "source": load_status(Settings).source,
        }


@pytest.fixture
def results(tmp_path: Path) -> list[dict[str, Any]]:
    (tmp_path / ".env").write_text(f"DATABASE_URL={DOTENV_VALUE}\n")
    cases = [
        (kind, with_dotenv, use_async)
        for kind in KINDS
        for with_dotenv in (False, True)
        for use_async in (False, True)
    ]
    # 24 loads with 24 servers at once: also more shared clients than the process keeps (16),
    # so evictions happen while loads still use the evicted clients
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = [pool.submit(run_case, *case, tmp_path) for case in cases]
        return [f.result(timeout=DEADLINE + 10) for f in futures]


def test_every_load_ends_by_its_deadline(results: list[dict[str, Any]]) -> None:
    for r in sorted(results, key=lambda r: (r["kind"], r["dotenv"], r["async"])):
        outcome = "fallback to .env" if r["error"] is None else type(r["error"]).__name__
        print(
            f"[T14] {r['kind']:42} {'aload' if r['async'] else 'sync ':5} "
            f"{'with .env' if r['dotenv'] else 'no .env':9} -> {outcome:22} "
            f"{r['elapsed'] * 1000:5.0f} ms"
        )
    worst = max(r["elapsed"] for r in results)
    print(f"[T14] {len(results)} loads, worst time to decision {worst * 1000:.0f} ms")
    for r in results:
        label = f"{r['kind']} (dotenv={r['dotenv']}, async={r['async']})"
        assert r["elapsed"] <= DEADLINE + MARGIN, f"{label}: {r['elapsed']:.2f} s"
        if r["dotenv"]:
            assert r["error"] is None, f"{label}: {r['error']!r}"
            assert r["value"] == DOTENV_VALUE and r["source"] == "dotenv", label
        else:
            assert isinstance(r["error"], PhaseError), f"{label}: {r['error']!r}"
            assert isinstance(r["error"], EXPECTED[r["kind"]]), f"{label}: {r['error']!r}"


def test_a_load_survives_the_eviction_of_its_client(phase: Phase) -> None:
    """A load whose first answer is a slow 503 retries; meanwhile 16 loads with other client
    settings fill the process's client cache. The first load must still succeed."""
    phase.set("DATABASE_URL", "after-retry")
    Main = settings_class(phase, {"database_url": str}, phase_fallback="raise")
    phase.fake.fail_next(503, delay=1.0)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(timed(Main)), daemon=True)
    worker.start()
    limit = time.monotonic() + 5
    while not phase.fake.requests:  # the first attempt is waiting for its 503
        assert time.monotonic() < limit
        time.sleep(0.005)
    refused = f"http://127.0.0.1:{closed_port()}"
    for i in range(16):  # other hosts and timeouts: 16 other shared clients, made in ~50 ms
        Other = settings_class(
            phase,
            {"database_url": (str, "")},
            name=f"Other{i}",
            phase_host=refused,
            phase_timeout=5 + i,
            phase_max_attempts=1,
            phase_fallback="raise",
        )
        with contextlib.suppress(PhaseConnectionError):
            Other()
    assert worker.is_alive(), "the first load should still be waiting for its 503"
    worker.join(DEADLINE + 5)
    settings, error, elapsed = outcome[0]
    assert error is None, repr(error)
    assert settings.database_url == "after-retry"
    assert elapsed <= DEADLINE + MARGIN
