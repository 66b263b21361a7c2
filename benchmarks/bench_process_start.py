"""2. Process start: a new Python process that imports the library and loads the 200-field
settings from the loopback fake, vs a new process that does one raw ``httpx.get`` and builds
the same class from environment variables. The floor passes ``verify=False``: over plain
``http://`` on loopback no certificate is checked, and the library rightly skips loading the CA
bundle there too (with the default ``verify`` httpx loads it anyway, about 50 ms a process).
The two alternate; median of 11 pairs.
Target: ratio <= 1.05.

4. Import cost: ``from phase_settings import PhaseSettings, …`` inside a process that has
already imported pydantic_settings and httpx, run from outside the checkout (median of 9).
Target <= 10 ms,
and neither Django, Flask nor the command line is imported.
"""

from __future__ import annotations

import json
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
PAIRS = 11

OURS = """
import sys; sys.path.insert(0, {here!r})
from workload import phase_settings_class
Settings = phase_settings_class()
s = Settings()
assert s.field_001 == 1001
"""

BASELINE = """
import sys; sys.path.insert(0, {here!r})
import json, httpx
from workload import env_settings_class
r = httpx.get({endpoint!r}, params={params!r}, headers={headers!r}, verify=False)
json.loads(r.content)
EnvSettings = env_settings_class()
s = EnvSettings()
assert s.field_001 == 1001
"""

IMPORT = """
import json, sys, time
import pydantic_settings, httpx
started = time.perf_counter()
from phase_settings import PhaseSettings, PhaseSettingsConfigDict
elapsed = time.perf_counter() - started
heavy = [m for m in ("django", "flask", "phase_settings.cli", "phase_settings.testing")
         if m in sys.modules]
print(json.dumps({"ms": elapsed * 1000, "heavy": heavy}))
"""


def run(code: str, env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, check=True, timeout=60)
    return time.perf_counter() - started


def main() -> int:
    # An installed package ships compiled bytecode (pip compiles on install); an editable
    # checkout under PYTHONDONTWRITEBYTECODE would recompile every module on every start.
    import compileall

    import phase_settings

    compileall.compile_dir(str(Path(phase_settings.__file__).parent), quiet=1)
    fake, app_id, token = serve_fake()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE_")}
    with fake.serve() as url, tempfile.TemporaryDirectory() as outside:
        ours_env = dict(
            base_env,
            PHASE_HOST=url,
            PHASE_APP_ID=app_id,
            PHASE_SERVICE_TOKEN=token,
            PHASE_ENV="development",
        )
        floor_env = dict(base_env, **secrets())
        ours = OURS.format(here=str(HERE))
        floor = BASELINE.format(
            here=str(HERE),
            endpoint=f"{url}/service/public/v1/secrets/",
            params={"app_id": app_id, "env": "development", "path": "/"},
            headers={"Authorization": "Bearer ServiceAccount " + token.split(":")[2]},
        )
        run(ours, ours_env, outside), run(floor, floor_env, outside)  # warm the OS caches
        ratios = []
        for _ in range(PAIRS):
            base = run(floor, floor_env, outside)
            mine = run(ours, ours_env, outside)
            ratios.append(mine / base)
        imports = []
        heavy: set[str] = set()
        for _ in range(9):
            out = subprocess.run(
                [sys.executable, "-c", IMPORT],
                env=base_env,
                cwd=outside,
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
            result = json.loads(out.stdout)
            imports.append(result["ms"])
            heavy.update(result["heavy"])
    ok = verdict("2. process start: import+load / httpx.get+env", statistics.median(ratios), 1.05)
    ok &= verdict("4. import cost (ms)", statistics.median(imports), 10.0, " ms")
    print(f"   modules imported by 'import phase_settings' that should not be: {sorted(heavy)}")
    ok &= not heavy
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
