"""T12 at the level of the snapshot store: file modes, crash injection, tampering, foreign
folders, racing writers and plaintext on disk.

The cold start of a new process from a snapshot while Phase is down is
``test_snapshot_boot.py``; what is here is everything the store itself promises.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from phase_settings._models import Secret, SecretOverride
from phase_settings._snapshot import store as snapshot_module
from phase_settings._snapshot.store import Snapshot, SnapshotKey, SnapshotStore

from .conftest import FORK_WARNING, CanaryScanner, capture_logs, fork_child, wait_child

TOKEN_PART, PUB, SHARE0, WRAP = ("a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32)
TOKEN = f"pss_service:v2:{TOKEN_PART}:{PUB}:{SHARE0}:{WRAP}"
OTHER_TOKEN = f"pss_user:v1:{'e5' * 32}:{PUB}:{'f6' * 32}:{WRAP}"
KEY = SnapshotKey(
    "e2ee", "https://phase.example", "app-canary", "Prod-canary", "/api", ("t",), "fp"
)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
CANARY_VALUES = {
    "value": "v4lue-canary-9f8e7d6c5b4a",
    "override": "0verride-canary-1a2b3c4d5e",
    "comment": "comment-canary-77aa88bb99",
}


def secrets(n: int = 0, size: int = 0) -> tuple[Secret, ...]:
    """Secrets of generation ``n`` (their value says which), padded to about ``size`` bytes."""
    return (
        Secret(
            "id-1",
            "DB_PASSWORD",
            f"{CANARY_VALUES['value']}-{n}-" + "x" * size,
            comment=CANARY_VALUES["comment"],
            override=SecretOverride("o", CANARY_VALUES["override"], False),
        ),
        Secret("id-2", "GENERATION", str(n)),
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "snap"


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    previous = os.umask(0o022)
    os.umask(previous)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(previous)


def snapshot_warnings(logs: object) -> list[str]:
    return [r.getMessage() for r in logs.warnings("phase_settings.snapshot")]  # type: ignore[attr-defined]


# --- modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_modes_under_any_umask(folder: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    store = SnapshotStore(folder, TOKEN)
    assert store.write(KEY, secrets(), T0)
    with store.lock(KEY, 0.0) as got:
        assert got
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.getuid()
    files = list(folder.iterdir())
    assert len(files) == 2  # the snapshot and its lock file, nothing else
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        assert path.stat().st_uid == os.getuid()


def test_a_folder_of_another_owner_is_not_used(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder.mkdir(mode=0o700)
    SnapshotStore(folder, TOKEN).write(KEY, secrets(), T0)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)  # nobody's folder
    else:  # an unprivileged run cannot give a folder away: pretend to be someone else
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    before = sorted(p.name for p in folder.iterdir())
    with capture_logs() as logs:
        store = SnapshotStore(folder, TOKEN)
        assert store.read(KEY, now=T0) is None  # not used ...
        assert not store.write(KEY, secrets(1), T0 + timedelta(seconds=1))  # ... nor written
    assert sorted(p.name for p in folder.iterdir()) == before
    assert len(snapshot_warnings(logs)) == 1
    assert "does not belong to this user" in snapshot_warnings(logs)[0]


# --- tampering -----------------------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    damaged = bytearray(data)
    damaged[at] ^= 0x10
    return bytes(damaged)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: _flip(d, 0), id="header"),
        pytest.param(lambda d: _flip(d, 6), id="version-byte"),
        pytest.param(lambda d: _flip(d, 7 + 12), id="nonce"),
        pytest.param(lambda d: _flip(d, len(d) // 2), id="ciphertext"),
        pytest.param(lambda d: _flip(d, len(d) - 3), id="tag"),
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(lambda d: d[:-1], id="one-byte-short"),
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: d + b"\0", id="one-byte-long"),
    ],
)
def test_damaged_snapshot_is_one_warning_never_served(
    folder: Path, damage: Callable[[bytes], bytes]
) -> None:
    store = SnapshotStore(folder, TOKEN)
    assert store.write(KEY, secrets(), T0)
    path = Path(store.path_for(KEY))
    path.write_bytes(damage(path.read_bytes()))
    with capture_logs() as logs:
        assert store.read(KEY, now=T0) is None
    assert len(snapshot_warnings(logs)) == 1
    assert store.write(KEY, secrets(1), T0)  # the next success replaces it
    assert store.read(KEY, now=T0) == Snapshot(secrets(1), T0)


def test_a_snapshot_of_another_key_copied_to_this_name_is_refused(folder: Path) -> None:
    store = SnapshotStore(folder, TOKEN)
    other_key = KEY._replace(env="Staging")
    assert store.write(other_key, secrets(2), T0)
    os.replace(store.path_for(other_key), store.path_for(KEY))
    with capture_logs() as logs:
        assert store.read(KEY, now=T0) is None
    assert snapshot_warnings(logs) == [
        f"snapshot {os.path.basename(store.path_for(KEY))} fails authentication (damaged, or "
        "sealed for another key or token): not served"
    ]


def test_a_snapshot_of_another_token_copied_to_this_name_is_refused(folder: Path) -> None:
    mine, theirs = SnapshotStore(folder, TOKEN), SnapshotStore(folder, OTHER_TOKEN)
    assert theirs.write(KEY, secrets(3), T0)
    assert mine.read(KEY, now=T0) is None  # another token: another file name, a plain miss
    os.replace(theirs.path_for(KEY), mine.path_for(KEY))
    with capture_logs() as logs:
        assert mine.read(KEY, now=T0) is None
    assert len(snapshot_warnings(logs)) == 1


def test_a_snapshot_of_another_format_version_is_refused(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SnapshotStore(folder, TOKEN)
    monkeypatch.setattr(snapshot_module, "FORMAT_VERSION", 2)
    future = SnapshotStore(folder, TOKEN)  # a later release, sharing the folder
    assert future.write(KEY, secrets(4), T0)
    future_path = future.path_for(KEY)
    monkeypatch.undo()
    assert store.read(KEY, now=T0) is None  # its file name differs too: a plain miss
    os.replace(future_path, store.path_for(KEY))
    with capture_logs() as logs:
        assert store.read(KEY, now=T0) is None
    assert len(snapshot_warnings(logs)) == 1
    assert "format version 2" in snapshot_warnings(logs)[0]
    path = Path(store.path_for(KEY))
    relabelled = bytearray(path.read_bytes())
    relabelled[6] = 1  # claims this release's version: its key and associated data still differ
    path.write_bytes(bytes(relabelled))
    with capture_logs() as logs:
        assert store.read(KEY, now=T0) is None
    assert len(snapshot_warnings(logs)) == 1
    assert "fails authentication" in snapshot_warnings(logs)[0]


def test_an_old_copy_put_back_is_replaced_and_cannot_win(folder: Path) -> None:
    store = SnapshotStore(folder, TOKEN)
    path = Path(store.path_for(KEY))
    assert store.write(KEY, secrets(1), T0)
    old_copy = path.read_bytes()
    assert store.write(KEY, secrets(2), T0 + timedelta(hours=1))
    # a process that fetched before the newer write finishes after it: refused
    assert not store.write(KEY, secrets(1), T0)
    later = T0 + timedelta(hours=3)
    assert store.read(KEY, now=later) == Snapshot(secrets(2), T0 + timedelta(hours=1))
    path.write_bytes(old_copy)  # restored from a backup
    assert store.write(KEY, secrets(3), T0 + timedelta(hours=2))
    assert store.read(KEY, now=later) == Snapshot(secrets(3), T0 + timedelta(hours=2))


# --- racing writers and crashes ------------------------------------------------------------


@pytest.mark.filterwarnings(FORK_WARNING)
def test_two_processes_racing_keep_the_newer_snapshot(folder: Path) -> None:
    store = SnapshotStore(folder, TOKEN)
    for round_ in range(10):
        older, newer = T0 + timedelta(minutes=2 * round_), T0 + timedelta(minutes=2 * round_ + 1)
        gate_read, gate_write = os.pipe()

        def write(at: datetime, generation: int, gate: int = gate_read) -> bool:
            assert os.read(gate, 1) == b"g"
            return store.write(KEY, secrets(generation), at)

        # alternate who is forked (and so usually writes) first
        order = [(older, 1), (newer, 2)] if round_ % 2 else [(newer, 2), (older, 1)]
        children = [fork_child(lambda at=at, g=g: write(at, g)) for at, g in order]
        os.write(gate_write, b"gg")
        os.close(gate_write)
        os.close(gate_read)
        for child in children:
            code, payload, _ = wait_child(child, timeout=30)
            assert code == 0, payload
        assert store.read(KEY, now=newer) == Snapshot(secrets(2), newer), round_


def _writer(store: SnapshotStore, attempt: int) -> tuple[int, int]:
    """Fork a child that writes generation ``attempt``; (pid, read end of its pipe). The child
    says "r" when it starts writing and "w" when the write returned."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_fd, b"r")
            store.write(KEY, secrets(attempt, 200_000), T0 + timedelta(seconds=attempt))
            os.write(write_fd, b"w")
        finally:
            os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 1) == b"r"
    return pid, read_fd


