"""T12 for real: a NEW process started while Phase is down boots from the on-disk snapshot.

Phase refuses connections, answers 503, or accepts and never answers; the snapshot folder holds
a snapshot older than the TTL (so it is not a cache hit: the process must try Phase first). The
process must boot from the snapshot within its deadline, report ``source == "snapshot"`` and log
exactly one WARNING that names the snapshot's age. Without a snapshot (or with one too old) the
same start ends in the ``PhaseUnavailableError``: the snapshot is what made the difference.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from phase_settings._load.fetch import cache_keys
from phase_settings._models import Secret
from phase_settings._settings.config import resolve_config
from phase_settings._snapshot.store import SnapshotKey, SnapshotStore
from phase_settings.testing import FakePhase

from .._subprocesses import PYTHON, clean_env, run
from .conftest import DEADLINE, MARGIN, RawServer, closed_port, silent

CANARY = "t12-boot-canary-4b1d"
APP_ID = "3f2c6a8e-1b7d-4c55-9a0e-5d6f7a8b9c0d"

CHILD = """
import json, logging, sys, time
from pydantic import SecretStr
from phase_settings import PhaseError, PhaseSettings, PhaseSettingsConfigDict, load_status

records = []

class Keep(logging.Handler):
    def emit(self, record):
        records.append([record.levelname, record.name, record.getMessage()])

logger = logging.getLogger("phase_settings")
logger.addHandler(Keep())
logger.setLevel(logging.DEBUG)

class Settings(PhaseSettings):
    model_config = PhaseSettingsConfigDict(
        phase_env="development", phase_deadline=float(sys.argv[1]), phase_max_attempts=3
    )
    api_key: SecretStr

started = time.monotonic()
try:
    value = Settings().api_key.get_secret_value()
    error = None
except PhaseError as exc:
    value, error = None, type(exc).__name__
seconds = time.monotonic() - started
status = load_status(Settings)
print(json.dumps({
    "value": value, "error": error, "seconds": seconds, "source": status.source,
    "warnings": [r for r in records if r[0] == "WARNING"],
}))
"""


@contextlib.contextmanager
def phase_down(how: str) -> Iterator[str]:
    """The URL of a Phase that is down in one way."""
    if how == "connection refused":
        yield f"http://127.0.0.1:{closed_port()}"
    elif how == "503":
        fake = FakePhase()
        fake.fail_next(503, times=1000)
        with fake.serve() as url:
            yield url
    else:
        with RawServer(silent) as raw:
            yield raw.url


def token() -> str:
    return "pss_service:v2:" + ":".join(part * 32 for part in ("a7", "b8", "c9", "d0"))


def seed(folder: Path, url: str, *, age: timedelta) -> None:
    """The snapshot a process that loaded ``age`` ago would have left for this Phase."""
    config = resolve_config(
        {"phase_token": token(), "phase_host": url, "phase_app_id": APP_ID,
         "phase_env": "development"},
        {},
        environ={},
    )  # fmt: skip
    [key] = cache_keys(config)
    store = SnapshotStore(folder, token(), max_age=1e9)
    secret = Secret("id-1", "API_KEY", CANARY)
    # Snapshot names keep the bearer part's fingerprint (the cache key's covers the key parts).
    named = key._replace(token_fingerprint=config.credentials.header_fingerprint)
    assert store.write(SnapshotKey(config.mode, *named), [secret], datetime.now(UTC) - age)


def boot(folder: Path, url: str) -> dict[str, Any]:
    env = clean_env(
        {
            "PHASE_SERVICE_TOKEN": token(),
            "PHASE_HOST": url,
            "PHASE_APP_ID": APP_ID,
            "PHASE_SNAPSHOT_DIR": str(folder),
        }
    )
    result = run([PYTHON, "-c", CHILD, str(DEADLINE)], env=env, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


HOW = ["connection refused", "503", "accept, never respond"]


@pytest.mark.parametrize("how", HOW)
def test_a_new_process_boots_from_the_snapshot_while_phase_is_down(
    tmp_path: Path, how: str
) -> None:
    folder = tmp_path / "snapshots"
    with phase_down(how) as url:
        seed(folder, url, age=timedelta(hours=2))  # older than the TTL (300 s)
        report = boot(folder, url)
    assert report["value"] == CANARY and report["error"] is None, report
    assert report["source"] == "snapshot"
    assert report["seconds"] <= DEADLINE + MARGIN, report["seconds"]
    [warning] = report["warnings"]
    assert "2 h old" in warning[2] and "snapshot" in warning[2], warning
    assert CANARY not in json.dumps(report["warnings"])
    print(f"T12 {how}: booted from the snapshot in {report['seconds']:.2f} s")


@pytest.mark.parametrize("how", HOW)
def test_without_a_usable_snapshot_the_same_start_fails(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "snapshots"
    with phase_down(how) as url:
        seed(folder, url, age=timedelta(days=8))  # older than phase_snapshot_max_age
        report = boot(folder, url)
    assert report["value"] is None and report["error"] in (
        "PhaseConnectionError",
        "PhaseServerError",
    ), report
    assert report["seconds"] <= DEADLINE + MARGIN, report["seconds"]
