"""How hard one load is to follow: the calls into the package made by one cold ``Settings()``.

Counts the ``sys.setprofile`` "call" events whose code lies in ``phase_settings/`` (the fake
server's ``testing/`` excluded, it runs in threads the profile does not see anyway) during one
cold load of a 20-field class against the loopback fake, for an SSE app and for an E2EE app, and
the distinct modules they touch. A module entry is a call whose caller lies outside that module.

    python benchmarks/bench_module_entries.py
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import phase_settings_class, secrets

import phase_settings
from phase_settings.testing import FakePhase

PACKAGE = str(Path(phase_settings.__file__).resolve().parent) + os.sep
TESTING = PACKAGE + "testing" + os.sep
FIELDS = 20


def _ours(filename: str) -> bool:
    return filename.startswith(PACKAGE) and not filename.startswith(TESTING)


def count_one_load(sse: bool) -> tuple[int, int, int, Counter[str]]:
    """(module entries, calls, distinct modules, entries per module) of one cold load."""
    fake = FakePhase()
    app_id = fake.add_app("bench", sse=sse)
    token = fake.add_service_account(envs=None)
    for key, value in secrets(FIELDS).items():
        fake.set_secret(app_id, "development", key, value)
    Settings = phase_settings_class(FIELDS)
    with fake.serve() as url:
        os.environ.update(
            PHASE_HOST=url,
            PHASE_APP_ID=app_id,
            PHASE_SERVICE_TOKEN=token,
            PHASE_ENV="development",
            PHASE_MODE="auto",
        )
        phase_settings.clear_cache()
        Settings()  # imports and the pooled client warm; the load below is cold again
        phase_settings.clear_cache()
        entries: Counter[str] = Counter()
        calls = 0

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            nonlocal calls
            if event != "call" or not _ours(frame.f_code.co_filename):
                return
            calls += 1
            caller = frame.f_back
            if caller is None or caller.f_code.co_filename != frame.f_code.co_filename:
                entries[frame.f_code.co_filename[len(PACKAGE) :]] += 1

        sys.setprofile(profile)
        try:
            Settings()
        finally:
            sys.setprofile(None)
    return sum(entries.values()), calls, len(entries), entries


def main() -> int:
    for label, sse in (("SSE app (REST)", True), ("E2EE app", False)):
        total, calls, modules, entries = count_one_load(sse)
        print(f"{label:<16} {total:>5} module entries, {calls:>5} calls, {modules:>3} modules")
        for module, n in entries.most_common(6):
            print(f"    {n:>4}  {module}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
