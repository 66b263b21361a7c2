"""T17 at the level of the snapshot store: the processes of one host sharing one folder.

The "fetch" here is the protocol the loader follows (read; on a miss take the key's lock, read
again, fetch if still needed, write, unlock) with the fetch counted in a file every process
appends to, so that the store's part of the promise is measured on its own: exactly one holder
at a time, one fetch for 8 processes x 16 threads, a killed holder never blocks the others past
their wait budget, and a forked child never holds (nor releases) its parent's lock. The same
promises through the loader, against the loopback fake: ``test_snapshot_processes.py``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from phase_settings._load.runtime import runtime
from phase_settings._models import Secret
from phase_settings._snapshot.store import SnapshotKey, SnapshotStore

from .conftest import FORK_WARNING, MARGIN, fork_child, wait_child

pytestmark = pytest.mark.filterwarnings(FORK_WARNING)

TOKEN = f"pss_service:v2:{'1a' * 32}:{'2b' * 32}:{'3c' * 32}:{'4d' * 32}"
KEY = SnapshotKey("sse", "https://api.phase.dev", "app-1", "Production", "/", (), "fp-1")
SECRETS = (Secret("id-1", "DB_PASSWORD", "canary-value-17"),)
FETCH_SECONDS = 0.05  # how long the simulated fetch holds the lock


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    # The locks it holds are the process runtime's, which the at-fork hook is told of.
    return SnapshotStore(tmp_path / "snap", TOKEN, held=runtime.held_locks())


@pytest.fixture
def kill_list() -> Iterator[list[int]]:
    """Pids this test started that must not outlive it."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        with contextlib.suppress(ChildProcessError):  # a grandchild: init reaps it
            os.waitpid(pid, 0)


def read_line(fd: int, timeout: float = 10.0) -> str:
    """One line from a pipe, waiting at most ``timeout``."""
    data = b""
    limit = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = limit - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, left))
        assert ready, f"no line within {timeout} s (got {data!r})"
        chunk = os.read(fd, 1)
        assert chunk, f"pipe closed (got {data!r})"
        data += chunk
    return data.decode().strip()


