"""T20, folders: whatever is put in place of a snapshot or lock file, a load decides within its
deadline, refuses the file with one WARNING, and goes on (Phase's values, or the ``.env`` file
during an outage); a folder swapped for a link while a process runs is refused from then on.

Each case runs in a child process with a memory cap and a hard timeout (a FIFO opened the old
way blocks for ever), against a fake Phase of its own on 127.0.0.1, with a 2 s deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .._subprocesses import clean_env
from .conftest import DEADLINE, MARGIN

CHILD = textwrap.dedent(
    """
    import json, logging, os, resource, stat, sys, time
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, (3 * 1024**3, 3 * 1024**3))  # a failure is no OOM kill
    import phase_settings
    from phase_settings import PhaseSettings, PhaseSettingsConfigDict, load_status
    from phase_settings.testing import FakePhase

    case, folder, outage = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "outage"
    warnings = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING and record.name == "phase_settings.snapshot":
                warnings.append(record.getMessage())

    logging.getLogger("phase_settings").addHandler(Keep())
    (folder.parent / ".env").write_text("API_KEY=from-dotenv\\n")
    fake = FakePhase()
    app_id = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.set_secret(app_id, "development", "API_KEY", "from-phase")
    with fake.serve() as url:
        class Settings(PhaseSettings):
            model_config = PhaseSettingsConfigDict(
                phase_host=url, phase_app_id=app_id, phase_token=token, phase_env="development",
                phase_snapshot_dir=str(folder), env_file=str(folder.parent / ".env"),
            )
            api_key: str

        Settings()  # writes the snapshot and its lock file (the default deadline: a loaded
        # machine must not turn this first load into a fallback)

        class Settings(Settings):  # the same cache key, the battery's deadline
            model_config = PhaseSettingsConfigDict(phase_deadline=%(deadline)s)

        [snapshot] = folder.glob("*.snapshot")
        [lock] = folder.glob("*.lock")
        if case == "fifo":
            snapshot.unlink(); os.mkfifo(snapshot)
        elif case == "fifo lock":  # no snapshot, so the next load takes the lock to fetch
            snapshot.unlink(); lock.unlink(); os.mkfifo(lock)
        elif case == "symlink":
            snapshot.unlink(); snapshot.symlink_to("/etc/passwd")
        elif case == "sparse 10 GiB":
            with open(snapshot, "r+b") as f:
                f.truncate(10 * 1024**3)
        elif case == "device":
            snapshot.unlink(); os.mknod(snapshot, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # zero
        elif case == "another user's file":
            os.chown(snapshot, 65534, 65534)
        elif case == "folder swapped for a link":
            elsewhere = folder.parent / "elsewhere"
            elsewhere.mkdir(mode=0o700)
            folder.rename(folder.parent / "old")
            folder.symlink_to(elsewhere)
        if outage:
            fake.fail_next(503, times=1000)
        started = time.monotonic()
        if case == "folder swapped for a link":  # the same process goes on: refresh and write
            value = phase_settings.LiveSettings(Settings).refresh() and None
            value = Settings().api_key
        else:
            phase_settings.clear_cache()  # a new process: no values in memory
            value = Settings().api_key
        elapsed = time.monotonic() - started
        leftovers = sorted(p.name for p in (folder.parent / "elsewhere").glob("*")) if (
            case == "folder swapped for a link") else []
        print(json.dumps({
            "value": value, "elapsed": elapsed, "source": load_status(Settings).source,
            "warnings": warnings, "leftovers": leftovers,
        }))
    """
)

CASES = [
    "fifo",
    "fifo lock",
    "symlink",
    "sparse 10 GiB",
    "device",
    "another user's file",
    "folder swapped for a link",
]
NEEDS_ROOT = {"device", "another user's file"}
# what the one WARNING says of each file
SAYS = {
    "fifo": "is not a regular file",
    "fifo lock": "the lock file is not a regular file",
    "symlink": "is a symbolic link",
    "sparse 10 GiB": "is larger than any snapshot",
    "device": "is not a regular file",
    "another user's file": "does not belong to this user",
    "folder swapped for a link": "is a symbolic link",
}


def run_child(case: str, folder: Path, outage: bool) -> dict[str, Any]:
    code = CHILD % {"deadline": DEADLINE}
    done = subprocess.run(
        [sys.executable, "-c", code, case, str(folder), "outage" if outage else "up"],
        capture_output=True,
        text=True,
        timeout=60,  # a child stuck on a FIFO fails the test instead of hanging the suite
        env=clean_env(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("case", "outage"),
    [
        pytest.param(case, outage, id=f"{case}, {'phase down' if outage else 'phase up'}")
        for case in CASES
        for outage in (False, True)
        if not (outage and case == "folder swapped for a link")  # a refresh needs Phase
    ],
)
def test_a_hostile_file_is_refused_with_one_warning_within_the_deadline(
    case: str, outage: bool, tmp_path: Path
) -> None:
    if case in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip("making a device or giving a file away needs root (CI runs as root)")
    result = run_child(case, tmp_path / "snapshots", outage)
    print(
        f"[T20] {case:26} {'phase down' if outage else 'phase up':10} -> {result['source']:8} "
        f"{result['elapsed'] * 1000:6.0f} ms"
    )
    assert result["elapsed"] <= DEADLINE + MARGIN
    if outage:
        assert (result["value"], result["source"]) == ("from-dotenv", "dotenv")
    elif case == "folder swapped for a link":  # refreshed by LiveSettings, then from memory
        assert (result["value"], result["source"]) == ("from-phase", "cache")
    else:
        assert (result["value"], result["source"]) == ("from-phase", "phase")
    said = [w for w in result["warnings"] if SAYS[case] in w]
    assert len(said) == 1, result["warnings"]
    assert result["leftovers"] == []  # nothing written through a swapped-in link
