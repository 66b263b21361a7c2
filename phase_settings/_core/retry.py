"""Retry arithmetic and the retry plan: the ``Retry-After`` parser, full-jitter backoff, and
which failure is retried after how long.

Pure functions and small objects with injectable randomness, so tests run without sleeping.
"""

from __future__ import annotations

import math
import random
import re
import time
from datetime import UTC
from typing import NamedTuple

from .._defaults import DEFAULT_MAX_ATTEMPTS
from .._errors import PhaseConnectionError, PhaseError, PhaseRateLimitError, PhaseServerError
from .deadline import Deadline

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "RETRY_AFTER_CAP",
    "Deadline",
    "RetryPolicy",
    "full_jitter",
    "next_wait",
    "parse_retry_after",
]

BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
RETRY_AFTER_CAP = 60.0

_LEAP_SECOND = r"(\d\d:\d\d):60\b"
# Past this, float() of a delta is still exact enough and time.sleep never sees it (capped).
_HUGE = 10.0**12


def parse_retry_after(
    value: str | bytes | None, *, now: float | None = None, cap: float | None = None
) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header, or None when absent or invalid.

    Accepts delta-seconds and HTTP-dates (IMF-fixdate, RFC 850, asctime; a date without a zone
    is UTC). Never raises: anything else is treated as absent, so the caller falls back to its
    computed backoff. A date in the past gives 0.

    Args:
        value: the header value.
        now: the current POSIX time (defaults to ``time.time()``).
        cap: when given, the result is at most this.
    """
    seconds = _parse_retry_after(value, now)
    if seconds is None:
        return None
    return min(seconds, cap) if cap is not None else seconds


def _parse_retry_after(value: str | bytes | None, now: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        return None
    # RFC 9110 delta-seconds: ASCII digits only ("1_000", "²" and "٣" are not), optional
    # whitespace around them.
    digits = value.strip(" \t")
    if digits.isascii() and digits.isdigit():
        return _HUGE if len(digits) > 12 else float(int(digits))
    text = re.sub(_LEAP_SECOND, r"\1:59", value.strip())
    if not any(ch.isalpha() for ch in text):
        return None  # a date always names a month; "1.5" or "-1" is junk, not a date
    from email.utils import parsedate_to_datetime  # rarely needed: Phase sends delta-seconds

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    try:
        delta_s = when.timestamp() - current
    except (OverflowError, OSError, ValueError):
        return None
    if math.isnan(delta_s):
        return None
    return min(max(delta_s, 0.0), _HUGE)


def full_jitter(
    attempt: int,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
    rng: random.Random | None = None,
) -> float:
    """AWS-style full jitter: a uniform draw in ``[0, min(cap, base * 2 ** (attempt - 1))]``.

    Full jitter spreads a fleet that failed at the same instant over the whole window, where
    "equal jitter" or none would make it retry in lock-step.
    """
    exponent = min(max(attempt, 1) - 1, 60)
    bound = min(cap, base * (2.0**exponent))
    return (rng or random).uniform(0.0, bound)


class RetryPolicy(NamedTuple):
    """How long a client waits between attempts, and how many it makes."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    retry_after_cap: float = RETRY_AFTER_CAP
    rng: random.Random | None = None  # None: the module's shared generator

    def backoff(self, attempt: int) -> float:
        return full_jitter(attempt, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)


RETRIED_5XX = frozenset({500, 502, 503, 504})


def next_wait(
    error: PhaseError,
    *,
    attempt: int,
    method: str,
    reached_server: bool,
    deadline: Deadline,
    policy: RetryPolicy,
) -> float | None:
    """Seconds to wait before the next attempt, or None to stop and raise ``error``.

    429 waits ``Retry-After`` (capped) or backs off; 500/502/503/504 and connection failures
    back off with full jitter; POST is retried only after a 429 or when the request never
    reached the server; nothing else is retried. A wait that would pass the deadline is not
    started.
    """
    if attempt >= policy.max_attempts:
        return None
    if isinstance(error, PhaseRateLimitError):
        wait = (
            min(error.retry_after, policy.retry_after_cap)
            if error.retry_after is not None
            else policy.backoff(attempt)
        )
    elif isinstance(error, PhaseServerError):
        if method == "POST" or error.status not in RETRIED_5XX:
            return None
        wait = policy.backoff(attempt)
    elif isinstance(error, PhaseConnectionError):
        if deadline.expired or (method == "POST" and reached_server):
            return None
        wait = policy.backoff(attempt)
    else:
        return None
    if wait >= deadline.remaining():
        return None
    return wait
