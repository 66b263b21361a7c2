"""The encrypted snapshot store on its own: sealing, names, damaged files, newer-only writes,
folder checks and the lock's wait budget (process-level faults are in reliability T12/T17)."""

from __future__ import annotations

import hashlib
import logging
import os
import random
import stat
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

import phase_settings
from phase_settings import PhaseConfigError
from phase_settings._models import Secret, SecretOverride
from phase_settings._snapshot import envelope as envelope_module
from phase_settings._snapshot import store as snapshot_module
from phase_settings._snapshot.keys import derive_keys
from phase_settings._snapshot.lock import FileLock
from phase_settings._snapshot.store import (
    DEFAULT_MAX_AGE,
    Snapshot,
    SnapshotKey,
    SnapshotStore,
)

TOKEN_PART, PUB, SHARE0, WRAP = ("1a" * 32, "2b" * 32, "3c" * 32, "4d" * 32)
TOKEN = f"pss_service:v2:{TOKEN_PART}:{PUB}:{SHARE0}:{WRAP}"
OTHER_TOKEN = f"pss_service:v2:{TOKEN_PART}:{PUB}:{'5e' * 32}:{WRAP}"
REST_TOKEN = f"ServiceAccount {TOKEN_PART}"
KEY = SnapshotKey("sse", "https://api.phase.dev", "app-1", "Production", "/", (), "fp-1")
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SECRETS = (
    Secret(
        "id-1",
        "DB_PASSWORD",
        "hunter2-canary",
        comment="main db",
        tags=("db", "prod"),
        path="/backend",
        version=7,
        override=SecretOverride("ov-1", "override-canary", True, T0, T0),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=1),
        environment="env-1",
        folder="folder-1",
    ),
    Secret("id-2", "EMPTY", ""),
    Secret("id-3", "UNICODE", "päss wörd 🔑 \ud800"),
)


