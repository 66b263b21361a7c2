"""The ``phase-settings`` command line: every command and exit code (DESIGN §6).

Most runs call ``main()`` in process against a FakePhase serving real HTTP on 127.0.0.1; the
entry points, ``serve-fake`` and signal handling run as subprocesses.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dotenv import dotenv_values

from phase_settings import PhaseClient
from phase_settings.cli import main
from phase_settings.testing import FakePhase
from tests import _modes
from tests._subprocesses import PYTHON, ROOT, clean_env, free_port, run, serve_fake, stop

phase_mode = _modes.phase_mode  # every command in both API modes (PHASE_MODE)

SEED = ROOT / "examples" / "flask" / "seed.json"
STRIPE = "sk_live_canary_51f0"  # a secret value that must never show unless asked for
DATABASE = "postgres://user:canary-pw@db/app"


@dataclass
class Demo:
    fake: FakePhase
    app_id: str
    token: str
    url: str


@pytest.fixture
def demo(fake_phase: FakePhase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Demo]:
    """A served fake with one app and its PHASE_* variables set (conftest isolates the rest)."""
    app_id = fake_phase.add_app("demo")
    for key, value in {
        "DATABASE_URL": DATABASE,
        "STRIPE_KEY": STRIPE,
        "MAX_CONNECTIONS": "25",
        "ALLOWED_HOSTS": '["a.example", "b.example"]',
        "MAX_CONECTIONS": "typo",
    }.items():
        fake_phase.set_secret(app_id, "development", key, value)
    fake_phase.set_secret(app_id, "development", "WORKER", "w-backend", path="/backend")
    fake_phase.set_secret(app_id, "production", "STRIPE_KEY", "sk_prod_value")
    token = fake_phase.add_service_account(envs=None)
    monkeypatch.setenv("PHASE_HOST", fake_phase.url)
    monkeypatch.setenv("PHASE_APP_ID", app_id)
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", token)
    yield Demo(fake_phase, app_id, token, fake_phase.url)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    errors = [line for line in err.splitlines() if ": error:" in line]
    assert len(errors) == 1, err
    assert "Traceback" not in err


def settings_module(tmp_path: Path, body: str) -> str:
    """Write a module defining ``Settings`` into the working folder; returns ``module:Settings``."""
    name = f"settings_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body), encoding="utf-8")
    return f"{name}:Settings"


APP_SETTINGS = """
    from pydantic import BaseModel, SecretStr
    from phase_settings import PhaseSettings, PhaseSettingsConfigDict

    class Pool(BaseModel):
        size: int = 1
        name: str = "pool"

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(env_file=".env", phase_cache_ttl=0)
        database_url: str
        stripe_key: SecretStr
        max_connections: int = 10
        allowed_hosts: list[str] = []
        region: str = "eu"
        log_level: str = "INFO"
        pool: Pool = Pool()