@pytest.mark.filterwarnings(FORK_WARNING)
def test_200_writers_killed_mid_write_never_leave_a_partial_snapshot(folder: Path) -> None:
    store = SnapshotStore(folder, TOKEN)
    assert store.write(KEY, secrets(0, 200_000), T0)
    # how long one write takes here, so the kills spread over the whole of it
    pid, read_fd = _writer(store, 0)
    started = time.monotonic()
    assert os.read(read_fd, 1) == b"w"
    one_write = time.monotonic() - started
    os.close(read_fd)
    os.waitpid(pid, 0)
    rng = random.Random(1200)
    generation, completed, partial = 0, 0, 0
    started = time.monotonic()
    for attempt in range(1, 201):
        pid, read_fd = _writer(store, attempt)
        if attempt % 5:  # four in five are killed at a random point of their write
            time.sleep(rng.uniform(0, one_write * 1.5))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        os.close(read_fd)
        os.waitpid(pid, 0)
        with capture_logs() as logs:
            got = store.read(KEY, now=T0)
        if got is None or snapshot_warnings(logs):
            partial += 1
            continue
        seen = int(got.secrets[1].value)
        assert seen in (generation, attempt)  # the previous complete file, or the new one
        assert got.secrets == secrets(seen, 200_000)
        completed += seen == attempt
        generation = seen
        leftovers = [p for p in os.listdir(folder) if p.endswith(".tmp")]
        assert len(leftovers) <= 1  # one temporary name per key, reused by the next writer
    assert partial == 0
    assert completed >= 40  # at least every writer that was not killed
    assert time.monotonic() - started < 120  # bounded


@pytest.mark.parametrize("step", ["write", "fsync", "replace", "close"])
def test_a_write_failing_at_any_step_keeps_the_previous_snapshot(
    folder: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    store = SnapshotStore(folder, TOKEN)
    assert store.write(KEY, secrets(1), T0)
    real = getattr(os, step)

    def crash(*args: object, **kwargs: object) -> object:
        if step == "close" or (step == "write" and isinstance(args[0], int)):
            monkeypatch.setattr(os, step, real)  # fail once, mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, step, crash)
    with capture_logs() as logs:
        assert not store.write(KEY, secrets(2), T0 + timedelta(seconds=1))
    monkeypatch.undo()
    assert len(snapshot_warnings(logs)) == 1
    assert store.read(KEY, now=T0) == Snapshot(secrets(1), T0)
    assert sorted(p.suffix for p in folder.iterdir()) == [".lock", ".snapshot"]  # no leftover


# --- plaintext on disk ---------------------------------------------------------------------


def test_no_value_token_or_key_name_is_on_disk(folder: Path) -> None:
    store = SnapshotStore(folder, TOKEN)
    rest_store = SnapshotStore(folder, f"ServiceAccount {'99' * 32}")
    for n in range(3):
        assert store.write(KEY, secrets(n), T0 + timedelta(seconds=n))
        assert rest_store.write(KEY._replace(mode="sse"), secrets(n), T0 + timedelta(seconds=n))
    canaries = {
        **CANARY_VALUES,
        "token": TOKEN,
        "bearer": TOKEN_PART,
        "share0": SHARE0,
        "wrapKey": WRAP,
        "rest-bearer": "99" * 32,
    }
    scanner = CanaryScanner(canaries)
    raw = {
        label: bytes.fromhex(canaries[label])
        for label in ("bearer", "share0", "wrapKey", "rest-bearer")
    }
    raw |= {"seal key": store._keys.seal, "name key": store._keys.name}
    raw_hits = []
    names = []
    for path in folder.iterdir():
        data = path.read_bytes()
        scanner.scan(path.name, data.decode("latin-1"))
        raw_hits += [label for label, value in raw.items() if value in data]
        names.append(path.name)
    assert len(names) == 4 and scanner.scanned_bytes > 0
    assert scanner.hits == []
    assert raw_hits == []  # nor the key material as raw bytes
    for name in names:  # nothing about the app, environment or folder in the names
        for visible in ("app", "canary", "prod", "api", "phase"):
            assert visible not in name.lower()