class FakeTime:
    """A monotonic clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "snapshots"


@pytest.fixture
def make_store(folder: Path) -> Iterator[Callable[..., SnapshotStore]]:
    rng = random.Random(12)

    def make(token: str = TOKEN, **kwargs: object) -> SnapshotStore:
        kwargs.setdefault("random_bytes", rng.randbytes)
        kwargs.setdefault("clock", lambda: T0 + timedelta(minutes=5))
        return SnapshotStore(folder, token, **kwargs)  # type: ignore[arg-type]

    yield make


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "phase_settings.snapshot" and r.levelno == logging.WARNING
    ]


# --- round trip and names ------------------------------------------------------------------


def test_round_trip_keeps_every_field(make_store: Callable[..., SnapshotStore]) -> None:
    store = make_store()
    assert store.read(KEY) is None  # nothing yet: a plain miss
    assert store.write(KEY, SECRETS, T0)
    got = store.read(KEY)
    assert got == Snapshot(SECRETS, T0)
    assert got is not None and got.secrets[0].effective_value == "override-canary"
    # a second store of the same token (another process) reads it too
    assert make_store().read(KEY) == Snapshot(SECRETS, T0)


@given(
    values=st.lists(st.text(st.characters(codec=None), max_size=30), min_size=1, max_size=5),
    tags=st.lists(st.text(max_size=5), max_size=3).map(tuple),
)
@settings(deadline=None)  # it writes and fsyncs files: a loaded disk is slow, not wrong
def test_round_trip_any_text(tmp_path_factory: pytest.TempPathFactory, values, tags) -> None:  # type: ignore[no-untyped-def]
    store = SnapshotStore(tmp_path_factory.mktemp("s") / "snap", TOKEN)
    secrets = [Secret(f"id{i}", f"K{i}", v, tags=tags) for i, v in enumerate(values)]
    key = KEY._replace(tags=tags)
    assert store.write(key, secrets, T0)
    assert store.read(key, now=T0) == Snapshot(tuple(secrets), T0)


def test_file_name_reveals_nothing_and_differs_per_key(
    make_store: Callable[..., SnapshotStore],
) -> None:
    store = make_store()
    keys = [
        KEY,
        KEY._replace(mode="e2ee"),
        KEY._replace(path=None),
        KEY._replace(path=""),
        KEY._replace(tags=("a",)),
        KEY._replace(tags=("a", "b")),
        KEY._replace(env="Staging"),
        KEY._replace(token_fingerprint="fp-2"),
    ]
    names = [os.path.basename(store.path_for(k)) for k in keys]
    assert len(set(names)) == len(keys)
    for name in names:
        stem = name.removesuffix(".snapshot")
        assert len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)
    # the same key with another token is another file
    assert make_store(OTHER_TOKEN).path_for(KEY) != store.path_for(KEY)


def test_key_is_derived_from_the_parts_the_server_never_sees() -> None:
    person = b"phase-settings\x00\x00"

    def blake(label: bytes, material: bytes) -> bytes:
        return hashlib.blake2b(label, digest_size=32, key=material, person=person).digest()

    material = bytes.fromhex(SHARE0) + bytes.fromhex(WRAP)
    keys = derive_keys(TOKEN, 1)
    assert keys.seal == blake(b"phase-settings snapshot v1 keyparts seal", material)
    assert keys.name == blake(b"phase-settings snapshot v1 keyparts name", material)
    assert keys.seal != keys.name
    # the bearer value alone (what the server knows) does not give the key of a pss_ token
    assert derive_keys(REST_TOKEN, 1).seal == blake(
        b"phase-settings snapshot v1 bearer seal", bytes.fromhex(TOKEN_PART)
    )
    assert derive_keys(REST_TOKEN, 1).seal != keys.seal
    assert derive_keys(OTHER_TOKEN, 1).seal != keys.seal
    assert derive_keys(SecretStr(TOKEN), 1) == keys
    assert derive_keys(TOKEN, 2).seal != keys.seal


@pytest.mark.parametrize("build", [SnapshotStore, lambda f, t: derive_keys(t, 1)])
def test_a_malformed_token_is_a_config_error_without_the_token(
    folder: Path, build: Callable[[Path, str], object]
) -> None:
    with pytest.raises(PhaseConfigError) as info:
        build(folder, f"pss_service:v2:{'ab' * 31}zz:canary-{SHARE0}")
    assert "is not a Phase token" in str(info.value)
    library = os.path.dirname(phase_settings.__file__)
    frames = [
        frame
        for frame, _ in traceback.walk_tb(info.value.__traceback__)
        if frame.f_code.co_filename.startswith(library)
    ]
    assert frames  # the error leaves from the library ...
    for frame in frames:  # ... from frames that hold no token (what capture_locals records)
        text = repr(frame.f_locals)
        assert "canary" not in text and SHARE0 not in text, frame.f_code.co_name


def test_repr_shows_no_key_material(make_store: Callable[..., SnapshotStore]) -> None:
    store = make_store()
    text = repr(store) + repr(store.read(KEY)) + repr(Snapshot(SECRETS, T0))
    text += repr(store._keys) + str(store._keys)
    for secret in (TOKEN_PART, SHARE0, WRAP, "hunter2-canary", store._keys.seal.hex()):
        assert secret not in text


# --- damaged and foreign files -------------------------------------------------------------


def test_every_truncation_is_one_warning_and_a_miss(
    make_store: Callable[..., SnapshotStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    assert store.write(KEY, SECRETS, T0)
    path = Path(store.path_for(KEY))
    data = path.read_bytes()
    for length in range(len(data)):
        path.write_bytes(data[:length])
        caplog.clear()
        assert store.read(KEY) is None, length
        assert len(warnings_of(caplog)) == 1, length


def test_any_flipped_bit_is_one_warning_and_a_miss(
    make_store: Callable[..., SnapshotStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store()
    assert store.write(KEY, SECRETS, T0)
    path = Path(store.path_for(KEY))
    data = path.read_bytes()
    rng = random.Random(7)
    for at in range(len(data)):
        damaged = bytearray(data)
        damaged[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(damaged))
        caplog.clear()
        assert store.read(KEY) is None, at
        assert len(warnings_of(caplog)) == 1, at
    path.write_bytes(data)
    assert store.read(KEY) == Snapshot(SECRETS, T0)  # the intact file is still served


def test_a_sealed_payload_of_the_wrong_shape_is_damaged(
    make_store: Callable[..., SnapshotStore],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = make_store()
    monkeypatch.setattr(envelope_module, "encode_payload", lambda s, t: b'{"secrets": 3}')
    assert store.write(KEY, SECRETS, T0)
    monkeypatch.undo()
    assert store.read(KEY) is None
    assert warnings_of(caplog) == [
        f"snapshot {os.path.basename(store.path_for(KEY))} holds a payload this release cannot "
        "read: not served"
    ]


# --- newer only ----------------------------------------------------------------------------


def test_an_older_or_equal_fetch_never_replaces_a_newer_one(
    make_store: Callable[..., SnapshotStore],
) -> None:
    store = make_store()
    assert store.write(KEY, SECRETS[:1], T0 + timedelta(seconds=10))
    assert not store.write(KEY, SECRETS[1:], T0)
    assert not store.write(KEY, SECRETS[1:], T0 + timedelta(seconds=10))
    assert store.read(KEY) == Snapshot(SECRETS[:1], T0 + timedelta(seconds=10))
    assert store.write(KEY, SECRETS[1:], T0 + timedelta(seconds=11))
    assert store.read(KEY) == Snapshot(SECRETS[1:], T0 + timedelta(seconds=11))


def test_a_damaged_file_is_replaced_by_the_next_success(
    make_store: Callable[..., SnapshotStore],
) -> None:
    store = make_store()
    assert store.write(KEY, SECRETS, T0 + timedelta(seconds=10))
    Path(store.path_for(KEY)).write_bytes(b"junk")
    assert store.write(KEY, SECRETS, T0)
    assert store.read(KEY) == Snapshot(SECRETS, T0)


def test_a_snapshot_dated_in_the_future_is_not_served_and_is_replaced(
    make_store: Callable[..., SnapshotStore], caplog: pytest.LogCaptureFixture
) -> None:
    now = T0 + timedelta(minutes=5)
    store = make_store()
    assert store.write(KEY, SECRETS, now + timedelta(days=30))  # a host whose clock ran ahead
    assert store.read(KEY, now=now) is None
    assert len(warnings_of(caplog)) == 1
    assert store.write(KEY, SECRETS[:1], now)  # otherwise no fetch could replace it for 30 days
    assert store.read(KEY, now=now) == Snapshot(SECRETS[:1], now)


def test_a_snapshot_older_than_max_age_is_never_served(
    make_store: Callable[..., SnapshotStore],
) -> None:
    store = make_store(max_age=3600.0)
    assert store.write(KEY, SECRETS, T0)
    assert store.read(KEY, now=T0 + timedelta(seconds=3599)) is not None
    assert store.read(KEY, now=T0 + timedelta(seconds=3601)) is None
    default = make_store()
    assert default.max_age == DEFAULT_MAX_AGE == 7 * 24 * 3600
    assert default.read(KEY, now=T0 + timedelta(days=6, hours=23)) is not None
    assert default.read(KEY, now=T0 + timedelta(days=7, seconds=1)) is None


def test_age_and_remaining_lifetime() -> None:
    snap = Snapshot(SECRETS, T0)
    assert snap.age(T0 + timedelta(seconds=90)) == 90
    assert snap.fresh_for(300, T0 + timedelta(seconds=90)) == 210
    assert snap.fresh_for(60, T0 + timedelta(seconds=90)) == -30
    assert snap.age(T0 - timedelta(seconds=5)) == 0


# --- folder checks -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o777, 0o750, 0o701, 0o711])
def test_a_volume_of_another_mode_keeps_the_snapshots_in_its_phase_subfolder(
    folder: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Docker's named volumes come 0755, Kubernetes' emptyDir 0777 (DESIGN §4)."""
    folder.mkdir()
    folder.chmod(mode)
    store = SnapshotStore(folder, TOKEN)
    assert store.enabled and store.folder == str(folder / "phase")
    assert store.write(KEY, SECRETS, T0)
    assert store.read(KEY, now=T0) == Snapshot(SECRETS, T0)
    with store.lock(KEY, 0.0) as got:
        assert got
    assert [p.name for p in folder.iterdir()] == ["phase"]
    assert stat.S_IMODE((folder / "phase").stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.stat().st_mode) == mode  # the volume itself is left as it is
    assert {stat.S_IMODE(p.stat().st_mode) for p in (folder / "phase").iterdir()} == {0o600}
    assert warnings_of(caplog) == []
    assert SnapshotStore(folder, TOKEN).read(KEY, now=T0) == Snapshot(SECRETS, T0)


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o777])
def test_a_phase_subfolder_of_another_mode_is_refused(
    folder: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "phase").mkdir()
    (folder / "phase").chmod(mode)  # the rule applies once: never to <dir>/phase
    store = SnapshotStore(folder, TOKEN)
    assert not store.enabled
    assert not store.write(KEY, SECRETS, T0)
    assert store.read(KEY) is None
    assert list((folder / "phase").iterdir()) == []
    assert warnings_of(caplog) == [
        f"snapshot folder {folder / 'phase'} has mode {mode:04o}, not 0700: "
        "no snapshot is used or written"
    ]