"""


# --- help and usage --------------------------------------------------------------------------


def test_help_documents_every_command_and_exit_code() -> None:
    result = run([PYTHON, "-m", "phase_settings", "--help"], env=clean_env())
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for word in ("check", "export", "get", "set", "delete", "serve-fake", "--show-values"):
        assert word in text
    for word in ("--strict", "--json", "--format", "--output", "--comment", "--seed", "--port"):
        assert word in text
    for word in ("--host", "--app-id", "--env", "--path", "PHASE_SERVICE_TOKEN", ".phase.json"):
        assert word in text
    assert "exit codes:" in text
    for code in (
        "0  success",
        "1  the answer is no",
        "2  usage",
        "3  Phase refused",
        "4  an internal",
    ):
        assert code in text


def test_console_script_runs() -> None:
    script = Path(PYTHON).with_name("phase-settings")
    if not script.exists():
        pytest.skip("the console script is not installed in this environment")
    result = run([str(script), "check", "--help"], env=clean_env())
    assert result.returncode == 0
    assert "exit codes:" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [[], ["bogus"], ["get"], ["export", "--format", "xml"], ["--deadline", "0", "get", "K"]],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """A usage error is one line on stderr: the error and a --help hint (no usage block)."""
    code, _, err = cli(capsys, *argv)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert ": error: " in err
    assert "--help" in err
    assert "usage:" not in err


def test_import_phase_settings_does_not_import_frameworks_or_cli() -> None:
    probe = (
        "import sys, phase_settings; "
        "print([m for m in ('django', 'flask', 'phase_settings.cli') if m in sys.modules])"
    )
    result = run([PYTHON, "-c", probe], env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- get, set, delete ------------------------------------------------------------------------


def test_get_prints_the_value(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "get", "STRIPE_KEY") == (0, STRIPE + "\n", "")
    assert cli(capsys, "get", "stripe_key")[1] == STRIPE + "\n"  # Phase keys are case-insensitive
    assert cli(capsys, "--path", "/backend", "get", "WORKER")[1] == "w-backend\n"
    assert cli(capsys, "get", "WORKER", "--path", "/,/backend")[1] == "w-backend\n"
    assert cli(capsys, "get", "STRIPE_KEY", "--env", "Production")[1] == "sk_prod_value\n"


def test_get_of_a_missing_key_exits_1(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "get", "NOPE")
    assert (code, out) == (1, "")
    assert_one_line_error(err)
    assert "NOPE not found" in err


def test_set_creates_then_updates_by_id(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "set", "NEW_KEY=first=value", "--comment", "made by a test")
    assert code == 0 and "created NEW_KEY" in out
    assert "first=value" not in out
    record = demo.fake.get_secret(demo.app_id, "development", "NEW_KEY")
    assert record is not None
    assert (record["value"], record["comment"], record["version"]) == (
        "first=value",
        "made by a test",
        1,
    )
    code, out, _ = cli(capsys, "set", "NEW_KEY=second")
    assert code == 0 and "updated NEW_KEY" in out and "version 2" in out
    updated = demo.fake.get_secret(demo.app_id, "development", "NEW_KEY")
    assert updated is not None
    assert (updated["id"], updated["value"], updated["version"]) == (record["id"], "second", 2)
    assert updated["comment"] == "made by a test"  # left as it was
    assert cli(capsys, "get", "NEW_KEY")[1] == "second\n"


def test_set_in_a_folder_and_from_stdin(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "set", "FOLDER_KEY=x", "--path", "/backend")[0] == 0
    assert demo.fake.get_secret(demo.app_id, "development", "FOLDER_KEY", "/backend")
    assert demo.fake.get_secret(demo.app_id, "development", "FOLDER_KEY", "/") is None
    monkeypatch.setattr(sys, "stdin", io.StringIO("multi\nline\n"))
    assert cli(capsys, "set", "FROM_STDIN")[0] == 0
    record = demo.fake.get_secret(demo.app_id, "development", "FROM_STDIN")
    assert record is not None and record["value"] == "multi\nline"


def test_set_needs_one_folder(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--path", "*", "set", "K=v")
    assert code == 2
    assert_one_line_error(err)


def test_delete(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "delete", "MAX_CONECTIONS")
    assert code == 0 and "deleted MAX_CONECTIONS" in out
    assert demo.fake.get_secret(demo.app_id, "development", "MAX_CONECTIONS") is None
    code, _, err = cli(capsys, "delete", "MAX_CONECTIONS")
    assert code == 1
    assert_one_line_error(err)
    assert cli(capsys, "delete", "WORKER", "--path", "*")[0] == 0  # found in its folder


# --- configuration and Phase errors -------------------------------------------------------------


def test_no_token_exits_2(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE_SERVICE_TOKEN")
    code, _, err = cli(capsys, "get", "STRIPE_KEY")
    assert code == 2
    assert_one_line_error(err)
    assert "PHASE_SERVICE_TOKEN" in err


def test_malformed_token_exits_2_without_echoing_it(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = "pss_service:v2:not-a-real-token-canary"
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", bad)
    code, out, err = cli(capsys, "get", "STRIPE_KEY")
    assert code == 2
    assert_one_line_error(err)
    assert "not-a-real-token-canary" not in out + err


def test_no_app_id_exits_2(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHASE_APP_ID")
    code, _, err = cli(capsys, "export")
    assert code == 2
    assert "--app-id" in err


def test_app_id_from_phase_json(
    demo: Demo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("PHASE_APP_ID")
    (tmp_path / ".phase.json").write_text(
        json.dumps({"appId": demo.app_id, "defaultEnv": "Production"}), encoding="utf-8"
    )
    assert cli(capsys, "get", "STRIPE_KEY")[1] == "sk_prod_value\n"
    assert cli(capsys, "get", "STRIPE_KEY", "--env", "development")[1] == STRIPE + "\n"


def test_unknown_token_exits_3(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = FakePhase().add_service_account()  # well-formed, unknown to this server
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", other)
    code, _, err = cli(capsys, "get", "STRIPE_KEY")
    assert code == 3
    assert_one_line_error(err)
    assert other.split(":")[2] not in err


def test_unknown_app_exits_3(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "--app-id", str(uuid.uuid4()), "get", "STRIPE_KEY")
    assert code == 3
    assert_one_line_error(err)


def test_unreachable_phase_exits_3_within_the_deadline(
    demo: Demo, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, _, err = cli(
        capsys, "--host", f"http://127.0.0.1:{free_port()}", "--deadline", "2", "get", "STRIPE_KEY"
    )
    assert code == 3
    assert time.monotonic() - started < 5
    assert_one_line_error(err)


# --- export ------------------------------------------------------------------------------------

TRICKY = {
    "NEWLINES": "line one\nline two\r\nline three\rend",
    "QUOTES": "it's \"quoted\" and 'single'",
    "HASH": "value # not a comment",
    "HASH_TIGHT": "a#b",
    "EQUALS": "a=b==c",
    "BACKSLASHES": "C:\\path\\to\\n and \\\\ two",
    "TRAILING_BACKSLASH": "ends with\\",
    "SPACES": "  padded  ",
    "EMPTY": "",
    "DOLLAR": "$HOME and $ alone",
    "UNICODE": "héllo wörld ✓ 日本",
    "ESCAPES": "\\n \\t \\' \\\"",
    "TABS": "a\tb",
}


@pytest.fixture
def tricky(demo: Demo) -> dict[str, str]:
    for key, value in TRICKY.items():
        demo.fake.set_secret(demo.app_id, "development", key, value)
    demo.fake.set_secret(demo.app_id, "development", "REFERENCE", "https://${SECRET_HOST}/x")
    return {
        "DATABASE_URL": DATABASE,
        "STRIPE_KEY": STRIPE,
        "MAX_CONNECTIONS": "25",
        "ALLOWED_HOSTS": '["a.example", "b.example"]',
        "MAX_CONECTIONS": "typo",
        **TRICKY,
    }


def test_export_dotenv_round_trips_through_python_dotenv(
    tricky: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "export", "--format", "dotenv")
    assert code == 0
    assert dotenv_values(stream=io.StringIO(out)) == tricky
    assert "REFERENCE" in err and "${" in err
    assert "SECRET_HOST" not in err
    assert "REFERENCE" not in out


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_export_file_is_0600_whatever_the_umask(
    tricky: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path, umask: int
) -> None:
    target = tmp_path / "fallback.env"
    target.write_text("OLD=1\n", encoding="utf-8")
    target.chmod(0o644)
    previous = os.umask(umask)
    try:
        code, out, err = cli(capsys, "export", "--output", str(target))
    finally:
        os.umask(previous)
    assert code == 0, err
    assert out == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert dotenv_values(target) == tricky
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fallback.env"]  # no temp file left


def test_exported_file_serves_as_the_fallback_env_file(
    tricky: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cli(capsys, "export", "-o", ".env")[0] == 0
    monkeypatch.delenv("PHASE_SERVICE_TOKEN")  # Phase off: the env file alone serves
    target = settings_module(
        tmp_path,
        """
        from pydantic import SecretStr
        from phase_settings import PhaseSettings, PhaseSettingsConfigDict

        class Settings(PhaseSettings):
            model_config = PhaseSettingsConfigDict(env_file=".env", extra="ignore")
            stripe_key: SecretStr
            newlines: str
            quotes: str
            trailing_backslash: str
            unicode: str
        """,
    )
    module, _, _ = target.partition(":")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = __import__(module).Settings()
    assert settings.stripe_key.get_secret_value() == STRIPE
    assert settings.newlines == TRICKY["NEWLINES"]
    assert settings.quotes == TRICKY["QUOTES"]
    assert settings.trailing_backslash == TRICKY["TRAILING_BACKSLASH"]
    assert settings.unicode == TRICKY["UNICODE"]


def test_export_json(tricky: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "export", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["STRIPE_KEY"] == STRIPE
    assert data["NEWLINES"] == TRICKY["NEWLINES"]
    assert data["REFERENCE"] == "https://${SECRET_HOST}/x"  # JSON is not interpolated


def test_export_every_folder(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "export", "--path", "*", "--format", "json")
    assert code == 0
    assert json.loads(out)["WORKER"] == "w-backend"


def test_export_into_a_missing_folder_exits_2(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "export", "-o", str(tmp_path / "nope" / ".env"))
    assert code == 2
    assert_one_line_error(err)


# --- check -------------------------------------------------------------------------------------


def test_check_reports_the_origin_of_each_field(
    demo: Demo,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = settings_module(tmp_path, APP_SETTINGS)
    (tmp_path / ".env").write_text("REGION=us-dotenv\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("POOL__SIZE", "3")
    demo.fake.set_secret(demo.app_id, "development", "POOL__NAME", "phase-pool")
    code, out, err = cli(capsys, "check", target)
    assert code == 0, err
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[3:] if line}
    assert rows["database_url"].split() == ["phase", "/", "****"]
    assert rows["stripe_key"].split() == ["phase", "/", "****"]
    assert rows["max_connections"].split() == ["phase", "/", "****"]
    assert rows["region"].split() == ["dotenv", "us-dotenv"]
    assert rows["log_level"].split() == ["env", "DEBUG"]
    assert rows["pool"].split()[:3] == ["env", "+", "phase"]
    assert "Phase keys read by no field" in out
    assert "MAX_CONECTIONS (/)" in out
    assert "loaded from Phase" in out
    assert STRIPE not in out + err and DATABASE not in out + err


def test_check_show_values_never_reveals_secretstr(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(tmp_path, APP_SETTINGS)
    code, out, _ = cli(capsys, "check", target, "--show-values")
    assert code == 0
    assert DATABASE in out
    assert STRIPE not in out
    assert '["a.example", "b.example"]' in out


def test_check_json(demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = settings_module(tmp_path, APP_SETTINGS)
    code, out, _ = cli(capsys, "check", target, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["valid"] is True
    assert report["phase"]["status"] == "phase"
    assert report["phase"]["app_id"] == demo.app_id
    assert report["phase"]["fallback"] is False
    fields = {f["name"]: f for f in report["fields"]}
    assert fields["stripe_key"] == {
        "name": "stripe_key",
        "source": "phase",
        "path": "/",
        "also": [],
        "stale": False,
        "value": "****",
        "masked": True,
    }
    assert fields["region"]["source"] == "default" and fields["region"]["value"] == "eu"
    assert {"key": "MAX_CONECTIONS", "path": "/", "may_be_reference_target": True} in report[
        "unused_keys"
    ]
    assert report["errors"] == []


def test_check_context_flags_pick_another_environment(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(
        tmp_path,
        """
        from phase_settings import PhaseSettings

        class Settings(PhaseSettings):
            stripe_key: str
        """,
    )
    code, out, _ = cli(capsys, "--env", "Production", "check", target, "--json", "--show-values")
    assert code == 0
    report = json.loads(out)
    assert report["phase"]["env"] == "Production"
    assert report["fields"][0]["value"] == "sk_prod_value"


def test_invalid_settings_exit_1_naming_fields_not_values(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    demo.fake.set_secret(demo.app_id, "development", "PORT", "not-a-port-canary")
    target = settings_module(
        tmp_path,
        """
        from pydantic import SecretStr
        from phase_settings import PhaseSettings

        class Settings(PhaseSettings):
            stripe_key: SecretStr
            port: int
            api_key: str
        """,
    )
    code, out, err = cli(capsys, "check", target)
    assert code == 1
    assert "INVALID" in out
    assert "port: int_parsing" in out
    assert "api_key: missing" in out
    assert "expected Phase key API_KEY" in out
    assert_one_line_error(err)
    assert "not-a-port-canary" not in out + err and STRIPE not in out + err
    code, out, _ = cli(capsys, "check", target, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert {"field": "port", "type": "int_parsing"} in report["errors"]


def test_check_reports_the_dotenv_fallback_and_strict_exits_3(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=local\nSTRIPE_KEY=local\n", encoding="utf-8")
    target = settings_module(
        tmp_path,
        f"""
        from pydantic import SecretStr
        from phase_settings import PhaseSettings, PhaseSettingsConfigDict

        class Settings(PhaseSettings):
            model_config = PhaseSettingsConfigDict(
                env_file=".env", phase_host="http://127.0.0.1:{free_port()}", phase_deadline=1
            )
            database_url: str
            stripe_key: SecretStr
        """,
    )
    # PHASE_HOST in the environment beats model_config: point it at the closed port too.
    code, out, err = cli(capsys, "--host", f"http://127.0.0.1:{free_port()}", "check", target)
    assert code == 0, err
    assert "WARNING: Phase was unavailable" in out and "FALLBACK" in out
    assert "database_url  dotenv" in out
    code, out, err = cli(
        capsys, "--host", f"http://127.0.0.1:{free_port()}", "check", target, "--strict"
    )
    assert code == 3
    assert_one_line_error(err)
    assert "--strict" in err


def test_check_reports_stale_values(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(tmp_path, APP_SETTINGS)  # phase_cache_ttl=0: every load fetches
    assert cli(capsys, "check", target)[0] == 0
    demo.fake.fail_next(503, times=20)
    code, out, err = cli(capsys, "check", target, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["phase"]["status"] == "stale" and report["phase"]["fallback"] is True
    assert "PhaseServerError" in report["phase"]["last_error"]
    assert report["fields"][0]["stale"] is True
    code, out, err = cli(capsys, "check", target, "--strict")
    assert code == 3
    assert "LAST GOOD" in out


def test_check_without_fallback_exits_3(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(
        tmp_path,
        """
        from phase_settings import PhaseSettings, PhaseSettingsConfigDict

        class Settings(PhaseSettings):
            model_config = PhaseSettingsConfigDict(phase_fallback="raise", phase_deadline=1)
            stripe_key: str
        """,
    )
    code, out, err = cli(capsys, "--host", f"http://127.0.0.1:{free_port()}", "check", target)
    assert code == 3
    assert out == ""
    assert_one_line_error(err)


def test_check_without_a_token_says_phase_is_not_used(
    demo: Demo,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PHASE_SERVICE_TOKEN")
    monkeypatch.setenv("DATABASE_URL", "from-env")
    monkeypatch.setenv("STRIPE_KEY", "from-env")
    code, out, _ = cli(capsys, "check", settings_module(tmp_path, APP_SETTINGS))
    assert code == 0
    assert "Phase: not used (no token" in out


@pytest.mark.parametrize(
    "target",
    ["no_colon", "missing_module_xyz:Settings", "json:Nope", "json:JSONDecoder", ":Settings"],
)
def test_check_bad_targets_exit_2(
    demo: Demo, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    code, out, err = cli(capsys, "check", target)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)


def test_check_a_module_that_fails_at_import(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(
        tmp_path,
        """
        from phase_settings import PhaseSettings

        class Settings(PhaseSettings):
            not_in_phase: int

        settings = Settings()
        """,
    )
    code, _, err = cli(capsys, "check", target)
    assert code == 1
    assert "not_in_phase (missing)" in err
    broken = settings_module(tmp_path, "raise RuntimeError('boom canary')\n")
    code, _, err = cli(capsys, "check", broken)
    assert code == 2
    assert "RuntimeError" in err and "boom canary" not in err


# --- serve-fake and the entry point as subprocesses ---------------------------------------------


def test_serve_fake_bad_seed_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "serve-fake", "--seed", str(tmp_path / "missing.json"))
    assert code == 2
    assert_one_line_error(err)
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert cli(capsys, "serve-fake", "--seed", str(tmp_path / "bad.json"))[0] == 2
    (tmp_path / "empty.json").write_text('{"apps": []}', encoding="utf-8")
    assert cli(capsys, "serve-fake", "--seed", str(tmp_path / "empty.json"))[0] == 2


def test_serve_fake_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    with serve_fake(SEED, tmp=tmp_path, port=port) as server:
        assert server.url == f"http://127.0.0.1:{port}"
        assert server.token.startswith("pss_service:v2:")
        env = server.env()
        got = run([PYTHON, "-m", "phase_settings", "get", "GREETING"], env=env)
        assert (got.returncode, got.stdout) == (0, "Hello from Phase (development)\n")
        prod = run(
            [PYTHON, "-m", "phase_settings", "--env", "production", "get", "MAX_ITEMS"], env=env
        )
        assert (prod.returncode, prod.stdout) == (0, "100\n")
        created = run([PYTHON, "-m", "phase_settings", "set", "CLI_KEY=v1"], env=env)
        assert created.returncode == 0, created.stderr
        with PhaseClient(server.token, host=server.url) as client:
            secrets = client.list_secrets(server.app_id, "development", key="CLI_KEY")
        assert [s.value for s in secrets] == ["v1"]
        missing = run([PYTHON, "-m", "phase_settings", "get", "NOPE"], env=env)
        assert missing.returncode == 1 and "Traceback" not in missing.stderr
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0


def test_serve_fake_stops_on_sigint(tmp_path: Path) -> None:
    with serve_fake(SEED, tmp=tmp_path) as server:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(10) == 0
        server.stderr.seek(0)
        assert "Traceback" not in server.stderr.read()


def test_export_via_subprocess_writes_0600(tmp_path: Path) -> None:
    with serve_fake(SEED, tmp=tmp_path) as server:
        target = tmp_path / "out.env"
        proc = subprocess.Popen(
            [PYTHON, "-m", "phase_settings", "export", "-o", str(target)],
            env=server.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            umask=0o000,
        )
        try:
            _, err = proc.communicate(timeout=30)
        finally:
            stop(proc)
        assert proc.returncode == 0, err
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert dotenv_values(target)["GREETING"] == "Hello from Phase (development)"
        assert dotenv_values(target)["FEATURES"] == '["search", "export"]'


# --- set by hand ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "becomes"),
    [("db_url=x", "DB_URL"), ("BAD KEY=x", "'BAD KEY'"), ("API-KEY=x", "'API-KEY'")],
)
def test_set_refuses_a_key_phase_would_change(
    demo: Demo, capsys: pytest.CaptureFixture[str], assignment: str, becomes: str
) -> None:
    code, _, err = cli(capsys, "set", assignment)
    assert code == 2
    assert_one_line_error(err)
    assert f"Phase would store it as {becomes}" in err
    client = PhaseClient(demo.token, demo.url)
    with client:
        keys = {s.key for s in client.list_secrets(demo.app_id, "development", path=None)}
    assert not keys & {"DB_URL", "BAD KEY", "API-KEY"}


def test_set_refuses_an_empty_value_unless_allowed(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = cli(capsys, "set", "EMPTY_ONE")
    assert code == 2
    assert_one_line_error(err)
    assert "--allow-empty" in err
    code, _, err = cli(capsys, "set", "EMPTY_TWO=")
    assert code == 2 and "--allow-empty" in err
    with PhaseClient(demo.token, demo.url) as client:
        assert not client.list_secrets(demo.app_id, "development", key="EMPTY_ONE")
        assert not client.list_secrets(demo.app_id, "development", key="EMPTY_TWO")

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, out, _ = cli(capsys, "set", "EMPTY_ONE", "--allow-empty")
    assert code == 0 and "created EMPTY_ONE" in out
    with PhaseClient(demo.token, demo.url) as client:
        [secret] = client.list_secrets(demo.app_id, "development", key="EMPTY_ONE")
    assert secret.value == ""


def test_set_on_a_terminal_prompts_without_echo(demo: Demo, tmp_path: Path) -> None:
    """``set KEY`` on a terminal: a prompt, the typed value never echoed, the value stored."""
    import pty
    import select

    value = "typed-canary-7f3a"
    env = clean_env(
        {"PHASE_HOST": demo.url, "PHASE_APP_ID": demo.app_id, "PHASE_SERVICE_TOKEN": demo.token}
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execve(PYTHON, [PYTHON, "-m", "phase_settings", "set", "TYPED_KEY"], env)
    seen = b""
    sent = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not sent and b"Value for TYPED_KEY" in seen:
                os.write(fd, value.encode() + b"\n")
                sent = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert sent, seen
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert value.encode() not in seen  # no echo
    with PhaseClient(demo.token, demo.url) as client:
        [secret] = client.list_secrets(demo.app_id, "development", key="TYPED_KEY")
    assert secret.value == value


# --- internal errors ---------------------------------------------------------------------------


def test_an_internal_error_is_one_line_and_exit_4_traceback_only_with_debug(
    demo: Demo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise ZeroDivisionError("secret-ish detail")

    monkeypatch.setattr(PhaseClient, "list_secrets", broken)
    monkeypatch.setenv("PHASE_DEBUG", "1")  # no environment variable turns tracebacks on
    code, _, err = cli(capsys, "get", "STRIPE_KEY")
    assert code == 4
    assert err.splitlines() == [
        "phase-settings: internal error: ZeroDivisionError (a bug: please report it)"
    ]
    code, _, err = cli(capsys, "--debug", "get", "STRIPE_KEY")
    assert code == 4
    assert "Traceback" in err and "ZeroDivisionError" in err
    code, _, err = cli(capsys, "get", "STRIPE_KEY", "--debug")
    assert code == 4 and "Traceback" in err


# --- check: Phase types and reference targets ---------------------------------------------------


def test_check_shows_config_values_and_masks_secrets(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    demo.fake.set_secret(demo.app_id, "development", "LOG_LEVEL", "WARNING", type="config")
    demo.fake.set_secret(demo.app_id, "development", "REGION", "eu-canary", type="secret")
    demo.fake.set_secret(demo.app_id, "development", "DB_HOST", "db.internal")
    demo.fake.set_secret(
        demo.app_id, "development", "DSN", "postgres://${DB_HOST}/app", type="config"
    )
    target = settings_module(
        tmp_path,
        """
        from pydantic import SecretStr
        from phase_settings import PhaseSettings, PhaseSettingsConfigDict

        class Settings(PhaseSettings):
            model_config = PhaseSettingsConfigDict(phase_cache_ttl=0, extra="ignore")
            log_level: str
            region: str
            stripe_key: SecretStr
            dsn: str
        """,
    )
    code, out, _ = cli(capsys, "check", target)
    assert code == 0, out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["log_level"].split() == ["log_level", "phase", "/", "WARNING"]
    assert rows["dsn"].split() == ["dsn", "phase", "/", "postgres://db.internal/app"]
    assert rows["region"].split() == ["region", "phase", "/", "****"]
    assert rows["stripe_key"].split()[-1] == "****"
    assert "eu-canary" not in out and STRIPE not in out
    # DB_HOST is read by no field but is the target of DSN's reference: the listing says so.
    assert "DB_HOST (/)" in out
    assert "reference" in out
    assert "unused" not in out.lower()


# --- export --for ----------------------------------------------------------------------------

FOR_SETTINGS = """
    from pydantic import AliasChoices, BaseModel, Field, SecretStr
    from phase_settings import PhaseSettings, PhaseSettingsConfigDict

    class Db(BaseModel):
        host: str
        password: SecretStr
        port: int = 5432

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(
            env_prefix="APP_",
            phase_path=["/", "/backend"],
            env_file=".env",
            extra="forbid",
            phase_cache_ttl=0,
            phase_max_attempts=1,
            phase_deadline=3,
        )
        db: Db
        api_key: SecretStr = Field(validation_alias=AliasChoices("STRIPE_KEY", "APP_API_KEY"))
        workers: int
        tags: list[str]
        note: str = "default-note"
