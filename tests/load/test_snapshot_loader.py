"""The on-disk snapshot in the load pipeline, against the loopback fake: what is served from it,
when it is written, and every fault of the disk that must never be served nor crash a load."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import SecretStr, ValidationError

from phase_settings import (
    LiveSettings,
    PhaseAuthError,
    PhaseNotFoundError,
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
    aload,
    clear_cache,
    load_status,
)
from phase_settings._load.cache import Fetched
from phase_settings._load.fetch import cache_keys
from phase_settings._load.runtime import runtime
from phase_settings._load.snapshot_tier import SnapshotTier
from phase_settings._settings.config import resolve_config
from phase_settings._snapshot.store import SnapshotKey, SnapshotStore

from .. import _modes
from ..conftest import Phase

phase_mode = _modes.phase_mode  # every test in both API modes


def fetches(phase: Phase) -> int:
    """Requests for secrets (REST, or the E2EE API's folder reads; not its key requests)."""
    return sum(
        1
        for r in phase.fake.requests
        if r.method == "GET" and r.path.rstrip("/").endswith("secrets")
    )


CANARY = "canary-snapshot-value-7f3e"
DOTENV_VALUE = "from-the-env-file"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


def make(phase: Phase, folder: Path, *, field: Any = SecretStr, **config: Any) -> type[Any]:
    settings = phase.config(
        **{"phase_snapshot_dir": str(folder), "phase_max_attempts": 1, "phase_deadline": 2.0,
           **config}
    )  # fmt: skip

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**settings)  # type: ignore[typeddict-item]
        api_key: field  # type: ignore[valid-type]

    return Settings


def value(settings: Any) -> Any:
    api_key = settings.api_key
    return api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.snapshot")) if folder.exists() else []


def snapshot_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name == "phase_settings.snapshot"
    ]


def layer_and_key(cls: type[Any]) -> tuple[SnapshotTier, SnapshotKey, Any]:
    config = resolve_config(cls.model_config, {})
    layer = runtime.snapshot_tier(config)
    assert isinstance(layer, SnapshotTier)
    [key] = cache_keys(config)
    # Snapshot names keep the bearer part's fingerprint (the cache key's covers the key parts).
    named = key._replace(token_fingerprint=config.credentials.header_fingerprint)
    return layer, SnapshotKey(config.mode, *named), config


def age_snapshot(cls: type[Any], seconds: float) -> None:
    """Rewrite the class's snapshot as fetched ``seconds`` ago (a store that accepts it)."""
    layer, key, _ = layer_and_key(cls)
    snapshot = layer.store.read(key)
    assert snapshot is not None
    path = layer.store.path_for(key)
    os.unlink(path)
    fetched_at = datetime.now(UTC) - timedelta(seconds=seconds)
    fresh = SnapshotStore(layer.store.directory, cls.model_config["phase_token"], max_age=1e9)
    assert fresh.write(key, snapshot.secrets, fetched_at)


@pytest.fixture
def down(phase: Phase) -> Callable[[int], None]:
    def fail(status: int = 503) -> None:
        phase.fake.fail_next(status, times=50)

    return fail


def test_a_fresh_snapshot_is_served_without_a_request_and_keeps_its_lifetime(
    phase: Phase, folder: Path
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder, phase_cache_ttl=300)
    assert value(Settings()) == CANARY and fetches(phase) == 1
    assert len(files(folder)) == 1
    clear_cache()  # a new process: empty memory, the same folder
    assert value(Settings()) == CANARY
    assert fetches(phase) == 1 and load_status(Settings).source == "cache"
    [key] = cache_keys(resolve_config(Settings.model_config, {}))
    entry = runtime.cache.get_fresh(key, 300)
    assert entry is not None and 0 < entry.lifetime <= 300


