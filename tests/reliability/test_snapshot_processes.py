"""T17 through the loader: the processes of one host share one fetch per TTL through the snapshot.

8 processes x 16 threads, released together, one snapshot folder, one loopback FakePhase: exactly
one request in total. A lock holder killed mid-fetch costs the next process nothing (the kernel
releases the lock); one that stalls costs it half its deadline, never more than its deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phase_settings.testing import FakePhase

from .._subprocesses import PYTHON, clean_env, stop

PROCESSES = 8
THREADS = 16
VALUE = "t17-shared-value-91ac"

CHILD = """
import json, os, sys, threading, time
from pydantic import SecretStr
from phase_settings import PhaseSettings, PhaseSettingsConfigDict, load_status

deadline, threads, ready, go = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Settings(PhaseSettings):
    model_config = PhaseSettingsConfigDict(phase_env="development", phase_deadline=deadline)
    api_key: SecretStr

import phase_settings._load.loader, phase_settings._load.snapshot_tier, nacl.bindings  # warm
open(ready, "w").close()
for _ in range(6000):  # released together (at most 30 s)
    if os.path.exists(go):
        break
    time.sleep(0.005)
barrier = threading.Barrier(threads)
results = []

def work():
    barrier.wait(timeout=30)
    started = time.monotonic()
    value = Settings().api_key.get_secret_value()
    results.append((value, time.monotonic() - started))

workers = [threading.Thread(target=work) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join(60)
print(json.dumps({
    "values": sorted({v for v, _ in results}), "count": len(results),
    "slowest": max(s for _, s in results), "source": load_status(Settings).source,
}))
"""


@pytest.fixture
def fake() -> Iterator[tuple[FakePhase, str, dict[str, str]]]:
    phase = FakePhase()
    app_id = phase.add_app("demo")
    phase.set_secret(app_id, "development", "API_KEY", VALUE)
    token = phase.add_service_account(envs=None)
    with phase.serve() as url:
        yield phase, url, {"PHASE_SERVICE_TOKEN": token, "PHASE_HOST": url, "PHASE_APP_ID": app_id}


def gets(phase: FakePhase) -> int:
    return sum(1 for r in phase.requests if r.method == "GET")


def start(env: dict[str, str], folder: Path, workdir: Path, name: str, *, deadline: float,
          threads: int) -> subprocess.Popen[str]:  # fmt: skip
    return subprocess.Popen(
        [PYTHON, "-c", CHILD, str(deadline), str(threads), str(workdir / f"{name}.ready"),
         str(workdir / "go")],
        env=clean_env({**env, "PHASE_SNAPSHOT_DIR": str(folder)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> None:
    """Stop ``proc`` (if it still runs) and close its pipes."""
    stop(proc)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.01)


def report_of(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_eight_processes_of_sixteen_threads_make_one_request(
    fake: tuple[FakePhase, str, dict[str, str]], tmp_path: Path
) -> None:
    phase, _, env = fake
    folder = tmp_path / "snapshots"
    procs = [
        start(env, folder, tmp_path, f"p{i}", deadline=15.0, threads=THREADS)
        for i in range(PROCESSES)
    ]
    try:
        wait_for(lambda: len(list(tmp_path.glob("*.ready"))) == PROCESSES, 60, "the processes")
        (tmp_path / "go").touch()
        reports = [report_of(p) for p in procs]
    finally:
        for p in procs:
            finish(p)
    assert all(r["values"] == [VALUE] and r["count"] == THREADS for r in reports), reports
    assert gets(phase) == 1, [r["source"] for r in reports]
    print(f"T17: {PROCESSES} processes x {THREADS} threads -> {gets(phase)} request(s)")


def test_a_holder_killed_mid_fetch_blocks_no_one(
    fake: tuple[FakePhase, str, dict[str, str]], tmp_path: Path
) -> None:
    phase, _, env = fake
    folder = tmp_path / "snapshots"
    phase.fail_next(None, hang=60)  # the first process's request is never answered
    (tmp_path / "go").touch()
    holder = start(env, folder, tmp_path, "holder", deadline=60.0, threads=1)
    try:
        wait_for(lambda: gets(phase) == 1, 30, "the holder's request")
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the key's lock, mid-fetch
        holder.wait(10)
        deadline = 10.0
        next_one = start(env, folder, tmp_path, "next", deadline=deadline, threads=1)
        try:
            report = report_of(next_one)
        finally:
            finish(next_one)
    finally:
        finish(holder)
    assert report["values"] == [VALUE] and report["source"] == "phase"
    # It did not wait out its lock budget (half its deadline): the kernel released the lock.
    assert report["slowest"] < deadline / 2, report
    print(f"T17 killed holder: the next process loaded in {report['slowest']:.2f} s")


def test_a_stalled_holder_costs_half_the_deadline_at_most(
    fake: tuple[FakePhase, str, dict[str, str]], tmp_path: Path
) -> None:
    phase, _, env = fake
    folder = tmp_path / "snapshots"
    phase.fail_next(None, hang=60)
    (tmp_path / "go").touch()
    holder = start(env, folder, tmp_path, "holder", deadline=60.0, threads=1)
    try:
        wait_for(lambda: gets(phase) == 1, 30, "the holder's request")
        deadline = 2.0
        waiter = start(env, folder, tmp_path, "waiter", deadline=deadline, threads=1)
        try:
            report = report_of(waiter)
        finally:
            finish(waiter)
    finally:
        finish(holder)
    assert report["values"] == [VALUE] and report["source"] == "phase"
    assert deadline / 2 - 0.1 <= report["slowest"] <= deadline + 0.5, report
    print(f"T17 stalled holder: the waiter loaded in {report['slowest']:.2f} s")
