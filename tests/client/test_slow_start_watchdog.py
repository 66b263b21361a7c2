"""A single request still unanswered 2 s into a load says so then, while it waits (DESIGN §4),
from the process's one watchdog thread: sync, asyncio and trio alike, once per load, and no
thread per request."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from phase_settings import AsyncPhaseClient, PhaseClient

from ..conftest import Phase

HELD = 3.0  # the reply is held this long: past the 2 s notice, inside the 5 s deadline


def _notices(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "no answer yet" in r.getMessage()]


def test_a_hanging_request_is_announced_at_two_seconds_while_it_waits(
    phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("K", "v")
    phase.fake.fail_next(None, delay=HELD)
    with PhaseClient(phase.token, phase.url, deadline=5) as client:
        with caplog.at_level(logging.WARNING, logger="phase_settings.client"):
            started = time.time()
            assert [s.key for s in client.list_secrets(phase.app_id, "development")] == ["K"]
    [notice] = _notices(caplog)
    assert notice.name == "phase_settings.client"
    assert 1.9 <= notice.created - started < HELD - 0.3  # said while the request waited
    assert notice.getMessage() == (
        f"waiting for Phase at {client.base_url}: attempt 1 of 3, no answer yet after 2 s"
    )


@pytest.mark.anyio
async def test_the_async_client_is_announced_the_same_way(
    phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    phase.fake.fail_next(None, delay=HELD)
    async with AsyncPhaseClient(phase.token, phase.url, deadline=5) as client:
        with caplog.at_level(logging.WARNING, logger="phase_settings.client"):
            started = time.time()
            await client.list_secrets(phase.app_id, "development")
    [notice] = _notices(caplog)
    assert 1.9 <= notice.created - started < HELD - 0.3


def test_a_quick_answer_says_nothing_and_loads_share_one_thread(
    phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("K", "v")
    with PhaseClient(phase.token, phase.url, deadline=5) as client:
        client.list_secrets(phase.app_id, "development")  # the watchdog exists from now on
        phase.fake.fail_next(None, delay=HELD, times=8)
        with caplog.at_level(logging.WARNING, logger="phase_settings.client"):
            threads = [
                threading.Thread(target=client.list_secrets, args=(phase.app_id, "development"))
                for _ in range(8)
            ]
            for t in threads:
                t.start()
            time.sleep(2.5)  # every request waits past its notice
            ours = [t.name for t in threading.enumerate() if t.name.startswith("phase-settings")]
            assert ours == ["phase-settings-watchdog"]  # one for all eight waiting loads
            for t in threads:
                t.join(10)
        assert len(_notices(caplog)) == 8  # one per load
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="phase_settings.client"):
            client.list_secrets(phase.app_id, "development")
            time.sleep(2.2)
        assert _notices(caplog) == []  # answered at once: the cancelled notice never fires
