"""T3: a 429 storm: Retry-After honoured, bounded attempts, no sleep past the deadline, and no
retry layer under the client's own (amplification exactly 1).

Waits go through an injected sleep on a virtual clock where the scenario is about counting;
one scenario waits for real to show the gap between attempts on the server's clock.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from phase_settings import (
    PhaseClient,
    PhaseRateLimitError,
    load_status,
)

from ..conftest import Phase
from .conftest import (
    DEADLINE,
    FORK_WARNING,
    MARGIN,
    SendCounter,
    VirtualTime,
    capture_logs,
    closed_port,
    fork_child,
    settings_class,
    timed,
    wait_child,
)


def secret_gets(phase: Phase) -> int:
    return sum(1 for r in phase.fake.requests if r.path.endswith("/v1/secrets/"))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_k_429s_then_200(phase: Phase, k: int) -> None:
    """(a) k answers 429 with ``Retry-After: 1``, then 200: min(k+1, 3) requests, every wait
    at least the hint. The deadline is the default 15 s on a virtual clock (with 2 s, a second
    1 s wait would not fit, which is the next test's subject)."""
    phase.set("DATABASE_URL", "postgres://db")
    phase.fake.fail_next(429, headers={"Retry-After": "1"}, times=k)
    vt = VirtualTime()
    with PhaseClient(phase.token, phase.url, clock=vt.clock, sleep=vt.sleep) as client:
        result, error, elapsed = timed(lambda: client.list_secrets(phase.app_id, "development"))
    requests = secret_gets(phase)
    assert requests == min(k + 1, 3)
    assert len(vt.sleeps) == requests - 1
    assert all(wait >= 1.0 for wait in vt.sleeps), vt.sleeps
    if k < 3:
        assert error is None and [s.key for s in result] == ["DATABASE_URL"]
    else:
        assert isinstance(error, PhaseRateLimitError) and error.retry_after == 1.0
    print(f"[T3a] k={k}: requests={requests} waits={vt.sleeps} wall={elapsed * 1000:.0f} ms")


def test_real_gap_between_attempts_is_at_least_the_hint(phase: Phase) -> None:
    """(a) for real: the server sees the retry no earlier than Retry-After (1 s) - 50 ms."""
    phase.fake.fail_next(429, headers={"Retry-After": "1"}, times=1)
    with PhaseClient(phase.token, phase.url, deadline=DEADLINE) as client:
        client.list_secrets(phase.app_id, "development")
    stamps = [r.timestamp for r in phase.fake.requests]
    assert len(stamps) == 2
    gap = stamps[1] - stamps[0]
    assert gap >= 1.0 - 0.05
    print(f"[T3a] real wait: gap between attempts {gap * 1000:.0f} ms (hint 1000 ms)")


@pytest.mark.parametrize("deadline", [DEADLINE, 15.0])
def test_retry_after_past_the_deadline_raises_at_once(phase: Phase, deadline: float) -> None:
    """(b) ``Retry-After: 52`` with a 2 s (or 15 s) deadline: no sleep at all, one request,
    ``PhaseRateLimitError(retry_after=52)`` at once."""
    phase.fake.fail_next(429, headers={"Retry-After": "52"}, times=10)
    vt = VirtualTime()
    with PhaseClient(
        phase.token, phase.url, deadline=deadline, clock=vt.clock, sleep=vt.sleep
    ) as client:
        _, error, elapsed = timed(lambda: client.list_secrets(phase.app_id, "development"))
    assert isinstance(error, PhaseRateLimitError)
    assert error.retry_after == 52.0 and error.status == 429
    assert vt.sleeps == [] and secret_gets(phase) == 1
    assert elapsed < MARGIN
    print(
        f"[T3b] retry-after 52, deadline {deadline:g} s: 1 request, 0 sleeps, "
        f"{elapsed * 1000:.0f} ms"
    )


@pytest.mark.parametrize("fallback", ["dotenv", "last-good", "raise"])
def test_retry_after_past_the_deadline_falls_back_at_once(
    phase: Phase, tmp_path: Path, fallback: str
) -> None:
    """(b) through ``Settings()``: immediate fallback to .env or last good values when
    configured, else the typed error; never a sleep (wall time well under the deadline)."""
    phase.set("DATABASE_URL", "from-phase")
    (tmp_path / ".env").write_text("DATABASE_URL=from-dotenv\n")
    config: dict[str, Any] = {"phase_cache_ttl": 0}
    if fallback == "dotenv":
        config["env_file"] = ".env"
    if fallback == "raise":
        config.update(env_file=".env", phase_fallback="raise")
    Settings = settings_class(phase, {"database_url": str}, **config)
    if fallback == "last-good":
        assert Settings().database_url == "from-phase"  # type: ignore[attr-defined]
    phase.fake.clear_requests()
    phase.fake.fail_next(429, headers={"Retry-After": "52"}, times=10)
    with capture_logs() as logs:
        settings, error, elapsed = timed(Settings)
    assert secret_gets(phase) == 1 and elapsed < MARGIN
    status = load_status(Settings)
    if fallback == "raise":
        assert isinstance(error, PhaseRateLimitError) and error.retry_after == 52.0
    else:
        assert error is None
        expected = "from-dotenv" if fallback == "dotenv" else "from-phase"
        assert settings.database_url == expected
        assert status.source == ("dotenv" if fallback == "dotenv" else "stale")
        assert len(logs.warnings()) == 1
    assert status.last_error is not None and status.last_error.startswith("PhaseRateLimitError")
    print(f"[T3b] Settings() with fallback={fallback}: 1 request, {elapsed * 1000:.0f} ms")


def test_429_without_retry_after_uses_the_computed_backoff(phase: Phase) -> None:
    """(c) no header: the waits are the full-jitter draws of the client's own generator."""
    phase.fake.fail_next(429, times=2)
    vt = VirtualTime()
    with PhaseClient(
        phase.token, phase.url, clock=vt.clock, sleep=vt.sleep, rng=random.Random(7)
    ) as client:
        client.list_secrets(phase.app_id, "development")
    draws = random.Random(7)
    expected = [draws.uniform(0, 0.5), draws.uniform(0, 1.0)]
    assert vt.sleeps == pytest.approx(expected)
    assert secret_gets(phase) == 3

    phase.fake.fail_next(429, times=3)
    with PhaseClient(phase.token, phase.url, clock=vt.clock, sleep=vt.sleep) as client:
        _, error, _ = timed(lambda: client.list_secrets(phase.app_id, "development"))
    assert isinstance(error, PhaseRateLimitError) and error.retry_after is None
    print(f"[T3c] 429 without Retry-After: waits {[round(s, 3) for s in vt.sleeps]}")


def test_connection_retries_are_the_clients_own(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused port: exactly one connection attempt per client attempt (3), so no retry
    layer hides in the transport for connect errors either."""
    connects: list[Any] = []
    original = socket.create_connection

    def counting(*args: Any, **kwargs: Any) -> Any:
        connects.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", counting)
    sent = SendCounter(monkeypatch)
    vt = VirtualTime()
    host = f"http://127.0.0.1:{closed_port()}"
    with PhaseClient(phase.token, host, clock=vt.clock, sleep=vt.sleep) as client:
        _, error, _ = timed(lambda: client.list_secrets(phase.app_id, "development"))
    assert type(error).__name__ == "PhaseConnectionError"
    assert sent.count == 3 and len(connects) == 3 and len(vt.sleeps) == 2
    print(f"[T3d] refused port: {sent.count} attempts, {len(connects)} connection attempts")


def test_64_threads_against_a_throttled_account(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(d) 64 clients of one account start at once against 2 requests/s: the server sees at
    most 3 requests per client, and exactly as many as the clients sent (no hidden retries)."""
    clients = 64
    sent = SendCounter(monkeypatch)
    phase.fake.rate_limit("2/s")
    barrier = threading.Barrier(clients)
    outcomes: list[str] = []
    times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        with PhaseClient(phase.token, phase.url, deadline=DEADLINE) as client:
            barrier.wait(5)
            _, error, elapsed = timed(lambda: client.list_secrets(phase.app_id, "development"))
        with lock:
            outcomes.append(type(error).__name__ if error else "ok")
            times.append(elapsed)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE + 5)
    assert not any(t.is_alive() for t in threads)
    seen = secret_gets(phase)
    assert len(outcomes) == clients
    assert set(outcomes) <= {"ok", "PhaseRateLimitError"} and outcomes.count("ok") >= 2
    assert seen <= clients * 3
    assert seen == sent.count, "a retry layer below the client sent requests of its own"
    assert max(times) <= DEADLINE + MARGIN
    print(
        f"[T3d] {clients} threads: {seen} requests ({seen / clients:.2f} per fetch, "
        f"amplification {seen / sent.count:.2f}), {outcomes.count('ok')} ok, "
        f"worst {max(times) * 1000:.0f} ms"
    )


@pytest.mark.filterwarnings(FORK_WARNING)
def test_8_processes_against_a_throttled_account(
    phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(d) the same with 8 forked processes, each with its own client."""
    processes = 8
    sent = SendCounter(monkeypatch)
    phase.fake.rate_limit("2/s")
    start_at = time.monotonic() + 0.3  # every child starts its request at the same instant

    def child() -> dict[str, Any]:
        before = sent.count
        with PhaseClient(phase.token, phase.url, deadline=DEADLINE) as client:
            time.sleep(max(0.0, start_at - time.monotonic()))
            _, error, elapsed = timed(lambda: client.list_secrets(phase.app_id, "development"))
        return {
            "sent": sent.count - before,
            "outcome": type(error).__name__ if error else "ok",
            "elapsed": elapsed,
        }

    children = [fork_child(child) for _ in range(processes)]
    results = [wait_child(c, timeout=DEADLINE + 5) for c in children]
    assert [code for code, _, _ in results] == [0] * processes, results
    reports = [payload["result"] for _, payload, _ in results]
    seen = secret_gets(phase)
    sent_total = sum(r["sent"] for r in reports)
    assert all(r["sent"] <= 3 for r in reports)
    assert seen == sent_total <= processes * 3
    assert {r["outcome"] for r in reports} <= {"ok", "PhaseRateLimitError"}
    assert max(r["elapsed"] for r in reports) <= DEADLINE + MARGIN
    print(
        f"[T3d] {processes} processes: {seen} requests ({seen / processes:.2f} per fetch, "
        f"amplification {seen / sent_total:.2f}), "
        f"{sum(r['outcome'] == 'ok' for r in reports)} ok"
    )