def test_a_snapshot_older_than_the_ttl_is_not_a_cache(phase: Phase, folder: Path) -> None:
    phase.set("API_KEY", "v1")
    Settings = make(phase, folder, phase_cache_ttl=60)
    Settings()
    age_snapshot(Settings, 120)
    clear_cache()
    phase.set("API_KEY", "v2")
    assert value(Settings()) == "v2" and fetches(phase) == 2
    assert load_status(Settings).source == "phase"


def test_during_an_outage_a_new_process_boots_from_the_snapshot(
    phase: Phase, folder: Path, down: Callable[[int], None], caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder)
    Settings()
    age_snapshot(Settings, 3 * 3600)
    clear_cache()
    down(503)
    with caplog.at_level(logging.WARNING, logger="phase_settings"):
        assert value(Settings()) == CANARY
    assert load_status(Settings).source == "snapshot"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "3 h old" in warnings[0]
    assert CANARY not in caplog.text


def test_a_validation_failure_writes_no_snapshot(phase: Phase, folder: Path) -> None:
    phase.set("API_KEY", "not-a-number")
    Settings = make(phase, folder, field=int)
    with pytest.raises(ValidationError):
        Settings()
    assert files(folder) == []
    phase.set("API_KEY", "42")
    clear_cache()
    assert value(Settings()) == 42 and len(files(folder)) == 1


@pytest.mark.parametrize("status, error", [(401, PhaseAuthError), (403, PhaseAuthError),
                                           (404, PhaseNotFoundError)])  # fmt: skip
def test_an_error_that_is_not_an_outage_never_serves_the_snapshot(
    phase: Phase, folder: Path, status: int, error: type[Exception]
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder)
    Settings()
    age_snapshot(Settings, 600)
    clear_cache()
    phase.fake.fail_next(status, times=5)
    with pytest.raises(error):
        Settings()
    assert load_status(Settings).source == "none"


