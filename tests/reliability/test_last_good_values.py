"""T6: last good values during an outage.

After a good load, an outage (any ``PhaseUnavailableError``) past the TTL serves the previous
values with ``LoadStatus.source == "stale"``, ``stale_since`` (the first failure) and
``last_error``; errors that are not outages still raise; ``LiveSettings`` keeps its instance
and calls no hook; the background refresher backs off instead of hammering Phase; and once
Phase answers again the new values are served.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from phase_settings import (
    LiveSettings,
    PhaseAuthError,
    PhaseResponseError,
    PhaseServerError,
    load_status,
)
from phase_settings.testing import FakePhase

from .conftest import DEADLINE, MARGIN, capture_logs, settings_class, timed

TTL = 0.2  # entries live 0.1-0.2 s


@contextlib.contextmanager
def served(fake: FakePhase, port: int = 0) -> Iterator[str]:
    with fake.serve(port=port) as url:
        yield url


def _phase(fake: FakePhase, app_id: str, token: str, url: str) -> dict[str, Any]:
    return {
        "phase_app_id": app_id,
        "phase_env": "development",
        "phase_token": token,
        "phase_host": url,
        "phase_cache_ttl": TTL,
    }


def outage(fake: FakePhase, kind: str) -> None:
    if kind == "503":
        fake.fail_next(503, times=1000)
    elif kind == "429 retry-after 52":
        fake.fail_next(429, headers={"Retry-After": "52"}, times=1000)
    elif kind == "reset":
        fake.fail_next(None, drop=True, times=1000)
    elif kind == "silent":
        fake.fail_next(None, hang=30, times=1000)


OUTAGE_ERRORS = {
    "503": "PhaseServerError",
    "429 retry-after 52": "PhaseRateLimitError",
    "reset": "PhaseConnectionError",
    "silent": "PhaseConnectionError",
    "port closed": "PhaseConnectionError",
}


RECOVERY_CHECKED = ("503", "port closed")


@pytest.mark.parametrize("kind", list(OUTAGE_ERRORS))
def test_outage_after_ttl_serves_last_good_values(kind: str) -> None:
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.set_secret(app_id, "development", "DATABASE_URL", "v1")
    with served(fake) as url:
        port = int(url.rsplit(":", 1)[1])
        Settings = settings_class(
            None,
            {"database_url": str},
            phase_max_attempts=1,  # one request per load: retries are T3's and T5's subject
            **_phase(fake, app_id, token, url),
        )
        assert Settings().database_url == "v1"  # type: ignore[attr-defined]
        fetched_at = load_status(Settings).fetched_at
        assert load_status(Settings).source == "phase" and fetched_at is not None
        assert Settings().database_url == "v1"  # type: ignore[attr-defined]
        assert load_status(Settings).source == "cache"

    fake.set_secret(app_id, "development", "DATABASE_URL", "v2")  # changes during the outage
    outage(fake, kind)
    with contextlib.ExitStack() as server:
        if kind != "port closed":
            server.enter_context(served(fake, port))
        time.sleep(TTL + 0.05)
        with capture_logs() as logs:
            stale, error, elapsed = timed(Settings)
        assert error is None, repr(error)
        assert stale.database_url == "v1"  # type: ignore[attr-defined]
        status = load_status(Settings)
        assert status.source == "stale" and status.fetched_at == fetched_at
        assert status.stale_since is not None and status.last_error is not None
        assert status.last_error.startswith(OUTAGE_ERRORS[kind]), status.last_error
        warnings = [r.getMessage() for r in logs.warnings()]
        assert len(warnings) == 1 and "v1" not in warnings[0], warnings
        assert elapsed <= DEADLINE + MARGIN
        # during the outage's backoff (1 s at first) loads do not ask Phase again: the same
        # error is served, and stale_since stays the time of the first failure
        asked = len(fake.requests)
        first_failure = status.stale_since
        assert Settings().database_url == "v1"  # type: ignore[attr-defined]
        assert load_status(Settings).stale_since == first_failure
        assert len(fake.requests) == asked
        print(
            f"[T6] outage {kind!r}: last good value served in {elapsed * 1000:.0f} ms, "
            f"source=stale, last_error={status.last_error.split(':')[0]}"
        )

    if kind not in RECOVERY_CHECKED:
        return
    # Phase is back: the new value is served within one backoff step (1 s) + the margin
    fake.clear_faults()
    with served(fake, port):
        restored = time.monotonic()
        while Settings().database_url != "v2":  # type: ignore[attr-defined]
            assert time.monotonic() - restored <= 1.0 + MARGIN, "not recovered in one step"
            time.sleep(0.02)
        recovered = time.monotonic() - restored
        status = load_status(Settings)
        assert status.source == "phase" and status.stale_since is None
        assert status.last_error is None
    print(f"[T6] outage {kind!r}: new value served {recovered * 1000:.0f} ms after recovery")


def test_repeated_outage_loads_do_not_grow_the_error() -> None:
    """Loads during the failure backoff raise the stored error again; each load must not add
    its frames to one shared traceback (that would keep every load's locals alive)."""
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    with served(fake) as url:
        Settings = settings_class(
            None,
            {"database_url": (str, "d")},
            phase_fallback="raise",
            phase_max_attempts=1,
            **_phase(fake, app_id, token, url),
        )
        fake.fail_next(503, times=1000)
        depths = []
        for _ in range(50):
            with pytest.raises(PhaseServerError) as info:
                Settings()
            depth, tb = 0, info.value.__traceback__
            while tb is not None:
                depth, tb = depth + 1, tb.tb_next
            depths.append(depth)
        assert len(fake.requests) == 1  # the backoff held
        assert depths[-1] <= depths[1], f"traceback grew from {depths[1]} to {depths[-1]} frames"


@pytest.mark.parametrize("kind", ["401", "malformed 200"])
def test_errors_that_are_not_outages_raise_despite_last_good(kind: str) -> None:
    """DESIGN §4: auth and response errors never fall back, last good values or not."""
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.set_secret(app_id, "development", "DATABASE_URL", "v1")
    with served(fake) as url:
        Settings = settings_class(None, {"database_url": str}, **_phase(fake, app_id, token, url))
        assert Settings().database_url == "v1"  # type: ignore[attr-defined]
        time.sleep(TTL + 0.05)
        if kind == "401":
            fake.revoke(token)
            expected: type[Exception] = PhaseAuthError
        else:
            fake.fail_next(200, body="<html>captive portal</html>", times=10)
            expected = PhaseResponseError
        with pytest.raises(expected):
            Settings()
        status = load_status(Settings)
        assert status.source == "phase" and status.stale_since is not None
        assert status.last_error is not None and status.last_error.startswith(expected.__name__)


@pytest.mark.parametrize(
    "kind", ["503", "401", "malformed 200", "empty secret list", "required key missing"]
)
def test_live_settings_keeps_its_instance_and_calls_no_hook(kind: str) -> None:
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.set_secret(app_id, "development", "DATABASE_URL", "v1")
    fake.set_secret(app_id, "development", "PORT", "5432")
    with served(fake) as url:
        Settings = settings_class(
            None, {"database_url": str, "port": int}, **_phase(fake, app_id, token, url)
        )
        live = LiveSettings(Settings)
        calls: list[frozenset[str]] = []
        live.on_change(lambda old, new, changed: calls.append(changed))
        before = live.current
        if kind == "503":
            fake.fail_next(503, times=10)
            expected: type[Exception] = PhaseServerError
        elif kind == "401":
            fake.fail_next(401, body='{"error":"Invalid token"}')
            expected = PhaseAuthError
        elif kind == "malformed 200":
            fake.fail_next(200, body="[{")
            expected = PhaseResponseError
        elif kind == "empty secret list":
            fake.fail_next(200, body="[]")
            expected = ValidationError
        else:
            fake.delete_secret(app_id, "development", "PORT")
            expected = ValidationError
        with capture_logs() as logs:
            _, error, elapsed = timed(live.refresh)
        assert isinstance(error, expected), repr(error)
        assert live.current is before and calls == []
        assert len(logs.warnings()) == 1
        assert "v1" not in logs.warnings()[0].getMessage()
        assert elapsed <= DEADLINE + MARGIN
        if kind != "empty secret list" and kind != "required key missing":
            assert live.status.last_error is not None


def test_background_refresh_backs_off_during_an_outage() -> None:
    """No hot loop: in 60 simulated seconds of outage, the refresher waits 1, 2, 4, 8, 16,
    32 s between attempts (at most ~10 upstream requests), then recovers by itself."""
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.set_secret(app_id, "development", "DATABASE_URL", "v1")

    class SimulatedStop:
        """Stands for the refresher's stop event: ``wait`` advances simulated time."""

        def __init__(self) -> None:
            self.now = 0.0
            self.waits: list[float] = []
            self.stopped = threading.Event()
            self.limit = 60.0

        def wait(self, seconds: float) -> bool:
            self.waits.append(seconds)
            self.now += seconds
            if self.now > self.limit or self.stopped.is_set():
                self.stopped.set()
                return True
            return False

        def set(self) -> None:
            self.stopped.set()

        def clear(self) -> None:
            pass

        def is_set(self) -> bool:
            return self.stopped.is_set()

    with served(fake) as url:
        Settings = settings_class(
            None,
            {"database_url": str},
            phase_max_attempts=1,
            **_phase(fake, app_id, token, url),
        )
        live = LiveSettings(Settings)
        fake.clear_requests()
        fake.fail_next(503, times=1000)
        stop = SimulatedStop()
        live._stop = stop  # type: ignore[assignment]  # the refresher's wait, simulated
        live.start(interval=1.0)
        assert stop.stopped.wait(10), "the refresher did not reach 60 simulated seconds"
        live.stop()
        failures = len(fake.requests)
        assert failures <= 10, f"{failures} requests in 60 simulated seconds"
        backoff = stop.waits[1:-1]  # after the first interval, until the limit
        assert backoff == sorted(backoff) and backoff[:3] == [1.0, 2.0, 4.0], stop.waits
        print(f"[T6] outage of 60 simulated s: {failures} requests, waits {stop.waits}")
