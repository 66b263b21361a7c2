"""A single-flight leader interrupted by a signal (Ctrl-C's ``KeyboardInterrupt``, or the
``SystemExit`` of a SIGTERM handler in a threaded server) re-raises it in its own thread only:
the worker threads waiting on it never see it; one of them takes over and fetches."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from phase_settings import PhaseSettings, PhaseSettingsConfigDict

from ..conftest import Phase

WAITERS = 4


@pytest.fixture
def sigterm_exits() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        sys.exit(1)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.usefixtures("sigterm_exits")
@pytest.mark.parametrize(
    ("signum", "raised"),
    [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)],
    ids=["KeyboardInterrupt", "SystemExit"],
)
def test_waiters_take_over_from_an_interrupted_leader(
    phase: Phase, signum: int, raised: type[BaseException]
) -> None:
    phase.set("API_KEY", "from-phase")

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(phase_deadline=10))  # type: ignore[typeddict-item]
        api_key: str

    phase.fake.fail_next(None, delay=2.0)  # the leader's request waits; the others queue up
    got: list[object] = []
    lock = threading.Lock()

    def waiter() -> None:
        try:
            value: object = Settings().api_key
        except BaseException as exc:  # what a worker thread would die of
            value = exc
        with lock:
            got.append(value)

    main = threading.main_thread().ident
    assert main == threading.get_ident()  # signals are delivered to the main thread
    threads = [threading.Thread(target=waiter) for _ in range(WAITERS)]
    starter = threading.Timer(0.2, lambda: [t.start() for t in threads])
    interrupt = threading.Timer(0.8, signal.pthread_kill, (main, signum))
    starter.start()
    interrupt.start()
    started = time.monotonic()
    with pytest.raises(raised):
        Settings()  # the leader: the first load of the key
    assert time.monotonic() - started < 2.0  # interrupted while it waited
    starter.join()
    for t in threads:
        t.join(15)
    assert got == ["from-phase"] * WAITERS  # no waiter saw the leader's interrupt
    assert phase.gets() == 2  # the interrupted request, and one taken over for all waiters
