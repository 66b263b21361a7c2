"""Every place where a test reaches past the public API to control time or randomness.

The behaviour tests that need a clock or a random source get it from here and nowhere else, so
that when the library's modules move, this file is the one to repoint. Each helper names the
one seam it uses:

- :func:`client_with_virtual_time`: ``PhaseClient``'s own ``clock``, ``sleep`` and ``rng``
  arguments (public).
- :func:`cache_clock`: the process-wide cache object's timer and random source
  (``phase_settings._load.runtime.runtime.cache._timer`` / ``._rng``; its TTL map ``._fresh_cache``
  is dropped so that it is rebuilt on the new timer).
- :func:`refresh_waits`: the random source ``LiveSettings``' refresh thread draws its jitter
  from (the ``random`` name in ``phase_settings._settings.live``), and the event the thread waits on
  between refreshes (``LiveSettings._stop``; ``._thread`` to join it), so no test sleeps
  through an interval.
"""

from __future__ import annotations

import random
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

import phase_settings
from phase_settings import LiveSettings, PhaseClient


class VirtualTime:
    """A monotonic clock that moves only when the client sleeps: the client's deadline sees
    every wait, and the test never waits for real."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class HighestDraw(random.Random):
    """A random source whose ``uniform(a, b)`` always returns ``b``: full jitter then waits
    exactly its upper bound, so the bound itself is observable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def client_with_virtual_time(
    token: str, url: str, *, rng: random.Random | None = None, **options: Any
) -> tuple[PhaseClient, VirtualTime]:
    """A ``PhaseClient`` whose waits are recorded instead of slept, on a virtual clock."""
    time_ = VirtualTime()
    client = PhaseClient(
        token, url, clock=time_.clock, sleep=time_.sleep, rng=rng or random.Random(0), **options
    )
    return client, time_


class ManualClock:
    """A monotonic clock a test sets by hand."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def cache_clock(monkeypatch: pytest.MonkeyPatch, *, seed: int) -> ManualClock:
    """Put the process-wide secrets cache on a manual clock and a seeded random source (entry
    lifetimes and the after-outage backoff read both); undone when the test ends."""
    from phase_settings._load.runtime import runtime

    process_cache = runtime.cache
    clock = ManualClock()
    phase_settings.clear_cache()
    monkeypatch.setattr(process_cache, "_timer", clock)
    monkeypatch.setattr(process_cache, "_rng", random.Random(seed))
    # the TTL cache is built on first use with the timer of that moment: build it anew
    monkeypatch.setattr(process_cache, "_fresh_cache", None)
    return clock


class _RecordingStop(threading.Event):
    """The refresh thread's stop event: each wait returns at once (as if the interval had
    passed) and records how long it would have waited; after ``rounds`` waits it stops."""

    def __init__(self, rounds: int) -> None:
        super().__init__()
        self.rounds = rounds
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        if self.is_set():
            return True
        assert timeout is not None
        self.waits.append(timeout)
        if len(self.waits) >= self.rounds:
            self.set()
            return True
        return False


def refresh_waits(
    monkeypatch: pytest.MonkeyPatch,
    live: LiveSettings[Any],
    *,
    rounds: int,
    seed: int,
    start: Callable[[], None],
    timeout: float = 30.0,
) -> list[float]:
    """Run ``start()`` (which starts ``live``'s refresh thread) with a seeded jitter source and
    without real waits; returns the ``rounds`` waits the thread chose, in order."""
    from phase_settings._settings import live as _live

    seeded = types.SimpleNamespace(Random=lambda *_: random.Random(seed))
    monkeypatch.setattr(_live, "random", seeded)
    stop = _RecordingStop(rounds)
    monkeypatch.setattr(live, "_stop", stop)
    start()
    thread = live._thread
    limit = time.monotonic() + timeout
    while thread is not None and thread.is_alive() and time.monotonic() < limit:
        thread.join(0.05)
    live.stop()
    assert thread is None or not thread.is_alive(), "the refresh thread did not stop"
    return list(stop.waits)
