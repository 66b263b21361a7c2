"""T2: the Retry-After parser never raises, treats junk as absent, and caps waits."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phase_settings import PhaseClient
from phase_settings._core.retry import RETRY_AFTER_CAP, parse_retry_after

from ..conftest import Phase

NOW = 1_800_000_000.0  # a frozen clock: 2027-01-15


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("52", 52.0),
        (" 7 ", 7.0),
        ("\t42 ", 42.0),
        ("1.5", None),
        ("-1", None),
        ("+1", None),
        ("1e3", None),
        ("1_000", None),  # int() accepts it; RFC 9110 does not
        ("²", None),  # str.isdigit() is True, int() raises
        ("٣", None),  # int() gives 3, RFC 9110 does not allow it
        ("", None),
        ("garbage", None),
        (None, None),
        (b"12", 12.0),
        (b"\xff\xfe", None),
    ],
)
def test_hand_cases(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_huge_delta_is_capped_for_waits_but_never_raises() -> None:
    assert parse_retry_after("99999999999999999999", now=NOW, cap=RETRY_AFTER_CAP) == 60.0
    assert parse_retry_after("99999999999999999999", now=NOW) >= 10**12  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (http_date(30), 30.0),  # IMF-fixdate in the future
        (http_date(-30), 0.0),  # in the past
        (http_date(0), 0.0),  # exactly now
    ],
)
def test_http_dates(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected, abs=1.0)


def test_other_date_forms() -> None:
    # RFC 850 and asctime (which Python parses as naive: it must be taken as UTC)
    moment = datetime.fromtimestamp(NOW + 45, UTC)
    rfc850 = moment.strftime("%A, %d-%b-%y %H:%M:%S GMT")
    asctime = moment.strftime("%a %b %d %H:%M:%S %Y")
    assert parse_retry_after(rfc850, now=NOW) == pytest.approx(45, abs=1)
    assert parse_retry_after(asctime, now=NOW) == pytest.approx(45, abs=1)
    offset = (moment + timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S +0200")
    assert parse_retry_after(offset, now=NOW) == pytest.approx(45, abs=1)


def test_far_future_and_leap_second_clamp_instead_of_overflowing() -> None:
    far = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=NOW, cap=60)
    assert far == 60
    leap = parse_retry_after("Thu, 31 Dec 2026 23:59:60 GMT", now=NOW)
    assert leap == 0.0  # in the past for the frozen clock, and no ValueError


@pytest.mark.parametrize("tz", ["UTC", "Asia/Jerusalem", "America/St_Johns"])
def test_local_time_zone_is_irrelevant(tz: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        moment = datetime.fromtimestamp(NOW + 100, UTC)
        assert parse_retry_after(moment.strftime("%a %b %d %H:%M:%S %Y"), now=NOW) == pytest.approx(
            100, abs=1
        )
        assert parse_retry_after(http_date(100), now=NOW) == pytest.approx(100, abs=1)
    finally:
        monkeypatch.setenv("TZ", os.environ.get("TZ", "UTC"))
        time.tzset()


@given(st.integers(0, 10**20), st.text(" \t", max_size=3), st.text(" \t", max_size=3))
def test_generated_integers(n: int, before: str, after: str) -> None:
    value = parse_retry_after(f"{before}{n}{after}", now=NOW, cap=RETRY_AFTER_CAP)
    assert value == min(float(n), RETRY_AFTER_CAP)


@given(st.text(max_size=60))
def test_random_strings_never_raise_and_stay_in_bounds(text: str) -> None:
    value = parse_retry_after(text, now=NOW, cap=RETRY_AFTER_CAP)
    assert value is None or 0 <= value <= RETRY_AFTER_CAP


@settings(max_examples=200)
@given(st.floats(-10 * 365 * 86400, 10 * 365 * 86400), st.floats(0, 10 * 365 * 86400))
def test_dates_are_monotone(offset: float, later_by: float) -> None:
    first = parse_retry_after(http_date(offset), now=NOW)
    second = parse_retry_after(http_date(offset + later_by), now=NOW)
    assert first is not None and second is not None
    assert 0 <= first <= second


# --- the caps, as a client sees them (literal numbers: a changed constant must fail here) -------


def test_a_client_waits_at_most_60_s_whatever_retry_after_says(phase: Phase) -> None:
    """``Retry-After: 3600`` with a deadline that would allow it: the client waits 60 s."""
    phase.set("K", "v")
    phase.fake.fail_next(429, headers={"Retry-After": "3600"})
    waits: list[float] = []
    with PhaseClient(phase.token, phase.url, deadline=100_000, sleep=waits.append) as client:
        [secret] = client.list_secrets(phase.app_id, "development")
    assert secret.value == "v"
    assert waits == [60.0]


def test_backoff_waits_are_capped_at_20_s(phase: Phase) -> None:
    """Eleven 503s in a row: the full-jitter windows double from 0.5 s and stop growing at
    20 s; with this seed the late draws come close to the cap but never pass it."""
    phase.set("K", "v")
    phase.fake.fail_next(503, times=11)
    waits: list[float] = []
    with PhaseClient(
        phase.token,
        phase.url,
        deadline=100_000,
        max_attempts=12,
        sleep=waits.append,
        rng=random.Random(11),
    ) as client:
        client.list_secrets(phase.app_id, "development")
    assert len(waits) == 11
    for attempt, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(20.0, 0.5 * 2 ** (attempt - 1)), (attempt, wait)
    assert max(waits[6:]) > 15.0  # the late windows are the full 20 s, not smaller
