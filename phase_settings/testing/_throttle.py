"""The server's ``PlanBasedRateThrottle``: a sliding window per bucket.

Buckets are what the server keys its cache on: one per account for the secrets endpoints
(REST and E2EE share it) and one per client IP for the E2EE tokens endpoint, which has no
token authentication. Refused requests are not added to the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"<count>/<period>"`` as ``(count, seconds)``; only the period's first letter counts.

    Raises:
        ValueError: The rate is malformed.
    """
    num, sep, period = rate.partition("/")
    if not sep or not period or period[0] not in _PERIODS:
        raise ValueError(f"rate must look like '5/m' (period s, m, h or d), got {rate!r}")
    try:
        count = int(num)
    except ValueError:
        raise ValueError(f"rate must start with an integer count, got {rate!r}") from None
    if count < 0:
        raise ValueError(f"rate count must not be negative, got {rate!r}")
    return count, _PERIODS[period[0]]


class Throttle:
    """Sliding windows per bucket at one configurable rate (None: no throttling)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.rate: tuple[int, int] | None = None
        self._history: dict[str, deque[float]] = {}

    def configure(self, rate: tuple[int, int] | None) -> None:
        """Set the rate; None turns throttling off and forgets the windows."""
        self.rate = rate
        if rate is None:
            self._history.clear()

    def check(self, bucket: str) -> tuple[str, dict[str, str]] | None:
        """Count one request in ``bucket``, or refuse it.

        Returns:
            None when the request may pass (it is then counted), else the 429 message and its
            extra headers (``Retry-After``), as DRF's ``SimpleRateThrottle.wait()`` words them.
        """
        if self.rate is None:
            return None
        count, duration = self.rate
        moment = self._clock()
        history = self._history.setdefault(bucket, deque())
        while history and history[-1] <= moment - duration:
            history.pop()
        if len(history) < count:
            history.appendleft(moment)
            return None
        remaining = duration - (moment - history[-1]) if history else duration
        available = count - len(history) + 1
        message = "Request was throttled."
        extra: dict[str, str] = {}
        if available > 0:
            wait = math.ceil(remaining / available)
            unit = "second" if wait == 1 else "seconds"
            message += f" Expected available in {wait} {unit}."
            if wait:
                extra["Retry-After"] = str(wait)
        return message, extra
