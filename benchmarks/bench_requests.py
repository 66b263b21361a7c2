"""6. Requests per start, and the fleet's refresh spread.

8 worker processes with 64 threads each start at once against the loopback fake: exactly one
request per process (single-flight). Then 1,000 simulated caches with TTL 300 s: no 1-second
bucket of scheduled refreshes may hold more than 2 % of them.
"""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import serve_fake, verdict

from phase_settings._load.cache import SecretCache

HERE = Path(__file__).resolve().parent
WORKERS = 8
THREADS = 64

CHILD = """
import sys, threading
sys.path.insert(0, {here!r})
from workload import phase_settings_class
Settings = phase_settings_class(200)
barrier = threading.Barrier({threads})
errors = []
def start():
    barrier.wait()
    try:
        assert Settings().field_001 == 1001
    except Exception as exc:
        errors.append(exc)
threads = [threading.Thread(target=start) for _ in range({threads})]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(1 if errors else 0)
"""


def main() -> int:
    fake, app_id, token = serve_fake()
    with fake.serve() as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE_")}
        env.update(
            PHASE_HOST=url, PHASE_APP_ID=app_id, PHASE_SERVICE_TOKEN=token, PHASE_ENV="development"
        )
        code = CHILD.format(here=str(HERE), threads=THREADS)
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(WORKERS)]
        codes = [p.wait(timeout=120) for p in procs]
        requests = [r for r in fake.requests if r.path.endswith("/v1/secrets/")]
    print(
        f"   {WORKERS} processes x {THREADS} threads: {len(requests)} requests, exit codes {codes}"
    )
    ok = verdict("6. requests per process start", len(requests) / WORKERS, 1.0)
    ok &= all(c == 0 for c in codes) and len(requests) == WORKERS

    buckets: collections.Counter[int] = collections.Counter()
    for i in range(1000):
        cache = SecretCache(rng=random.Random(i))
        buckets[int(cache.lifetime(300.0))] += 1
    worst = max(buckets.values()) / 1000
    print(f"   1,000 caches, TTL 300 s: refreshes spread over {len(buckets)} one-second buckets")
    ok &= verdict("6. fleet: largest 1-second bucket share (%)", worst * 100, 2.0, " %")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