def truncate(data: bytes, _: Path) -> bytes:
    return data[: len(data) // 2]


def flip_bit(data: bytes, _: Path) -> bytes:
    return data[:-5] + bytes([data[-5] ^ 0x01]) + data[-4:]


def other_version(data: bytes, _: Path) -> bytes:
    return data[:6] + bytes([data[6] + 1]) + data[7:]


def other_key(_: bytes, other: Path) -> bytes:
    return other.read_bytes()


@pytest.mark.parametrize("damage", [truncate, flip_bit, other_version, other_key])
@pytest.mark.parametrize("with_env_file", [True, False])
def test_a_damaged_snapshot_is_one_warning_and_never_served(
    phase: Phase,
    folder: Path,
    tmp_path: Path,
    damage: Callable[[bytes, Path], bytes],
    with_env_file: bool,
    down: Callable[[int], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    env_file = tmp_path / "app.env"
    if with_env_file:
        env_file.write_text(f"API_KEY={DOTENV_VALUE}\n")
    phase.set("API_KEY", CANARY)
    phase.set("API_KEY", "other-folder-value", path="/other")
    Other = make(phase, folder, phase_path="/other")
    Other()
    [other_file] = files(folder)
    Settings = make(phase, folder, env_file=str(env_file))
    Settings()
    [mine] = [p for p in files(folder) if p != other_file]
    age_snapshot(Settings, 600)
    mine.write_bytes(damage(mine.read_bytes(), other_file))
    clear_cache()
    down(503)
    with caplog.at_level(logging.WARNING, logger="phase_settings"):
        if with_env_file:
            assert value(Settings()) == DOTENV_VALUE
            assert load_status(Settings).source == "dotenv"
        else:
            with pytest.raises(PhaseServerError):
                Settings()
    assert len(snapshot_warnings(caplog)) == 1, snapshot_warnings(caplog)
    assert CANARY not in caplog.text


def test_the_newer_snapshot_stays_on_disk(phase: Phase, folder: Path) -> None:
    phase.set("API_KEY", "newer")
    Settings = make(phase, folder)
    Settings()
    layer, key, config = layer_and_key(Settings)
    [cache_key] = cache_keys(config)
    on_disk = layer.last_good(cache_key)
    assert on_disk is not None
    older = Fetched(on_disk.secrets, on_disk.fetched_at - timedelta(seconds=30), 0.0)
    layer.put(cache_key, older)  # a racing process that fetched earlier
    snapshot = layer.store.read(key)
    assert snapshot is not None and snapshot.fetched_at == on_disk.fetched_at


def test_a_snapshot_older_than_max_age_is_never_served(
    phase: Phase, folder: Path, down: Callable[[int], None]
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder, phase_snapshot_max_age=3600)
    Settings()
    age_snapshot(Settings, 7200)
    clear_cache()
    down(503)
    with pytest.raises(PhaseServerError):
        Settings()


def test_fallback_raise_serves_a_fresh_snapshot_but_never_one_after_a_failure(
    phase: Phase, folder: Path, down: Callable[[int], None]
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder, phase_fallback="raise")
    Settings()
    clear_cache()
    down(503)
    assert value(Settings()) == CANARY and load_status(Settings).source == "cache"
    age_snapshot(Settings, 600)
    clear_cache()
    with pytest.raises(PhaseServerError):
        Settings()


def test_a_load_of_several_paths_uses_the_snapshot_only_if_every_path_is_there(
    phase: Phase, folder: Path
) -> None:
    phase.set("API_KEY", "root")
    phase.set("OTHER", "b", path="/b")
    Root = make(phase, folder)
    Root()  # the snapshot holds "/" only
    Both = make(phase, folder, phase_path="/,/b")
    clear_cache()
    before = fetches(phase)
    Both()
    assert fetches(phase) == before + 2  # "/" is not taken from the snapshot alone
    clear_cache()
    Both()
    assert fetches(phase) == before + 2 and load_status(Both).source == "cache"


def test_a_folder_that_cannot_be_created_is_one_warning_and_loads_go_on(
    phase: Phase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    phase.set("API_KEY", CANARY)
    Settings = make(phase, blocker / "snapshots")
    for _ in range(3):
        clear_cache() if _ == 2 else None
        assert value(Settings()) == CANARY
    assert len(snapshot_warnings(caplog)) == 2  # once per process (clear_cache: a new one)
    assert load_status(Settings).source == "phase"


@pytest.mark.parametrize("mode", [0o755, 0o777])
def test_a_volume_of_another_mode_is_used_through_its_phase_subfolder(
    phase: Phase, folder: Path, caplog: pytest.LogCaptureFixture, mode: int
) -> None:
    """A Docker named volume (0755) or a Kubernetes emptyDir (0777) as phase_snapshot_dir:
    the next process (and the next outage) finds the snapshot in ``<dir>/phase``."""
    folder.mkdir()
    folder.chmod(mode)
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder)
    Settings()
    clear_cache()  # a new process: served from the snapshot, younger than its TTL
    assert value(Settings()) == CANARY
    assert fetches(phase) == 1 and files(folder) == []
    assert [p.name for p in folder.iterdir()] == ["phase"]
    assert len(files(folder / "phase")) == 1
    assert snapshot_warnings(caplog) == []


def test_a_snapshot_that_cannot_be_written_is_one_warning_and_loads_go_on(
    phase: Phase, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder, phase_cache_ttl=0)
    layer, key, _ = layer_and_key(Settings)
    os.mkdir(layer.store.path_for(key))  # the file's name is taken by a folder
    for _ in range(3):
        assert value(Settings()) == CANARY
    assert len(snapshot_warnings(caplog)) == 1
    assert load_status(Settings).source == "phase"


def test_no_value_and_no_token_part_is_ever_on_disk(
    phase: Phase, folder: Path, down: Callable[[int], None]
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder)
    Settings()
    age_snapshot(Settings, 600)
    clear_cache()
    down(503)
    Settings()
    canaries = [CANARY.encode(), *(p.encode() for p in phase.token.split(":")[2:])]
    scanned = 0
    for path in folder.rglob("*"):
        data = path.read_bytes()
        scanned += 1
        for canary in canaries:
            assert canary not in data and canary.hex().encode() not in data, path.name
    assert scanned >= 2  # the snapshot and its lock file
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())


def test_the_async_path_reads_and_writes_the_snapshot(phase: Phase, folder: Path) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder)

    async def main() -> Any:
        return await aload(Settings)

    assert value(anyio.run(main)) == CANARY and len(files(folder)) == 1
    clear_cache()
    assert value(anyio.run(main)) == CANARY
    assert fetches(phase) == 1


@pytest.fixture(autouse=True)
def _no_stray_folders(folder: Path) -> Iterator[None]:
    yield
    shutil.rmtree(folder, ignore_errors=True)


def test_an_async_load_waits_for_the_lock_without_blocking_the_event_loop(
    phase: Phase, folder: Path
) -> None:
    phase.set("API_KEY", CANARY)
    Settings = make(phase, folder, phase_deadline=1.0)
    layer, key, _ = layer_and_key(Settings)
    ticks: list[float] = []

    async def main() -> Any:
        async def ticker() -> None:
            for _ in range(200):
                ticks.append(anyio.current_time())
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(ticker)
            loaded = await aload(Settings)
            tasks.cancel_scope.cancel()
        return loaded

    with layer.store.lock(key, 0) as got:  # another process holds the key's lock
        assert got
        loaded = anyio.run(main)
    assert value(loaded) == CANARY and fetches(phase) == 1  # fetched without the lock
    # The load polled the lock for half its deadline (0.5 s) in a worker thread: the event
    # loop kept running meanwhile.
    assert ticks[-1] - ticks[0] >= 0.4 and len(ticks) >= 10, ticks


def test_the_snapshot_is_off_by_default_and_set_by_phase_snapshot_dir(tmp_path: Path) -> None:
    from phase_settings import PhaseConfigError

    default = resolve_config({}, {}, environ={})
    assert default.snapshot_dir is None and default.snapshot_max_age == 7 * 24 * 3600
    folder = tmp_path / "from-env"
    config = resolve_config(
        {"phase_snapshot_dir": "/elsewhere"}, {}, environ={"PHASE_SNAPSHOT_DIR": str(folder)}
    )
    assert config.snapshot_dir == folder  # the environment beats model_config
    assert resolve_config({"phase_snapshot_dir": "  "}, {}, environ={}).snapshot_dir is None
    with pytest.raises(PhaseConfigError, match="phase_snapshot_dir"):
        resolve_config({"phase_snapshot_dir": 3}, {}, environ={})
    with pytest.raises(PhaseConfigError, match="phase_snapshot_max_age"):
        resolve_config({"phase_snapshot_max_age": -1}, {}, environ={})


@pytest.mark.anyio
async def test_aload_writes_no_snapshot_for_values_the_class_refuses(
    phase: Phase, folder: Path
) -> None:
    phase.set("API_KEY", "not-a-number")
    Settings = make(phase, folder, field=int)
    with pytest.raises(ValidationError):
        await aload(Settings)
    assert files(folder) == []
    phase.set("API_KEY", "42")
    clear_cache()
    assert value(await aload(Settings)) == 42 and len(files(folder)) == 1


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_refresh_the_class_refuses_leaves_the_snapshot_as_it_was(
    phase: Phase, folder: Path, asynchronous: bool
) -> None:
    phase.set("API_KEY", "41")
    Settings = make(phase, folder, field=int)
    live = LiveSettings(Settings)
    (snapshot,) = files(folder)
    written = snapshot.read_bytes()
    phase.set("API_KEY", "not-a-number")
    with pytest.raises(ValidationError):
        if asynchronous:
            anyio.run(live.arefresh)
        else:
            live.refresh()
    assert snapshot.read_bytes() == written
    phase.set("API_KEY", "43")
    live.refresh()
    assert value(live.current) == 43 and snapshot.read_bytes() != written
