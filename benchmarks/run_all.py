"""`make bench`: run every benchmark; each prints its figures with target and PASS/FAIL."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_reload.py", "bench_process_start.py", "bench_scale.py", "bench_requests.py"]
SCRIPTS += ["bench_snapshot.py"]
SCRIPTS += ["bench_e2ee.py"]


def main() -> int:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    print(
        f"phase-settings benchmarks on {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()}"
    )
    failed = []
    started = time.perf_counter()
    for script in SCRIPTS:
        print(f"\n-- {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], timeout=900).returncode:
            failed.append(script)
    print(
        f"\n{len(SCRIPTS) - len(failed)} passed, {len(failed)} failed "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
