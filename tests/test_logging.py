"""Logging as a user configures it: one logger per module under ``phase_settings``, and
python-dotenv's parse warnings once per env file, naming the file."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, SettingsConfigDict

import phase_settings
from phase_settings import PhaseSettings, PhaseSettingsConfigDict

from .conftest import Phase

PACKAGE = Path(phase_settings.__file__).parent


def _logger_names() -> dict[str, str]:
    """``module path:line`` -> the name it passes to ``logging.getLogger`` there."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names[f"{path.relative_to(PACKAGE)}:{node.lineno}"] = str(node.args[0].value)
    return names


def test_each_module_logs_under_a_logger_of_its_own_below_phase_settings() -> None:
    names = _logger_names()
    # where python-dotenv's warnings are held back
    held = [where for where, name in names.items() if name == "dotenv.main"]
    assert [where.split(":")[0] for where in held] == ["_settings/dotenv_log.py"]
    del names[held[0]]
    # DESIGN §4: these names are public and stay when files move
    assert sorted(names.values()) == sorted(
        f"phase_settings.{name}"
        for name in ("client", "config", "fetch", "loader", "live", "snapshot", "cli")
    ), names
    assert len(set(names.values())) == len(names), names


def test_the_package_logger_configures_them_all(caplog: pytest.LogCaptureFixture) -> None:
    class Settings(PhaseSettings):
        workers: int = 1

    with caplog.at_level(logging.INFO, logger="phase_settings"):
        Settings()
    records = [r for r in caplog.records if r.name.startswith("phase_settings")]
    assert records, "no record for 'no token: Phase disabled'"
    assert all(r.name != "phase_settings" for r in records)
    assert "Phase disabled" in records[0].getMessage()


def _write_env(path: Path) -> None:
    path.write_text('WORKERS=3\nthis line is not dotenv\nNAME="unterminated\n')


def _dotenv_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "could not parse" in r.getMessage()]


def test_dotenv_parse_warnings_come_once_and_name_the_file(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    env = tmp_path / "settings.env"
    _write_env(env)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(env_file=env, extra="ignore")
        workers: int = 1

    with caplog.at_level(logging.WARNING):
        assert Settings().workers == 3
        assert Settings().workers == 3  # the same file again: nothing new to say
    warnings = _dotenv_warnings(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert str(env) in message and "line 2, 3" in message
    assert warnings[0].name == "phase_settings.config"


def test_plain_base_settings_keep_python_dotenv_warnings(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    env = tmp_path / "plain.env"
    _write_env(env)

    class Plain(BaseSettings):
        model_config = SettingsConfigDict(env_file=env, extra="ignore")
        workers: int = 1

    with caplog.at_level(logging.WARNING):
        assert Plain().workers == 3
    assert [r.name for r in _dotenv_warnings(caplog)] == ["dotenv.main", "dotenv.main"]


def test_a_load_that_waits_two_seconds_for_phase_says_so_once(
    phase: Phase, caplog: pytest.LogCaptureFixture
) -> None:
    # Phase answers 429 with Retry-After 3: the load waits 3 s, then succeeds. A start that
    # slow must not be silent: one WARNING naming the attempt and the wait (never a value).
    phase.set("DB_HOST", "db-sekrit")
    phase.fake.fail_next(429, headers={"Retry-After": "3"})

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        db_host: str

    with caplog.at_level(logging.INFO, logger="phase_settings"):
        assert Settings().db_host == "db-sekrit"
    waiting = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("phase_settings")
    ]
    assert len(waiting) == 1, [r.getMessage() for r in caplog.records]
    message = waiting[0].getMessage()
    assert "attempt 2" in message and "Retry-After" in message
    assert "sekrit" not in message and phase.token not in message
