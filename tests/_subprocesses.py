"""Helpers of the integration tests: bounded subprocesses on 127.0.0.1, always stopped."""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
START_TIMEOUT = 60.0  # seconds for a server to come up
RUN_TIMEOUT = 60.0  # seconds for a one-shot command


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any ``PHASE_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHASE_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("FLASK_APP", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdin: str | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded by ``timeout``), capturing its output."""
    return subprocess.run(
        list(args),
        env=dict(env),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class FakeServer:
    """A running ``phase-settings serve-fake``."""

    proc: subprocess.Popen[str]
    exports: dict[str, str]
    stderr: IO[str]

    @property
    def url(self) -> str:
        return self.exports["PHASE_HOST"]

    @property
    def token(self) -> str:
        return self.exports["PHASE_SERVICE_TOKEN"]

    @property
    def app_id(self) -> str:
        return self.exports["PHASE_APP_ID"]

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment pointing at this fake."""
        return clean_env({**self.exports, **(extra or {})})


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


@contextlib.contextmanager
def serve_fake(
    seed: Path, *, tmp: Path, port: int | None = None, name: str = "fake"
) -> Iterator[FakeServer]:
    """Start ``python -m phase_settings serve-fake --seed seed`` and parse its export lines."""
    args = [PYTHON, "-m", "phase_settings", "serve-fake", "--seed", str(seed)]
    if port is not None:
        args += ["--port", str(port)]
    with open(tmp / f"{name}.stderr", "w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, text=True, env=clean_env(), cwd=tmp
        )
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
        reader.start()
        try:
            exports: dict[str, str] = {}
            deadline = time.monotonic() + START_TIMEOUT
            while len(exports) < 3:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or proc.poll() is not None:
                    stderr.seek(0)
                    raise AssertionError(f"serve-fake did not start: {stderr.read()}")
                try:
                    line = lines.get(timeout=min(remaining, 0.5))
                except queue.Empty:
                    continue
                word, assignment = shlex.split(line)
                assert word == "export"
                key, _, value = assignment.partition("=")
                exports[key] = value
            yield FakeServer(proc, exports, stderr)
        finally:
            stop(proc)
            reader.join(5)
            proc.stdout.close()


@contextlib.contextmanager
def serve_app(
    args: Sequence[str],
    *,
    url: str,
    env: Mapping[str, str],
    tmp: Path,
    cwd: Path | None = None,
    name: str = "app",
) -> Iterator[subprocess.Popen[str]]:
    """Start a web app and wait until ``url`` answers; stop it afterwards whatever happens."""
    with open(tmp / f"{name}.log", "w+", encoding="utf-8") as log:
        proc = subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, text=True, env=dict(env), cwd=cwd
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"{name} exited with {proc.returncode}: {log.read()}")
                try:
                    httpx.get(url, timeout=1.0)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        log.seek(0)
                        raise AssertionError(f"{name} did not answer: {log.read()}") from None
                    time.sleep(0.1)
            yield proc
        finally:
            stop(proc)
