"""`make demo`: serve the bundled fake Phase on 127.0.0.1, load Settings over real HTTP, print.

No Phase account needed: the fake follows Phase's REST contract (status codes, camelCase
fields, server-side reference resolution), so the loads below are the production code path.
It shows, in order: a load per environment (and the cache), the `phase-settings check` report,
a rotation, writing a `.env` fallback file, a refresh while Phase is down, and processes that
start while Phase is down: from the encrypted on-disk snapshot, then (without one) from `.env`.
It runs in a temporary folder, so no `.env` of yours is read.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from settings import Settings  # noqa: E402

from phase_settings import (  # noqa: E402
    LiveSettings,
    PhaseSettingsConfigDict,
    PhaseUnavailableError,
    clear_cache,
    load_status,
)
from phase_settings.cli import main as phase_settings_cli  # noqa: E402
from phase_settings.testing import FakePhase  # noqa: E402


def masked(value: object) -> str:
    text = str(value)  # SecretStr prints as '**********'
    if "*" in text:
        return "**** (SecretStr)"
    return text


def clock(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%H:%M:%S} UTC"


def heading(text: str) -> None:
    print(f"\n== {text}")


def command(*argv: str) -> int:
    """Run the command line in this process, as `phase-settings ARGV` would from a shell."""
    print(f"$ phase-settings {' '.join(argv)}")
    code = phase_settings_cli(list(argv))
    print(f"(exit code {code})")
    return code


def load_each_environment(fake: FakePhase, app_id: str) -> None:
    for env in ("development", "production"):
        os.environ["PHASE_ENV"] = env
        clear_cache()
        fake.clear_requests()
        started = time.perf_counter()
        settings = Settings()
        elapsed = (time.perf_counter() - started) * 1000
        status = load_status(Settings)
        heading(
            f"PHASE_ENV={env}: loaded from {status.source} in {elapsed:.1f} ms, "
            f"{len(fake.requests)} requests (one per folder)"
        )
        for name in type(settings).model_fields:
            print(f"  {name:<16} {masked(getattr(settings, name))}")
        for name in type(settings).model_fields:
            raw = fake.get_secret(app_id, env, name.upper())
            if raw is not None and "${" in raw["value"]:
                print(
                    f"  ({name}: Phase stores {raw['value']!r}; Phase resolves the "
                    f"${{…}} reference on the server, so the app gets the finished value)"
                )
        again = time.perf_counter()
        Settings()
        print(
            f"  second Settings(): {load_status(Settings).source}, "
            f"{(time.perf_counter() - again) * 1000:.2f} ms, "
            f"{len(fake.requests)} requests in total (served from the process-wide cache)"
        )


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # a pipe too: lines in order with stderr's
        sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(format="  %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    fake = FakePhase.from_seed(json.loads((HERE / "secrets.json").read_text()))
    app_id = fake.app_id("demo")
    token = fake.add_service_account(envs=None)
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        with fake.serve() as url:
            # What a deployment sets; the code of Settings stays the same everywhere.
            os.environ.update(PHASE_HOST=url, PHASE_APP_ID=app_id, PHASE_SERVICE_TOKEN=token)
            # A folder for the encrypted on-disk snapshot: what a process started during an
            # outage boots from (a volume or emptyDir in a container).
            os.environ["PHASE_SNAPSHOT_DIR"] = str(Path(folder) / "phase-snapshot")
            load_each_environment(fake, app_id)

            heading("where each field comes from: the `check` report (a CI or deploy step)")
            clear_cache()
            command("check", "settings:Settings", "--env", "development")
            print(
                "  (DB_HOST is read by no field: it is there for the ${DB_HOST} reference in "
                "SERVICE_URL, which Phase resolves)"
            )

            live = LiveSettings(Settings)
            live.on_change(lambda old, new, changed: print(f"  on_change: {sorted(changed)}"))
            fake.set_secret(app_id, "production", "MAX_CONNECTIONS", "150")
            heading("rotation: MAX_CONNECTIONS changed in Phase; live.refresh()")
            changed = live.refresh()
            print(
                f"  changed fields: {sorted(changed)}; max_connections is now "
                f"{live.current.max_connections}"
            )

            heading(
                "a fallback file: `export --for` writes what Settings reads to .env (mode 0600)"
            )
            command("export", "--for", "settings:Settings", "--output", ".env")

        heading("Phase goes down: a refresh fails and the current values stay")
        try:
            live.refresh()
        except PhaseUnavailableError as exc:
            status = live.status
            print(
                f"  refresh raised {type(exc).__name__}; max_connections is still "
                f"{live.current.max_connections}"
            )
            print(
                f"  live.status: the current values came from Phase, fetched at "
                f"{clock(status.fetched_at)}; Phase has been unreachable since "
                f"{clock(status.stale_since)}"
            )

        # --- SNAPSHOT STEP (issue #12) ---------------------------------------------------------
        heading("a process starts while Phase is down: it boots from the on-disk snapshot")
        clear_cache()  # a new process: nothing in memory
        settings = Settings()
        status = load_status(Settings)
        print(
            f"  the snapshot is younger than phase_cache_ttl, so it served Settings() without "
            f"asking Phase (load_status: source={status.source!r}); max_connections = "
            f"{settings.max_connections}"
        )

        class LaterStart(Settings):
            """The same settings in a process started after the snapshot's TTL: Phase is
            asked first (a TTL of 1 s here, so the demo need not wait 5 minutes)."""

            model_config = PhaseSettingsConfigDict(phase_cache_ttl=1.0)

        fetched_at = live.status.fetched_at
        assert fetched_at is not None
        age = (datetime.now(UTC) - fetched_at).total_seconds()
        time.sleep(min(1.1, max(0.0, 1.1 - age)))  # until the snapshot is older than 1 s
        clear_cache()
        settings = LaterStart()
        status = load_status(LaterStart)
        print(
            f"  a process started after the TTL: Phase could not be reached, so it booted from "
            f"the encrypted snapshot (load_status: source={status.source!r}); max_connections "
            f"= {settings.max_connections}"
        )
        snapshot_dir = Path(os.environ["PHASE_SNAPSHOT_DIR"])
        names = sorted(p.name for p in snapshot_dir.iterdir())
        print(
            f"  {snapshot_dir.name}/ (mode {snapshot_dir.stat().st_mode & 0o777:o}): "
            f"{len(names)} files named by keyed hashes, e.g. {names[0][:16]}…; sealed with "
            f"XChaCha20-Poly1305, no value readable on disk"
        )
        # ----------------------------------------------------------------------------------------

        heading("without a snapshot folder, a process started during the outage reads .env")
        del os.environ["PHASE_SNAPSHOT_DIR"]
        clear_cache()  # a new process: no values fetched earlier in this one to fall back on
        settings = Settings()
        status = load_status(Settings)
        print(
            f"  Phase could not be reached at startup, so Settings() read the .env file "
            f"(load_status: source={status.source!r}); max_connections = "
            f"{settings.max_connections}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
