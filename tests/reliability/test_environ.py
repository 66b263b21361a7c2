"""T13: ``os.environ`` hygiene. Loading, refreshing (sync and async) and falling back never
write the process environment, and a child process sees no secret key or value."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from pydantic import SecretStr

import phase_settings
from phase_settings import LiveSettings, aload

from ..conftest import Phase
from .conftest import settings_class


def test_environ_is_never_written(phase: Phase, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    keys = {f"T13_DB_{tag}": f"db-{uuid.uuid4()}", f"T13_KEY_{tag}": f"key-{uuid.uuid4()}"}
    rotated = f"rotated-{uuid.uuid4()}"
    dotenv_value = f"dotenv-{uuid.uuid4()}"
    for key, value in keys.items():
        phase.set(key, value)
    (tmp_path / ".env").write_text(f"T13_ONLY_DOTENV_{tag}={dotenv_value}\n")
    fields = {
        f"t13_db_{tag.lower()}": (str, ""),
        f"t13_key_{tag.lower()}": (SecretStr, SecretStr("")),
        f"t13_only_dotenv_{tag.lower()}": (str, ""),
    }
    before = dict(os.environ)

    Settings = settings_class(
        phase, fields, env_file=".env", phase_cache_ttl=0, phase_max_attempts=1
    )
    settings = Settings()
    assert getattr(settings, f"t13_db_{tag.lower()}") == keys[f"T13_DB_{tag}"]
    live = LiveSettings(Settings)
    phase.set(f"T13_DB_{tag}", rotated)
    assert live.refresh() == frozenset({f"t13_db_{tag.lower()}"})
    asyncio.run(aload(Settings))
    asyncio.run(live.arefresh())
    phase.fake.fail_next(503, times=100)
    Settings()  # last good values
    phase_settings.clear_cache()
    fallback = Settings()  # the .env fallback
    assert getattr(fallback, f"t13_only_dotenv_{tag.lower()}") == dotenv_value
    assert dict(os.environ) == before

    child = subprocess.run(
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(child.stdout)
    secrets = [*keys.values(), rotated, dotenv_value]
    leaked_keys = [k for k in seen if tag in k.upper()]
    leaked_values = [s for s in secrets if any(s in v for v in seen.values())]
    assert leaked_keys == [] and leaked_values == []
    print(
        f"[T13] environment diff after load/refresh/aload/arefresh/fallback: "
        f"{len(set(os.environ.items()) ^ set(before.items()))} entries; child process saw "
        f"{len(leaked_keys)} secret keys and {len(leaked_values)} secret values"
    )