def spawn_holder(store: SnapshotStore, kill_list: list[int]) -> tuple[int, int]:
    """A child that takes the lock, says so, and then stalls until killed."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            with store.lock(KEY, 5.0) as got:
                os.write(write_fd, b"held\n" if got else b"missed\n")
                time.sleep(60)
        finally:
            os._exit(0)
    kill_list.append(pid)
    os.close(write_fd)
    return pid, read_fd


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def load_like_the_loader(store: SnapshotStore, counter: Path, wait: float) -> str:
    """What a process whose memory cache missed does with the snapshot."""
    if store.read(KEY) is not None:
        return "snapshot"
    with store.lock(KEY, wait) as got:
        if store.read(KEY) is not None:
            return "snapshot after wait"
        with open(counter, "a") as handle:  # the one request to Phase
            handle.write(f"{os.getpid()}\n")
        time.sleep(FETCH_SECONDS)
        store.write(KEY, SECRETS, datetime.now(UTC))
        return "fetched" if got else "fetched without lock"


def start_together(store: SnapshotStore, n: int, work: Any) -> tuple[list[Any], int]:
    """Fork ``n`` children that run ``work()`` once released together; their results."""
    gate_read, gate_write = os.pipe()

    def gated() -> Any:
        assert os.read(gate_read, 1) == b"g"
        return work()

    children = [fork_child(gated) for _ in range(n)]
    os.write(gate_write, b"g" * n)
    os.close(gate_write)
    os.close(gate_read)
    results = []
    for child in children:
        code, payload, _ = wait_child(child, timeout=60)
        assert code == 0, payload
        results.append(payload["result"])
    return results, len(children)


def test_eight_processes_take_turns(store: SnapshotStore, tmp_path: Path) -> None:
    marker = tmp_path / "inside"
    rounds = 15

    def contend() -> dict[str, int]:
        entries = overlaps = misses = 0
        for _ in range(rounds):
            with store.lock(KEY, 30.0) as got:
                if not got:
                    misses += 1
                    continue
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                except FileExistsError:
                    overlaps += 1  # someone else is inside: the lock failed
                    continue
                os.close(fd)
                entries += 1
                time.sleep(0.002)
                os.unlink(marker)
        return {"entries": entries, "overlaps": overlaps, "misses": misses}

    results, n = start_together(store, 8, contend)
    assert sum(r["overlaps"] for r in results) == 0
    assert sum(r["misses"] for r in results) == 0
    assert sum(r["entries"] for r in results) == n * rounds


def test_eight_processes_of_sixteen_threads_make_one_fetch(
    store: SnapshotStore, tmp_path: Path
) -> None:
    counter = tmp_path / "requests"

    def process() -> list[str]:
        outcomes: list[str] = []
        threads = [
            threading.Thread(
                target=lambda: outcomes.append(load_like_the_loader(store, counter, 20.0))
            )
            for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        return outcomes

    results, _ = start_together(store, 8, process)
    outcomes = [o for r in results for o in r]
    assert len(outcomes) == 128
    assert counter.read_text().count("\n") == 1  # one request per host
    assert outcomes.count("fetched") == 1
    assert store.read(KEY) is not None


def test_a_killed_holder_releases_the_lock(
    store: SnapshotStore, kill_list: list[int], tmp_path: Path
) -> None:
    pid, read_fd = spawn_holder(store, kill_list)
    try:
        assert read_line(read_fd) == "held"
    finally:
        os.close(read_fd)
    with store.lock(KEY, 0.0) as got:
        assert not got  # really held by the child
    kill(pid)  # mid-fetch: nothing written
    started = time.monotonic()
    with store.lock(KEY, 5.0) as got:
        assert got
    assert time.monotonic() - started < 1.0  # the kernel released it; the poll noticed


def test_waiters_behind_a_holder_killed_mid_fetch_fetch_once_within_their_budget(
    store: SnapshotStore, kill_list: list[int], tmp_path: Path
) -> None:
    counter = tmp_path / "requests"
    pid, read_fd = spawn_holder(store, kill_list)
    try:
        assert read_line(read_fd) == "held"
    finally:
        os.close(read_fd)
    budget = 3.0

    def waiter() -> dict[str, Any]:
        started = time.monotonic()
        outcome = load_like_the_loader(store, counter, budget)
        return {"outcome": outcome, "took": time.monotonic() - started}

    children = [fork_child(waiter) for _ in range(4)]
    time.sleep(0.3)
    kill(pid)
    results = []
    for child in children:
        code, payload, _ = wait_child(child, timeout=budget + 10)
        assert code == 0, payload
        results.append(payload["result"])
    assert sorted(r["outcome"] for r in results) == ["fetched"] + ["snapshot after wait"] * 3
    assert counter.read_text().count("\n") == 1
    assert all(r["took"] < budget for r in results)


def test_a_stalled_holder_costs_a_waiter_only_its_budget(
    store: SnapshotStore, kill_list: list[int]
) -> None:
    pid, read_fd = spawn_holder(store, kill_list)
    try:
        assert read_line(read_fd) == "held"
    finally:
        os.close(read_fd)
    budget = 0.5
    started = time.monotonic()
    with store.lock(KEY, budget) as got:
        took = time.monotonic() - started
        assert not got
    assert budget <= took <= budget + MARGIN
    kill(pid)


def test_a_forked_child_neither_holds_nor_releases_the_parents_lock(
    store: SnapshotStore, tmp_path: Path
) -> None:
    other = SnapshotStore(tmp_path / "snap", TOKEN)  # another open file: another contender
    read_fd, write_fd = os.pipe()
    with store.lock(KEY, 0.0) as got:
        assert got and store.holds_lock(KEY)
        pid = os.fork()
        if pid != 0:
            os.close(write_fd)
            report = read_line(read_fd)  # the child has left the with block by now
            os.close(read_fd)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert report == "holds=False got=False"
            assert store.holds_lock(KEY)
            with other.lock(KEY, 0.0) as other_got:
                assert not other_got  # the child leaving the block did not unlock it
    if pid == 0:  # the child, after leaving the with block it inherited
        code = 1
        try:
            with store.lock(KEY, 0.0) as child_got:
                os.write(write_fd, f"holds={store.holds_lock(KEY)} got={child_got}\n".encode())
            code = 0
        finally:
            os._exit(code)
    with other.lock(KEY, 0.0) as other_got:
        assert other_got  # the parent's own release works


def test_a_lock_is_released_when_its_holder_dies_even_if_a_child_it_forked_lives_on(
    store: SnapshotStore, kill_list: list[int]
) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            with store.lock(KEY, 5.0) as got:
                grandchild = os.fork()
                if grandchild == 0:
                    time.sleep(60)  # a worker that outlives its master
                    os._exit(0)
                os.write(write_fd, f"{got} {grandchild}\n".encode())
                time.sleep(60)
        finally:
            os._exit(0)
    kill_list.append(pid)
    os.close(write_fd)
    try:
        got, grandchild = read_line(read_fd).split()
    finally:
        os.close(read_fd)
    kill_list.append(int(grandchild))
    assert got == "True"
    kill(pid)
    with store.lock(KEY, 2.0) as got_now:
        assert got_now  # the grandchild's inherited copy was closed at its fork
