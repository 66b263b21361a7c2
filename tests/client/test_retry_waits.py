"""How long the client waits between attempts, as documented: a 429 waits its ``Retry-After``
but never more than 60 s; a 5xx backs off with full jitter, base 0.5 s, cap 20 s.

The fake answers over loopback; the client's clock and sleep are virtual, so a 60 s wait costs
nothing and the deadline arithmetic still sees every wait.
"""

from __future__ import annotations

import pytest

from phase_settings import PhaseRateLimitError, PhaseServerError

from .._seams import HighestDraw, client_with_virtual_time
from ..conftest import Phase

# The documented numbers, stated here rather than read from the library.
RETRY_AFTER_CAP_S = 60.0
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0


def test_a_retry_after_of_an_hour_waits_sixty_seconds_then_retries(phase: Phase) -> None:
    phase.set("DB_HOST", "db")
    phase.fake.fail_next(429, headers={"Retry-After": "3600"})
    client, time_ = client_with_virtual_time(phase.token, phase.url, deadline=100, max_attempts=2)
    with client:
        secrets = client.list_secrets(phase.app_id, "development")
    assert [s.value for s in secrets] == ["db"]
    assert time_.sleeps == [RETRY_AFTER_CAP_S]
    assert phase.gets() == 2


def test_a_far_future_retry_after_date_is_capped_too(phase: Phase) -> None:
    phase.set("DB_HOST", "db")
    phase.fake.fail_next(429, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"})
    client, time_ = client_with_virtual_time(phase.token, phase.url, deadline=100, max_attempts=2)
    with client:
        client.list_secrets(phase.app_id, "development")
    assert time_.sleeps == [RETRY_AFTER_CAP_S]


def test_a_short_retry_after_is_waited_as_given(phase: Phase) -> None:
    phase.fake.fail_next(429, headers={"Retry-After": "7"})
    client, time_ = client_with_virtual_time(phase.token, phase.url, deadline=100, max_attempts=2)
    with client:
        client.list_secrets(phase.app_id, "development")
    assert time_.sleeps == [7.0]


def test_a_capped_wait_that_would_pass_the_deadline_is_not_started(phase: Phase) -> None:
    phase.fake.fail_next(429, headers={"Retry-After": "3600"})
    client, time_ = client_with_virtual_time(phase.token, phase.url, deadline=50, max_attempts=2)
    with client, pytest.raises(PhaseRateLimitError) as caught:
        client.list_secrets(phase.app_id, "development")
    assert time_.sleeps == []
    assert caught.value.retry_after == 3600  # the server's own value, uncapped
    assert phase.gets() == 1


def test_server_errors_back_off_doubling_from_half_a_second_up_to_twenty(phase: Phase) -> None:
    """With a random source that always draws the top of the window, each wait is the
    window itself: 0.5, 1, 2, 4, 8, 16, then 20 s for every later attempt."""
    phase.set("DB_HOST", "db")
    phase.fake.fail_next(503, times=9)
    client, time_ = client_with_virtual_time(
        phase.token, phase.url, rng=HighestDraw(), deadline=10_000, max_attempts=10
    )
    with client:
        secrets = client.list_secrets(phase.app_id, "development")
    assert [s.value for s in secrets] == ["db"]
    windows = [min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**n) for n in range(9)]
    assert windows == [0.5, 1, 2, 4, 8, 16, 20, 20, 20]
    assert time_.sleeps == windows
    assert phase.gets() == 10


def test_full_jitter_draws_anywhere_in_the_window(phase: Phase) -> None:
    """A seeded source: every wait lies in [0, window], and the draws are spread over it
    (not pinned to its top, as equal jitter or none would be)."""
    phase.fake.fail_next(503, times=40)
    client, time_ = client_with_virtual_time(
        phase.token, phase.url, deadline=100_000, max_attempts=41
    )
    with client:
        client.list_secrets(phase.app_id, "development")
    assert len(time_.sleeps) == 40
    capped = time_.sleeps[6:]  # attempts 7 and later: the window is the 20 s cap
    assert all(0 <= wait <= BACKOFF_CAP_S for wait in capped)
    assert min(capped) < 0.25 * BACKOFF_CAP_S and max(capped) > 0.75 * BACKOFF_CAP_S
    for n, wait in enumerate(time_.sleeps[:6]):
        assert 0 <= wait <= BACKOFF_BASE_S * 2**n


def test_the_last_attempt_raises_without_waiting(phase: Phase) -> None:
    phase.fake.fail_next(503, times=3)
    client, time_ = client_with_virtual_time(
        phase.token, phase.url, rng=HighestDraw(), deadline=100, max_attempts=3
    )
    with client, pytest.raises(PhaseServerError):
        client.list_secrets(phase.app_id, "development")
    assert time_.sleeps == [0.5, 1.0]
