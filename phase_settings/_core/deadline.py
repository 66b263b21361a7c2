"""The load's deadline: a point in monotonic time, and the scope that makes it bound every
socket operation of the code running inside it.

httpx's read timeout applies to each read, so a server (or a proxy) that drips one byte a
second keeps a request alive forever. The network backend of the transport asks
:func:`current_deadline` before every connect, read, write and TLS handshake and clamps its
timeout to the time left. The scope is a context variable: per thread for sync callers, per
task for async ones (asyncio and trio alike).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Deadline", "current_deadline", "deadline_scope"]


class Deadline:
    """A point in monotonic time after which a load gives up.

    Args:
        seconds: the budget from now; ``math.inf`` for none.
        clock: a monotonic clock (injectable for tests).
    """

    __slots__ = ("_clock", "at", "shared", "slow_noted", "started")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self.started = clock()
        self.at = self.started + seconds
        self.slow_noted = False  # the load's one "waiting for Phase" WARNING was logged
        # What the calls of one load share (the E2EE API's key reply: one per load, not per
        # folder); gone with the load.
        self.shared: dict[object, object] = {}

    def elapsed(self) -> float:
        """Seconds since the load began."""
        return self._clock() - self.started

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - self._clock())

    @property
    def expired(self) -> bool:
        return self._clock() >= self.at

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f})"


_current: ContextVar[Deadline | None] = ContextVar("phase_settings_deadline", default=None)


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[None]:
    """Make ``deadline`` bound every socket operation of this thread or task while the block
    runs."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the load running in this context, if any."""
    return _current.get()