"""


def _seed_for(demo: Demo) -> None:
    env = "development"
    demo.fake.set_secret(demo.app_id, env, "APP_WORKERS", "4")
    demo.fake.set_secret(demo.app_id, env, "APP_DB__HOST", "db.root")
    demo.fake.set_secret(demo.app_id, env, "APP_TAGS", '["a", "b"]')
    demo.fake.set_secret(demo.app_id, env, "APP_DB__HOST", "db.backend", path="/backend")
    demo.fake.set_secret(demo.app_id, env, "APP_DB__PASSWORD", "pw-canary", path="/backend")
    demo.fake.set_secret(demo.app_id, env, "UNRELATED_BACKEND", "x", path="/backend")


def test_export_for_writes_what_the_class_reads_and_it_loads_during_an_outage(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several paths, a prefix, an alias and a nested model: the exported file is exactly what
    the class reads, and with Phase stopped the class loads from it with every field present
    (``extra="forbid"`` accepts it)."""
    _seed_for(demo)
    target = settings_module(tmp_path, FOR_SETTINGS)
    code, out, err = cli(capsys, "export", "--for", target, "--output", ".env")
    assert code == 0, err
    written = dotenv_values(tmp_path / ".env")
    assert written == {
        "APP_WORKERS": "4",
        "APP_DB__HOST": "db.backend",  # the later folder wins, as when loading
        "APP_TAGS": '["a", "b"]',
        "APP_DB__PASSWORD": "pw-canary",
        "STRIPE_KEY": STRIPE,
    }
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert "pw-canary" not in out + err and STRIPE not in out + err

    from phase_settings import clear_cache, load_status

    module = __import__(target.split(":")[0])
    monkeypatch.setenv("PHASE_HOST", f"http://127.0.0.1:{free_port()}")  # Phase is down
    clear_cache()
    settings = module.Settings()
    assert load_status(module.Settings).source == "dotenv"
    assert settings.db.host == "db.backend"
    assert settings.db.password.get_secret_value() == "pw-canary"
    assert settings.api_key.get_secret_value() == STRIPE
    assert settings.workers == 4 and settings.tags == ["a", "b"]
    assert settings.note == "default-note"


