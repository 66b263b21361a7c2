"""`make demo`: serve the bundled fake Phase on 127.0.0.1, load Settings over real HTTP, print.

No Phase account needed: the fake follows Phase's REST contract (status codes, camelCase
fields, server-side reference resolution), so the load below is the production code path.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from settings import Settings  # noqa: E402

from phase_settings import (  # noqa: E402
    LiveSettings,
    PhaseUnavailableError,
    clear_cache,
    load_status,
)
from phase_settings.testing import FakePhase  # noqa: E402


def masked(value: object) -> str:
    text = str(value)  # SecretStr prints as '**********'
    if "*" in text:
        return "**** (SecretStr)"
    return text


def main() -> int:
    fake = FakePhase.from_seed(json.loads((HERE / "secrets.json").read_text()))
    app_id = fake.app_id("demo")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        # What a deployment sets; the code of Settings stays the same everywhere.
        os.environ.update(PHASE_HOST=url, PHASE_APP_ID=app_id, PHASE_SERVICE_TOKEN=token)
        for env in ("development", "production"):
            os.environ["PHASE_ENV"] = env
            clear_cache()
            fake.clear_requests()
            started = time.perf_counter()
            settings = Settings()
            elapsed = (time.perf_counter() - started) * 1000
            status = load_status(Settings)
            print(
                f"\n== PHASE_ENV={env}: loaded from {status.source} in {elapsed:.1f} ms, "
                f"{len(fake.requests)} requests (one per folder)"
            )
            for name in type(settings).model_fields:
                print(f"  {name:<16} {masked(getattr(settings, name))}")
            again = time.perf_counter()
            Settings()
            print(
                f"  second Settings(): {load_status(Settings).source}, "
                f"{(time.perf_counter() - again) * 1000:.2f} ms, "
                f"{len(fake.requests)} requests in total"
            )

        live = LiveSettings(Settings)
        live.on_change(lambda old, new, changed: print(f"  on_change: {sorted(changed)}"))
        fake.set_secret(app_id, "production", "MAX_CONNECTIONS", "150")
        print("\n== rotation: MAX_CONNECTIONS changed in Phase; live.refresh()")
        changed = live.refresh()
        print(
            f"  changed fields: {sorted(changed)}; max_connections is now "
            f"{live.current.max_connections}"
        )
    print("\n== Phase unreachable: a refresh fails and the current values stay")
    try:
        live.refresh()
    except PhaseUnavailableError as exc:
        print(
            f"  refresh raised {type(exc).__name__}; max_connections is still "
            f"{live.current.max_connections}"
        )
        print(
            f"  live.status: source={live.status.source}, stale_since set: "
            f"{live.status.stale_since is not None}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
