"""12. The on-disk snapshot: one request per host per TTL, and what a snapshot start costs.

a. 8 worker processes with 16 threads each, released together, one snapshot folder, the loopback
   fake: requests per host per TTL (the GETs the fake received). Target: 1.0.
b. A new process served by a fresh snapshot (the fake is up but gets no request) vs a new process
   loading the same class without a token (its values in environment variables): the snapshot
   path adds a file read, a PyNaCl import and one decryption. The two alternate; median of 11
   pairs. Target: ratio <= 1.15.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import secrets, serve_fake, verdict

HERE = Path(__file__).resolve().parent
WORKERS = 8
THREADS = 16
PAIRS = 11

WORKER = """
import os, sys, threading, time
sys.path.insert(0, {here!r})
from workload import phase_settings_class
Settings = phase_settings_class(phase_deadline=30.0)
open({ready!r} + str(os.getpid()), "w").close()
for _ in range(12000):  # released together (at most 60 s)
    if os.path.exists({go!r}):
        break
    time.sleep(0.005)
barrier = threading.Barrier({threads})
def work():
    barrier.wait(timeout=60)
    assert Settings().field_001 == 1001
workers = [threading.Thread(target=work) for _ in range({threads})]
for w in workers: w.start()
for w in workers: w.join(120)
"""

START = """
import sys; sys.path.insert(0, {here!r})
from workload import phase_settings_class
Settings = phase_settings_class()
assert Settings().field_001 == 1001
"""


def gets(fake: object) -> int:
    return sum(1 for r in fake.requests if r.method == "GET")  # type: ignore[attr-defined]


def fleet(env: dict[str, str], work: Path) -> None:
    ready, go = str(work / "ready-"), str(work / "go")
    code = WORKER.format(here=str(HERE), ready=ready, go=go, threads=THREADS)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(WORKERS)]
    try:
        give_up = time.monotonic() + 120
        while len(list(work.glob("ready-*"))) < WORKERS and time.monotonic() < give_up:
            time.sleep(0.01)
        Path(go).touch()
        for proc in procs:
            if proc.wait(timeout=180):
                raise SystemExit("a worker failed")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def start(env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    code = START.format(here=str(HERE))
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True, timeout=60)
    return time.perf_counter() - started


def main() -> int:
    import compileall

    import phase_settings

    compileall.compile_dir(str(Path(phase_settings.__file__).parent), quiet=1)
    fake, app_id, token = serve_fake()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE_")}
    with fake.serve() as url, tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        phase_env = dict(
            base_env,
            PHASE_HOST=url,
            PHASE_APP_ID=app_id,
            PHASE_SERVICE_TOKEN=token,
            PHASE_ENV="development",
            PHASE_SNAPSHOT_DIR=str(work / "snapshots"),
        )
        fleet(phase_env, work)
        requests = gets(fake)  # one host, all within one TTL (300 s)

        env_only = dict(base_env, **secrets())  # the same class, no token: env vars only
        start(phase_env, scratch), start(env_only, scratch)  # warm the OS caches
        before = gets(fake)
        ratios = []
        for _ in range(PAIRS):
            base = start(env_only, scratch)
            mine = start(phase_env, scratch)
            ratios.append(mine / base)
        served_by_phase = gets(fake) - before
    ok = verdict("12a. requests per host per TTL (8x16)", float(requests), 1.0)
    ok &= verdict("12b. start: fresh snapshot / env vars only", statistics.median(ratios), 1.15)
    print(f"   requests made by the {PAIRS + 1} snapshot starts: {served_by_phase} (expected 0)")
    ok &= served_by_phase == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