def test_export_for_leaves_out_an_unwritable_value_and_refuses_a_required_one(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _seed_for(demo)
    target = settings_module(tmp_path, FOR_SETTINGS)
    demo.fake.set_secret(demo.app_id, "development", "APP_NOTE", "costs ${5}")
    code, _, err = cli(capsys, "export", "--for", target, "--output", "out.env")
    assert code == 0, err
    assert "APP_NOTE left out" in err and "${" in err and "costs" not in err
    assert "APP_NOTE" not in dotenv_values(tmp_path / "out.env")

    demo.fake.set_secret(demo.app_id, "development", "APP_WORKERS", "${4}")
    code, _, err = cli(capsys, "export", "--for", target, "--output", "refused.env")
    assert code == 1
    assert_one_line_error(err.splitlines()[-1] + "\n")
    assert "APP_WORKERS" in err and "workers" in err
    assert not (tmp_path / "refused.env").exists()


def test_export_for_is_dotenv_only(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(tmp_path, FOR_SETTINGS)
    code, _, err = cli(capsys, "export", "--for", target, "--format", "json")
    assert code == 2
    assert_one_line_error(err)


def test_export_for_warns_on_personal_overrides(
    demo: Demo, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_for(demo)
    user = demo.fake.add_user()
    demo.fake.set_override(user, demo.app_id, "development", "APP_WORKERS", "9")
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", user)
    target = settings_module(tmp_path, FOR_SETTINGS)
    code, out, err = cli(capsys, "export", "--for", target)
    assert code == 0, err
    assert 'APP_WORKERS="9"' in out
    assert "APP_WORKERS: personal override" in err


def test_check_of_a_class_that_breaks_is_an_internal_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = settings_module(
        tmp_path,
        """
        from phase_settings import PhaseSettings

        class Settings(PhaseSettings):
            @classmethod
            def settings_customise_sources(cls, *args, **kwargs):
                raise LookupError("a bug in the user's class")
        """,
    )
    from phase_settings._cli.check import run_check

    assert run_check(target) == (4, "internal error: LookupError")
    code, _, err = cli(capsys, "check", target)
    assert code == 4
    assert err.splitlines() == [
        "phase-settings: internal error: LookupError (a bug: please report it)"
    ]
    code, _, err = cli(capsys, "check", target, "--debug")
    assert code == 4 and "Traceback" in err and "LookupError" in err
