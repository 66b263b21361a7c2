"""5. Scale: environments of 100, 1,000 and 10,000 secrets (values up to 1 KB).

Each size loads in a fresh process (the fake server runs in this one, so the child's memory is
the library's). Time and peak memory must grow linearly: the 10,000/1,000 time ratio <= 12,
and peak RSS for 10,000 secrets <= 5 x the response body above the baseline process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from common import serve_fake, verdict

HERE = Path(__file__).resolve().parent

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from workload import phase_settings_class
import phase_settings
Settings = phase_settings_class({fields})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
times = []
for _ in range(3):
    phase_settings.clear_cache()
    started = time.perf_counter()
    s = Settings()
    times.append(time.perf_counter() - started)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert s.field_001 == 1001
print(json.dumps({{"seconds": sorted(times)[1], "peak_above_base": peak - base}}))
"""


def main() -> int:
    results = {}
    for n in (100, 1_000, 10_000):
        fake, app_id, token = serve_fake(n, value_bytes=1024)
        with fake.serve() as url:
            body = httpx.get(
                f"{url}/service/public/v1/secrets/",
                params={"app_id": app_id, "env": "development", "path": "/"},
                headers={"Authorization": "Bearer ServiceAccount " + token.split(":")[2]},
                timeout=60,
            ).content
            env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE_")}
            env.update(
                PHASE_HOST=url,
                PHASE_APP_ID=app_id,
                PHASE_SERVICE_TOKEN=token,
                PHASE_ENV="development",
            )
            out = subprocess.run(
                [sys.executable, "-c", CHILD.format(here=str(HERE), fields=min(n, 200))],
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        result = json.loads(out.stdout)
        result["body"] = len(body)
        results[n] = result
        print(
            f"   {n:>6} secrets: body {len(body) / 1e6:6.2f} MB, load "
            f"{result['seconds'] * 1000:8.1f} ms, peak RSS above baseline "
            f"{result['peak_above_base'] / 1e6:6.2f} MB",
            flush=True,
        )
    ok = verdict(
        "5. scale: time 10,000 / 1,000 secrets",
        results[10_000]["seconds"] / results[1_000]["seconds"],
        12,
    )
    ok &= verdict(
        "5. scale: peak RSS / body at 10,000 secrets",
        results[10_000]["peak_above_base"] / results[10_000]["body"],
        5,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
