"""The load's deadline: a point in monotonic time, and the one scope that carries it (with
what else one load carries) to every socket operation of the code running inside it.

httpx's read timeout applies to each read, so a server (or a proxy) that drips one byte a
second keeps a request alive forever. The network backend of the transport asks
:func:`current_deadline` before every connect, read, write and TLS handshake and clamps its
timeout to the time left. The scope is one context variable holding one :class:`Scope`: per
thread for sync callers, per task for async ones (asyncio and trio alike). The load layer's
scope (``_load/scope.py``) extends :class:`Scope`; this layer reads only its deadline.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Self

__all__ = ["SCOPE", "Deadline", "Scope", "current_deadline", "deadline_scope"]


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


class Scope:
    """What the code running for one load carries down to the transport: the deadline of the
    request being made (None between requests)."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: Deadline | None = None) -> None:
        self.deadline = deadline

    def with_deadline(self, deadline: Deadline) -> Self:
        """This scope (sharing everything else it carries) bound by ``deadline``."""
        scoped = copy.copy(self)
        scoped.deadline = deadline
        return scoped


# The one context variable of phase-settings: the scope of the code running in this context.
SCOPE: ContextVar[Scope | None] = ContextVar("phase_settings_scope", default=None)


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[None]:
    """Make ``deadline`` bound every socket operation of this thread or task while the block
    runs (the current scope, if any, bound by it; nothing changes when it already is)."""
    scope = SCOPE.get()
    if scope is not None and scope.deadline is deadline:
        yield
        return
    token = SCOPE.set(Scope(deadline) if scope is None else scope.with_deadline(deadline))
    try:
        yield
    finally:
        SCOPE.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the load running in this context, if any."""
    scope = SCOPE.get()
    return None if scope is None else scope.deadline
