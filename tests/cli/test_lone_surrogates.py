"""Keys and values that are valid JSON but not valid UTF-8 (a lone surrogate such as ``"\\udc80"``).

Phase can hand one out (JSON escapes admit it). Nothing that writes text may then fail or write
invalid UTF-8: ``get`` of such a value exits 1 saying why, ``export`` leaves it out with a warning
naming the key, ``check`` shows it with backslash escapes, a warning naming such a key goes
through a strict UTF-8 log handler, and the snapshot keeps the value exactly.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import phase_settings
from phase_settings import PhaseSettings, PhaseSettingsConfigDict, load_status
from phase_settings.cli import main
from phase_settings.testing import FakePhase

from .test_cli import settings_module

BAD = "x\udc80y"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePhase]:
    fake = FakePhase()
    app_id = fake.add_app("demo")
    fake.set_secret(app_id, "development", "BAD", BAD)
    fake.set_secret(app_id, "development", "GOOD", "ok")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        monkeypatch.setenv("PHASE_HOST", url)
        monkeypatch.setenv("PHASE_APP_ID", app_id)
        monkeypatch.setenv("PHASE_SERVICE_TOKEN", token)
        yield fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    out.encode("utf-8")  # raises if the command wrote what UTF-8 cannot encode
    err.encode("utf-8")
    return code, out, err


def test_get_of_a_value_that_is_not_utf8_exits_1_saying_so(
    served: FakePhase, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "get", "BAD")
    assert code == 1 and out == ""
    assert "the value of BAD is not valid UTF-8" in err
    assert run(capsys, "get", "GOOD")[:2] == (0, "ok\n")


@pytest.mark.parametrize("fmt", ["dotenv", "json"])
def test_export_leaves_such_a_value_out_with_a_warning_naming_the_key(
    served: FakePhase, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code, out, err = run(capsys, "export", "--format", fmt)
    assert code == 0
    assert "GOOD" in out and "BAD" not in out
    assert "warning: BAD left out: its value is not valid UTF-8" in err


def test_export_to_a_file_writes_the_rest(
    served: FakePhase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out.env"
    code, _, err = run(capsys, "export", "--output", str(target))
    assert code == 0, err
    assert 'GOOD="ok"' in target.read_text(encoding="utf-8")
    assert "BAD" not in target.read_text(encoding="utf-8")


def test_a_key_that_is_not_utf8_is_named_with_escapes(
    served: FakePhase, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = json.dumps([{"id": "1", "key": "K\udc80EY", "value": "v", "tags": [], "version": 1}])
    served.fail_next(200, body=reply)
    code, out, err = run(capsys, "export")
    assert "EY=" not in out
    assert code == 0
    assert "warning: 'K\\udc80EY' left out: its key is not valid UTF-8" in err


def test_check_shows_such_a_value_with_escapes(
    served: FakePhase, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(
        tmp_path,
        """
        from phase_settings import PhaseSettings

        class Settings(PhaseSettings):
            bad: str = ""
            good: str = ""
        """,
    )
    code, out, _ = run(capsys, "check", target, "--show-values")
    assert code == 0
    assert "x\\udc80y" in out
    code, out, _ = run(capsys, "check", target, "--show-values", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["fields"]}
    assert rows["bad"]["value"] == BAD  # JSON's escape gives back the exact value


class _Strict(logging.Handler):
    """A UTF-8 handler that fails loudly instead of printing "--- Logging error ---"."""

    def __init__(self) -> None:
        super().__init__()
        self.stream = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")

    def handleError(self, record: logging.LogRecord) -> None:
        raise


def test_a_warning_naming_such_a_key_survives_a_utf8_log_handler(served: FakePhase) -> None:
    reply = json.dumps(
        [{"id": "1", "key": "K\udc80EY", "value": "${MISSING}", "tags": [], "version": 1}]
    )
    served.fail_next(200, body=reply)
    handler = _Strict()
    logger = logging.getLogger("phase_settings")
    logger.addHandler(handler)
    try:

        class Settings(PhaseSettings):
            good: str = ""

        Settings()
    finally:
        logger.removeHandler(handler)
    handler.stream.seek(0)
    assert "'K\\udc80EY'" in handler.stream.read()


def test_the_snapshot_keeps_such_a_value_exactly(
    served: FakePhase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHASE_SNAPSHOT_DIR", str(tmp_path / "snapshots"))

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(phase_cache_ttl=0)
        bad: str = ""

    assert Settings().bad == BAD  # written to the snapshot
    phase_settings.clear_cache()
    served.fail_next(503, times=20)
    assert Settings().bad == BAD
    assert load_status(Settings).source == "snapshot"
