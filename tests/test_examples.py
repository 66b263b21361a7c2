"""The example walkthroughs, run as a new user runs them: the one command each README gives
(`make example-django`, `make example-flask`), the commands it says to type in another shell,
Ctrl-C, and the failures a user meets (no venv, a fake that cannot start). Everything runs as
subprocesses on 127.0.0.1, bounded in time, and is killed at the end whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests._subprocesses import PYTHON, ROOT, clean_env, free_port, run

EXAMPLES = ROOT / "examples"
WALKTHROUGH_TIMEOUT = 90.0  # seconds for an example to check its settings and serve
STOP_TIMEOUT = 60.0  # seconds for Ctrl-C to stop the example, its server and its fake


def readme(example: str) -> str:
    return (EXAMPLES / example / "README.md").read_text(encoding="utf-8")


def sh_blocks(text: str) -> list[list[str]]:
    """The README's ```sh blocks, as lists of command lines (comments dropped)."""
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [
        [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
        for block in blocks
    ]


def the_one_command(example: str) -> list[str]:
    """The README's first command, as a user types it; the test adds only its own port, its
    own temporary folder and this interpreter (so that no .venv is created here)."""
    [command] = sh_blocks(readme(example))[0]
    assert command == f"make example-{example}"
    stamp = ROOT / ".venv" / ".installed"
    return [*shlex.split(command), "-C", str(ROOT), "-o", str(stamp), f"PY={PYTHON}"]


def wait_for(what: str, check: Callable[[], bool], log: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WALKTHROUGH_TIMEOUT
    while not check():
        if proc.poll() is not None and not check():
            raise AssertionError(f"exited ({proc.returncode}) before {what}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} in {WALKTHROUGH_TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Walkthrough:
    name: str
    proc: subprocess.Popen[str]
    log: Path
    site: str
    tmpdir: Path

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8")

    @property
    def env_file(self) -> Path:
        found = re.search(r"its PHASE_\* variables are in (\S+)", self.output)
        assert found, self.output
        return Path(found[1])

    @property
    def fake_url(self) -> str:
        found = re.search(r"fake Phase serving on (http://127\.0\.0\.1:\d+)", self.output)
        assert found, self.output
        return found[1]

    def page(self) -> dict[str, object]:
        response = httpx.get(self.site + "/", timeout=10)
        assert response.status_code == 200, response.text
        page: dict[str, object] = response.json()
        return page

    def ctrl_c(self) -> int:
        """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def walkthrough(example: str, tmp_path: Path, **env: str) -> Iterator[Walkthrough]:
    """Start ``make example-<example>`` in a session of its own (as a terminal would), wait until
    its site answers; SIGKILL whatever is left of its process group afterwards."""
    port = free_port()
    tmpdir = tmp_path / "tmp"  # the system's temporary folder, as both examples see it
    tmpdir.mkdir(exist_ok=True)
    log = tmp_path / f"{example}.log"
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            [*the_one_command(example), f"PORT={port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=clean_env({"TMPDIR": str(tmpdir), **env}),
            cwd=ROOT,
            start_new_session=True,
        )
    site = f"http://127.0.0.1:{port}"
    try:
        wait_for("answering site", lambda: answers(site + "/"), log, proc)
        yield Walkthrough(example, proc, log, site, tmpdir)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def in_another_shell(w: Walkthrough, line: str) -> subprocess.CompletedProcess[str]:
    """Run a README line in a fresh shell, after sourcing the file the walkthrough printed."""
    line = line.replace(".venv/bin/python", shlex.quote(PYTHON))
    script = f". {shlex.quote(str(w.env_file))} && {line}"
    return run(["bash", "-c", script], env=clean_env(), cwd=ROOT)


def assert_stopped_and_cleaned(w: Walkthrough, fake_url: str) -> None:
    assert not answers(w.site + "/"), "the site still answers after Ctrl-C"
    with pytest.raises(httpx.TransportError):
        httpx.get(fake_url + "/", timeout=2.0)  # the fake is gone too
    assert w.env_file.parent.parent == w.tmpdir
    assert not w.env_file.parent.exists(), "the temporary folder was left behind"


def test_django_walkthrough(tmp_path: Path) -> None:
    seed = json.loads((EXAMPLES / "django" / "seed.json").read_text(encoding="utf-8"))
    dev = seed["apps"][0]["environments"]["Development"]["/"]
    with walkthrough("django", tmp_path) as w:
        page = w.page()
        assert page["greeting"] == dev["GREETING"]
        assert page["items_per_page"] == int(dev["ITEMS_PER_PAGE"])
        out = w.output
        # step 2: the check report, before the site starts
        assert "secret_key      phase /" in out and "OK: 5 field(s) valid" in out, out
        assert re.search(r"Phase keys read by no field.*\n\s+LEGACY_FLAG \(/\)", out), out
        # "While it runs": the README's lines, in another shell
        check_json, check_production = sh_blocks(readme("django"))[1][1:]
        report = in_another_shell(w, check_json)
        assert report.returncode == 0, report.stderr
        fields = {row["name"]: row for row in json.loads(report.stdout)["fields"]}
        assert fields["greeting"]["value"] == dev["GREETING"]
        production = in_another_shell(w, check_production)
        assert production.returncode == 0 and "environment 'production'" in production.stdout
        fake_url = w.fake_url
        w.ctrl_c()
        assert_stopped_and_cleaned(w, fake_url)
        assert list(w.tmpdir.iterdir()) == []


def test_flask_walkthrough_rotates_while_the_django_one_runs(tmp_path: Path) -> None:
    flask_seed = json.loads((EXAMPLES / "flask" / "seed.json").read_text(encoding="utf-8"))
    dev = flask_seed["apps"][0]["environments"]["Development"]["/"]
    with walkthrough("django", tmp_path) as django, walkthrough("flask", tmp_path) as flask:
        assert django.fake_url != flask.fake_url and django.env_file != flask.env_file
        page = flask.page()
        assert page["greeting"] == dev["GREETING"] and page["source"] == "phase"
        assert "OK: 4 field(s) valid" in flask.output
        # the rotation command it printed, run in another shell as printed
        [rotate] = [
            line.strip() for line in flask.output.splitlines() if "phase_settings set" in line
        ]
        rotated = run(["bash", "-c", rotate], env=clean_env(), cwd=ROOT)
        assert rotated.returncode == 0, rotated.stderr
        wait_for(
            "rotated greeting",
            lambda: flask.page()["greeting"] == "Hello again",
            flask.log,
            flask.proc,
        )
        # the other example is untouched: its own fake, its own values
        assert django.page()["greeting"] == "Hello from Phase (development)"
        for line in sh_blocks(readme("flask"))[2][1:]:
            done = in_another_shell(flask, line)
            assert done.returncode == 0, done.stderr
        assert done.stdout == "Hello again\n"  # the README's `get GREETING`, after the rotation
        flask_fake = flask.fake_url
        flask.ctrl_c()
        assert_stopped_and_cleaned(flask, flask_fake)
        assert django.page()["greeting"] == "Hello from Phase (development)"
        django_fake = django.fake_url
        django.ctrl_c()
        assert_stopped_and_cleaned(django, django_fake)
        assert list(django.tmpdir.iterdir()) == []


def test_a_fake_that_cannot_start_stops_the_example_with_its_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            [*the_one_command("django"), f"PORT={free_port()}"],
            env=clean_env({"TMPDIR": str(tmp_path), "PHASE_FAKE_PORT": str(port)}),
            cwd=ROOT,
            timeout=WALKTHROUGH_TIMEOUT,
        )
    assert result.returncode != 0
    assert "example-django: error: the fake Phase did not start" in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr  # the fake's own reason,
    assert "within" not in result.stderr  # seen when it exited, not after the wait timed out
    assert "manage.py" not in result.stdout + result.stderr  # nothing ran against no fake
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("example", ["django", "flask"])
def test_without_the_venv_the_script_names_the_make_command(example: str, tmp_path: Path) -> None:
    result = run(
        ["bash", str(EXAMPLES / example / "run.sh")],
        env=clean_env({"PYTHON": str(tmp_path / "no-venv" / "python"), "TMPDIR": str(tmp_path)}),
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert f"run `make example-{example}` from the repository root" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_make_demo_shows_loads_check_rotation_and_both_fallbacks(tmp_path: Path) -> None:
    """`make demo`, the README's first command: every step it promises, in plain words."""
    stamp = ROOT / ".venv" / ".installed"
    result = run(
        ["make", "-C", str(ROOT), "-o", str(stamp), "demo", f"PY={PYTHON}"],
        env=clean_env({"TMPDIR": str(tmp_path)}),
        cwd=tmp_path,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "Traceback" not in out
    # a load per environment, and the reference Phase resolved on the server
    assert "== PHASE_ENV=development: loaded from phase" in out
    assert "== PHASE_ENV=production: loaded from phase" in out
    assert "service_url      https://db.internal.example.com" in out
    assert "Phase stores 'https://${DB_HOST}.example.com'; Phase resolves the ${…} reference" in out
    # the check report, as the command line prints it
    assert "$ phase-settings check settings:Settings --env development" in out
    assert re.search(r"worker_token +phase /backend +\*\*\*\*", out), out
    assert "OK: 8 field(s) valid" in out and "DB_HOST (/)" in out
    # rotation, then a refresh while Phase is down, in plain words
    assert "changed fields: ['max_connections']; max_connections is now 150" in out
    assert "refresh raised PhaseConnectionError; max_connections is still 150" in out
    assert re.search(
        r"live\.status: the current values came from Phase, fetched at \d\d:\d\d:\d\d UTC; "
        r"Phase has been unreachable since \d\d:\d\d:\d\d UTC",
        out,
    ), out
    # Phase down when a process starts: the snapshot, fresh (a cache), then after its TTL
    assert (
        "the snapshot is younger than phase_cache_ttl, so it served Settings() without asking "
        "Phase (load_status: source='cache'); max_connections = 150"
    ) in out
    assert re.search(
        r"WARNING phase_settings.*Phase is unavailable .*serving the on-disk snapshot's values "
        r"of LaterStart, \d+ s old",
        out,
    ), out
    assert (
        "booted from the encrypted snapshot (load_status: source='snapshot'); max_connections = 150"
    ) in out
    assert re.search(r"phase-snapshot/ \(mode 700\): \d+ files named by keyed hashes", out)
    # the startup fallback without a snapshot: the exported .env, said so
    assert "$ phase-settings export --for settings:Settings --output .env" in out
    assert "wrote 9 secret(s) to .env (mode 0600)" in out  # DB_HOST: read by no field
    assert re.search(r"WARNING phase_settings.*Phase is unavailable .*falls back to \.env", out)
    assert (
        "Phase could not be reached at startup, so Settings() read the .env file "
        "(load_status: source='dotenv'); max_connections = 150"
    ) in out
    assert list(tmp_path.iterdir()) == []  # its .env lived in a temporary folder, now gone
