"""The one table of ``phase_*`` settings (``phase_settings._defaults``) and everything built
from it or checked against it: the config TypedDict, ``ResolvedConfig``, the keywords of
``PhaseSettingsSource``, the defaults of ``ClientOptions`` and the clients, the command-line
flags and the README's configuration table."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any, ForwardRef

import pytest

from phase_settings import (
    AsyncPhaseClient,
    PhaseClient,
    PhaseSettings,
    PhaseSettingsConfigDict,
    PhaseSettingsSource,
)
from phase_settings._cli.parser import build_parser
from phase_settings._client.options import ClientOptions
from phase_settings._defaults import DEFAULTS, SETTINGS, Setting
from phase_settings._settings.config import ResolvedConfig

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
TOKEN = "pss_service:v2:" + "ab" * 32


def test_the_config_dict_declares_every_row_with_its_type() -> None:
    declared = {
        k: v.__forward_arg__ if isinstance(v, ForwardRef) else v
        for k, v in PhaseSettingsConfigDict.__annotations__.items()
        if k.startswith("phase_")
    }
    assert declared == {name: setting.type for name, setting in SETTINGS.items()}


def test_the_resolved_config_has_a_field_per_row() -> None:
    renamed = {"phase_path": "paths", "phase_tags": "tags"}
    fields = {renamed.get(k, s.argument) for k, s in SETTINGS.items()}
    assert fields <= set(ResolvedConfig._fields)


def test_the_source_takes_every_setting_as_a_keyword() -> None:
    parameters = inspect.signature(PhaseSettingsSource).parameters
    missing = [s.argument for s in SETTINGS.values() if s.argument not in parameters]
    assert missing == []


def test_the_source_honours_mode_and_the_snapshot_keywords(tmp_path: Path) -> None:
    """``PhaseSettingsSource(Settings, mode="e2ee")`` raised ``TypeError`` while
    ``PhaseClient(mode="e2ee")`` worked: the source's keywords were a list of their own."""

    class Settings(PhaseSettings):
        pass

    source = PhaseSettingsSource(
        Settings, mode="e2ee", snapshot_dir=str(tmp_path), snapshot_max_age=60.0
    )
    config = source.resolve()
    assert (config.mode, config.snapshot_dir, config.snapshot_max_age) == ("e2ee", tmp_path, 60.0)
    assert source.with_overrides(mode="sse").resolve().mode == "sse"


@pytest.mark.parametrize("cls", [PhaseClient, AsyncPhaseClient, ClientOptions])
def test_the_client_defaults_are_the_table_defaults(cls: type) -> None:
    parameters = inspect.signature(cls).parameters
    shared = [name for name in parameters if f"phase_{name}" in SETTINGS]
    assert {"timeout", "deadline", "max_attempts", "verify_ssl", "allow_http"} <= set(shared)
    for name in shared:
        if name in ("token", "host", "mode"):  # None: the environment, then the table
            assert parameters[name].default is None, name
        else:
            assert parameters[name].default == DEFAULTS[f"phase_{name}"], name


def test_client_options_from_a_config_take_every_setting_they_share() -> None:
    config = ResolvedConfig(**{**_config_values(), "timeout": 2.5, "mode": "sse"})
    options = ClientOptions.from_config(config)
    assert (options.timeout, options.mode, options.max_attempts) == (2.5, "sse", 3)


def _config_values() -> dict[str, Any]:
    from phase_settings._settings.config import resolve_config

    return resolve_config({"phase_token": TOKEN}, {}, environ={})._asdict()


def test_the_command_line_flags_mirror_their_settings() -> None:
    parser = build_parser()
    flags = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    for name in ("phase_host", "phase_app_id", "phase_env", "phase_path"):
        setting = SETTINGS[name]
        assert setting.flag in flags, name
        assert f"({', '.join(setting.env)})" in (flags[setting.flag].help or "")
    deadline = SETTINGS["phase_deadline"]
    assert f"default {deadline.default:g};" in (flags[deadline.flag].help or "")


# --- the README's configuration table ------------------------------------------------------


def _shown_default(setting: Setting) -> str:
    """How the README writes a default, from the value, its unit and its choices."""
    value = setting.default
    if setting.shown is not None:
        return setting.shown
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{value}`"
    if setting.choices:
        return f'`"{value}"`'
    if isinstance(value, str):
        return f"`{value}`"
    if setting.unit == "bytes" and value % 2**20 == 0:
        return f"{value // 2**20} MiB"
    if setting.unit == "s":
        days, rest = divmod(value, 86400)
        return f"{days:g} days" if days >= 1 and not rest else f"{value:g} s"
    return f"{value:g}"


def readme_table() -> str:
    """The README's configuration table, rendered from the one table."""
    lines = ["| Key | Environment | Default | Notes |", "|---|---|---|---|"]
    for setting in SETTINGS.values():
        env = ", ".join(f"`{name}`" for name in setting.env) or "—"
        shown = _shown_default(setting)
        lines.append(f"| `{setting.name}` | {env} | {shown} | {setting.doc} |")
    return "\n".join(lines) + "\n"


def test_the_readme_configuration_table_is_the_table() -> None:
    expected = readme_table()
    assert expected in README, f"the README's configuration table should read:\n{expected}"


def test_a_default_shown_in_words_still_names_the_value() -> None:
    """A row that writes its default in words (``shown``) still names the value, so a changed
    default cannot leave the README behind."""
    for setting in SETTINGS.values():
        if setting.shown is not None and isinstance(setting.default, str):
            assert f"`{setting.default}`" in setting.shown, setting.name
    assert SETTINGS["phase_host"].shown == "`https://api.phase.dev`"


def test_no_module_repeats_a_default_as_a_literal() -> None:
    """The 15 s deadline and 10 s timeout were literals in four places; they read the table."""
    package = Path(__file__).resolve().parents[1] / "phase_settings"
    pattern = re.compile(r"(deadline|timeout)[^=\n]*=\s*1[05]\.0\b|min\(10\.0")
    found = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        if path.name != "_defaults.py" and "testing" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []
