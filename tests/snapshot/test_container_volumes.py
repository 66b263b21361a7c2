"""Container volumes as their runtimes make them, entered by the app's UID (DESIGN §4).

A Docker named volume is created by the daemon, root-owned with mode 0755; a Kubernetes
``emptyDir`` is root-owned with mode 0777. An app running as another UID can use the second (its
snapshots go to a ``phase`` subfolder of its own, 0700) but not the first (it cannot make the
subfolder): that one is refused with one WARNING naming the folder to fix. Neither runtime runs
here, so the volume is made as root and entered by a forked child that drops to ``nobody``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from phase_settings._snapshot.store import Snapshot, SnapshotStore

from .test_snapshot import KEY, SECRETS, T0, TOKEN

NOBODY = 65534

pytestmark = [
    pytest.mark.skipif(
        not hasattr(os, "fork") or os.geteuid() != 0,
        reason="making a root-owned volume and entering it as another UID needs root (CI is)",
    ),
    pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning"),
]


@pytest.fixture
def volume() -> Iterator[Path]:
    # Under /tmp itself: pytest's own temporary folders are private to root.
    path = Path(tempfile.mkdtemp(prefix="phase-volume-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_nobody(volume: Path) -> dict[str, object]:
    """Use a store on ``volume`` from a child running as ``nobody``; what it saw."""
    warm = Path(tempfile.mkdtemp())  # import everything first: the child cannot read /root
    SnapshotStore(warm / "s", TOKEN).write(KEY, SECRETS, T0)
    shutil.rmtree(warm)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            said: list[str] = []
            handler = logging.Handler()
            handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
            logging.getLogger("phase_settings.snapshot").addHandler(handler)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            store = SnapshotStore(volume, TOKEN)
            wrote = store.write(KEY, SECRETS, T0)
            read = store.read(KEY, now=T0) == Snapshot(SECRETS, T0)
            report = {"enabled": store.enabled, "wrote": wrote, "read": read, "said": said}
            report["folder"] = store.folder
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


def test_a_kubernetes_empty_dir_is_used_through_a_phase_subfolder_of_the_app(
    volume: Path,
) -> None:
    volume.chmod(0o777)
    seen = _as_nobody(volume)
    assert seen == {
        "enabled": True,
        "wrote": True,
        "read": True,
        "said": [],
        "folder": str(volume / "phase"),
    }
    sub = (volume / "phase").stat()
    assert (sub.st_uid, stat.S_IMODE(sub.st_mode)) == (NOBODY, 0o700)


def test_a_docker_named_volume_of_root_is_refused_naming_the_folder_to_fix(volume: Path) -> None:
    volume.chmod(0o755)
    seen = _as_nobody(volume)
    assert (seen["enabled"], seen["wrote"], seen["read"]) == (False, False, False)
    assert seen["said"] == [
        f"snapshot folder {volume / 'phase'} cannot be created (Permission denied): "
        "loads go on without a snapshot"
    ]
    assert list(volume.iterdir()) == []
