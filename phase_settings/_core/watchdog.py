"""The process's one watchdog: it says so when a request of a load is still unanswered after
``SLOW_START`` seconds (DESIGN §4: a slow start is never silent).

The waits between retries are announced by the retry plan before it sleeps; a single request
that hangs has no such moment, so each attempt registers its due time here and cancels it when
its reply (or failure) comes back. One daemon thread serves every load of the process, sync and
async alike (not a thread per request); it is started on first use and again in a forked child,
where the parent's thread does not exist.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable

__all__ = ["WATCHDOG", "Watch", "Watchdog"]


class Watch:
    """One registration: ``callback`` runs at ``due`` unless cancelled first."""

    __slots__ = ("callback", "cancelled", "due")

    def __init__(self, due: float, callback: Callable[[], None]) -> None:
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Watchdog:
    """Runs callbacks at their due time (monotonic seconds) from one daemon thread.

    Args:
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        # Fresh objects, never acquired first: in a forked child the parent's lock may be held.
        self._pid = os.getpid()
        self._wake = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, due: float, callback: Callable[[], None]) -> Watch:
        """Run ``callback`` at ``due`` (from the watchdog's thread) unless cancelled."""
        if self._pid != os.getpid():
            self._reset()
        entry = Watch(due, callback)
        with self._wake:
            heapq.heappush(self._heap, (due, next(self._order), entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="phase-settings-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return entry

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][2].cancelled:
                    if self._heap:
                        heapq.heappop(self._heap)
                        continue
                    self._wake.wait()
                due, _, entry = self._heap[0]
                left = due - self._clock()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._heap)
            if not entry.cancelled:
                with contextlib.suppress(Exception):  # a callback only logs
                    entry.callback()


WATCHDOG = Watchdog()  # the process's one watchdog (its thread starts on first use)