def test_a_phase_subfolder_that_is_a_link_is_refused(
    folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "phase").symlink_to(elsewhere)
    store = SnapshotStore(folder, TOKEN)
    assert not store.enabled and not store.write(KEY, SECRETS, T0)
    assert list(elsewhere.iterdir()) == []
    assert warnings_of(caplog) == [
        f"snapshot folder {folder / 'phase'} is a symbolic link: no snapshot is used or written"
    ]


def test_a_folder_of_another_user_disables_the_store(
    folder: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.mkdir(mode=0o700)
    real_uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    store = SnapshotStore(folder, TOKEN)
    assert not store.enabled and not store.write(KEY, SECRETS, T0)
    assert list(folder.iterdir()) == []
    assert len(warnings_of(caplog)) == 1
    assert "does not belong to this user" in warnings_of(caplog)[0]


def test_missing_parents_are_created_and_only_the_folder_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "cache" / "phase"
    store = SnapshotStore(folder, TOKEN)
    assert store.enabled and store.write(KEY, SECRETS, T0)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_folder_that_cannot_be_created_is_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("x")
    for folder in (tmp_path / "file" / "snap", tmp_path / "file"):
        caplog.clear()
        store = SnapshotStore(folder, TOKEN)
        assert not store.enabled
        assert store.read(KEY) is None and not store.write(KEY, SECRETS, T0)
        assert len(warnings_of(caplog)) == 1


def test_write_failures_are_one_warning_and_never_raise(
    make_store: Callable[..., SnapshotStore],
    folder: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store()
    assert store.enabled
    folder.rmdir()
    folder.write_text("not a folder any more")  # e.g. the volume went away
    assert not store.write(KEY, SECRETS, T0)
    assert not store.write(KEY, SECRETS, T0 + timedelta(seconds=1))
    assert store.read(KEY) is None
    assert warnings_of(caplog) == [  # once, for writing and reading alike
        f"snapshot folder {folder} is not a folder: no snapshot is used or written"
    ]


# --- the lock ------------------------------------------------------------------------------


def test_a_waiter_gives_up_after_its_budget(make_store: Callable[..., SnapshotStore]) -> None:
    fake = FakeTime()
    holder = make_store()
    waiter = make_store(monotonic=fake.monotonic, sleep=fake.sleep)
    with holder.lock(KEY, 0.0) as got:
        assert got and holder.holds_lock(KEY)
        with waiter.lock(KEY, 2.5) as waited:
            assert not waited
        assert abs(sum(fake.sleeps) - 2.5) < 1e-9  # exactly its budget, never more
        assert max(fake.sleeps) <= 0.05  # polls often enough to notice a release
        assert len(fake.sleeps) < 2.5 / 0.005  # and bounded in count
    with waiter.lock(KEY, 0.0) as got_later:
        assert got_later  # released at the end of the holder's block


def test_a_zero_budget_tries_once(make_store: Callable[..., SnapshotStore]) -> None:
    fake = FakeTime()
    waiter = make_store(monotonic=fake.monotonic, sleep=fake.sleep)
    with make_store().lock(KEY, 0.0), waiter.lock(KEY, 0.0) as got:
        assert not got
    assert fake.sleeps == []


def test_write_inside_the_lock_does_not_wait_on_itself(
    make_store: Callable[..., SnapshotStore],
) -> None:
    fake = FakeTime()
    store = make_store(monotonic=fake.monotonic, sleep=fake.sleep)
    with store.lock(KEY, 1.0) as got:
        assert got
        assert store.write(KEY, SECRETS, T0)
    assert fake.sleeps == []
    assert store.read(KEY) == Snapshot(SECRETS, T0)


def test_a_lock_taken_in_a_worker_thread_covers_writes_from_other_threads(
    make_store: Callable[..., SnapshotStore], caplog: pytest.LogCaptureFixture
) -> None:
    # async callers poll the lock in a worker thread and write from the event loop's thread
    fake = FakeTime()
    store = make_store(monotonic=fake.monotonic, sleep=fake.sleep)
    lock = store.lock(KEY, 0.0)
    entered: list[bool] = []
    worker = threading.Thread(target=lambda: entered.append(lock.__enter__()))
    worker.start()
    worker.join(5)
    assert entered == [True] and store.holds_lock(KEY)
    # sixteen threads write at once under it: they take turns, the newest stays, nothing torn
    results: list[bool] = []
    writers = [
        threading.Thread(
            target=lambda i=i: results.append(
                store.write(KEY, SECRETS[i % 3 :], T0 + timedelta(seconds=i))
            )
        )
        for i in range(16)
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(10)
    assert len(results) == 16 and any(results)
    assert fake.sleeps == []  # nobody waited on the lock file this process holds
    lock.__exit__(None, None, None)
    assert not store.holds_lock(KEY)
    assert store.read(KEY) == Snapshot(SECRETS[15 % 3 :], T0 + timedelta(seconds=15))
    assert warnings_of(caplog) == []
    assert [p.suffix for p in Path(store.directory).iterdir() if p.suffix == ".tmp"] == []


def test_another_store_waits_for_the_lock_to_write(
    make_store: Callable[..., SnapshotStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_module, "WRITE_LOCK_WAIT", 0.05)
    holder, other = make_store(), make_store()  # as two processes would
    with holder.lock(KEY, 0.0) as got:
        assert got
        assert not other.holds_lock(KEY)
        assert not other.write(KEY, SECRETS, T0)  # busy: gave up after its wait
    assert other.read(KEY) is None
    assert other.write(KEY, SECRETS, T0)


def test_lock_file_that_cannot_be_opened_yields_false(tmp_path: Path) -> None:
    lock = FileLock(str(tmp_path / "missing" / "x.lock"))
    with lock.acquire(1.0) as got:
        assert not got
    assert not lock.held_here()


# --- import cost ---------------------------------------------------------------------------


def test_pynacl_is_not_imported_until_a_store_is_used() -> None:
    code = (
        "import sys, phase_settings, phase_settings._snapshot.store\n"
        "assert 'nacl' not in sys.modules, 'nacl imported at import time'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_runtime_checks_a_folder_once_per_process(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from phase_settings import clear_cache
    from phase_settings._load.runtime import runtime
    from phase_settings._settings.config import resolve_config

    def config(token: str = TOKEN, **more: object) -> Any:
        settings = {"phase_token": token, "phase_app_id": "app", "phase_snapshot_dir": folder}
        return resolve_config({**settings, **more}, {}, environ={})

    folder.write_text("")  # a file where the folder should be: refused
    clear_cache()
    try:
        first = runtime.snapshot_tier(config())
        assert runtime.snapshot_tier(config()) is first
        assert runtime.snapshot_tier(config(OTHER_TOKEN)) is not first
        assert runtime.snapshot_tier(config(phase_snapshot_max_age=60)) is not first
        assert runtime.snapshot_tier(config(phase_snapshot_dir=None)) is None
        assert len(warnings_of(caplog)) == 3  # one per store, not one per load
        clear_cache()
        assert runtime.snapshot_tier(config()) is not first
    finally:
        clear_cache()


def test_a_naive_fetch_time_is_refused(make_store: Callable[..., SnapshotStore]) -> None:
    store = make_store()
    with pytest.raises(ValueError, match="aware"):
        store.write(KEY, SECRETS, datetime(2026, 1, 1))
    assert store.read(KEY) is None
