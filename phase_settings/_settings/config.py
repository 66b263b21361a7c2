"""Resolution of the ``phase_*`` settings.

Each key is looked up in this order: argument to the source > process environment >
``model_config`` > the ``env_file``(s) > ``.phase.json`` > default. The environment beats
``model_config`` so that one codebase is deployed to many environments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from dotenv import dotenv_values
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from .._core.credentials import Credentials
from .._defaults import DEFAULTS, ENV_NAMES, FALLBACKS, Fallback, Mode, parse_mode
from .._errors import PhaseConfigError, scrubbed
from .._load.runtime import runtime
from .dotenv_log import report_parse_errors

__all__ = [
    "UNSET",
    "PhaseSettingsConfigDict",
    "ResolvedConfig",
    "find_phase_json",
    "resolve_config",
]

PathSetting = str | Sequence[str] | None


class _Unset:
    """The "not given" marker: ``path=None`` means every folder, so None cannot mean unset."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


class PhaseSettingsConfigDict(SettingsConfigDict, total=False):
    """``SettingsConfigDict`` with the ``phase_*`` keys of the Phase source.

    Declared for type checkers: one key per row of ``_defaults.SETTINGS``, each of the type the
    row names (a test keeps them equal).
    """

    phase_token: str | SecretStr | None
    phase_host: str | None
    phase_app_id: str | None
    phase_env: str | None
    phase_path: PathSetting
    phase_tags: str | Sequence[str] | None
    phase_verify_ssl: bool | str
    phase_allow_http: bool
    phase_timeout: float
    phase_deadline: float
    phase_max_attempts: int
    phase_cache_ttl: float
    phase_fallback: Fallback
    phase_required: bool
    phase_use_overrides: bool
    phase_max_response_bytes: int
    phase_snapshot_dir: str | os.PathLike[str] | None
    phase_snapshot_max_age: float
    phase_mode: Mode


PHASE_JSON_DEPTH = 8


def env_flag(value: str | None) -> bool | None:
    """Parse a boolean environment value; None when unset or empty."""
    if value is None or not value.strip():
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise PhaseConfigError(f"expected true or false, got a value of {len(value)} characters")


def parse_verify_ssl(value: str | bool | None) -> bool | str:
    """``PHASE_VERIFY_SSL``: ``false`` disables verification (as the Phase CLI does), a path is
    a CA bundle, anything else verifies."""
    if value is None or isinstance(value, bool):
        return True if value is None else value
    stripped = value.strip()
    if stripped.lower() == "false":
        return False
    if stripped.lower() in ("", "true", "1", "yes", "on"):
        return True
    if stripped.lower() in ("0", "no", "off"):
        return False
    return os.fspath(Path(stripped).expanduser())


class ResolvedConfig(NamedTuple):
    """The ``phase_*`` settings of one load, every value resolved and checked."""

    token: SecretStr | None
    host: str | None
    app_id: str | None
    env: str
    paths: tuple[str, ...] | None  # None: every folder, in one request
    tags: tuple[str, ...]
    verify_ssl: bool | str
    allow_http: bool
    timeout: float
    deadline: float
    max_attempts: int
    cache_ttl: float
    fallback: Fallback
    required: bool
    use_overrides: bool
    max_response_bytes: int
    snapshot_dir: Path | None  # None: no on-disk snapshot
    snapshot_max_age: float  # seconds: an older snapshot is never served
    env_files: tuple[Path, ...]
    token_origin: str  # where the token came from, for messages (never the token)
    credentials: Credentials | None  # the token, parsed once on its first use (None: no token)
    mode: Mode = "auto"  # "sse": REST only; "e2ee": the end-to-end-encrypted API; "auto": both

    def __repr__(self) -> str:
        token = "None" if self.token is None else "SecretStr('**********')"
        return (
            f"ResolvedConfig(host={self.host!r}, app_id={self.app_id!r}, env={self.env!r}, "
            f"paths={self.paths!r}, tags={self.tags!r}, token={token})"
        )


def env_file_paths(config: Mapping[str, Any]) -> tuple[Path, ...]:
    """The ``env_file`` setting as a tuple of paths (files that do not exist included)."""
    env_file = config.get("env_file")
    if env_file is None:
        return ()
    if isinstance(env_file, str | os.PathLike):
        return (Path(env_file).expanduser(),)
    return tuple(Path(p).expanduser() for p in env_file)


def read_phase_keys(paths: Sequence[Path], encoding: str | None) -> dict[str, str]:
    """``PHASE_*`` entries of the env files, later files winning (python-dotenv parses)."""
    merged: dict[str, str] = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        cache_key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        memo = runtime.env_file_memo
        entries = memo.get(cache_key)
        if entries is None:
            with report_parse_errors(path):
                values = dotenv_values(path, encoding=encoding or "utf-8")
            entries = {
                k.upper(): v
                for k, v in values.items()
                if v is not None and k.upper().startswith("PHASE_")
            }
            if len(memo) > 64:
                memo.clear()
            memo[cache_key] = entries
        merged.update(entries)
    return merged


def find_phase_json(start: Path | None = None) -> dict[str, Any]:
    """The first ``.phase.json`` in the current folder or up to 8 parents (as the Phase CLI).

    Raises:
        PhaseConfigError: the file cannot be read, is not JSON, is not a JSON object, or has an
            ``appId`` / ``defaultEnv`` that is not a string; the message names the file.
    """
    try:
        depth = int(os.environ.get("PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH", PHASE_JSON_DEPTH))
    except ValueError:
        depth = PHASE_JSON_DEPTH
    folder = (start or Path.cwd()).resolve()
    for candidate in [folder, *list(folder.parents)[:depth]]:
        path = candidate / ".phase.json"
        if path.is_file():
            return _read_phase_json(path)
    return {}


def _read_phase_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = (
            "it is not UTF-8 text"
            if isinstance(exc, UnicodeDecodeError)
            else (exc.strerror or type(exc).__name__)
        )
        raise PhaseConfigError(
            f"{path} cannot be read ({reason}); fix its permissions or remove it"
        ) from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise PhaseConfigError(
            f"{path} is not valid JSON; fix it or remove it (it may hold appId and defaultEnv)"
        ) from None
    if not isinstance(data, dict):
        raise PhaseConfigError(
            f'{path} must hold a JSON object such as {{"appId": "…", "defaultEnv": '
            f'"Development"}}, not a JSON {_json_kind(data)}'
        )
    for key in ("appId", "defaultEnv"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            raise PhaseConfigError(
                f"{path}: {key} must be a string, not a JSON {_json_kind(data[key])}"
            )
    return data


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {list: "array", str: "string", type(None): "null"}.get(type(value), "object")


def _parse_paths(value: Any, origin: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text == "*":
            return None
        items = [p.strip() for p in text.split(",")] if text else ["/"]
    elif isinstance(value, Sequence):
        items = [str(p).strip() for p in value]
    else:
        raise PhaseConfigError(f"{origin} must be a folder such as '/', a list, or '*'")
    paths = []
    for item in items:
        if not item:
            raise PhaseConfigError(f"{origin} has an empty folder; use '/' for the root")
        if item == "*":
            return None
        paths.append("/" + "/".join(part for part in item.split("/") if part))
    return tuple(dict.fromkeys(paths)) or ("/",)


def _parse_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(t.strip() for t in items if str(t).strip())


def _snapshot_dir(value: Any) -> Path | None:
    if value is not None and not isinstance(value, str | os.PathLike):
        raise PhaseConfigError("phase_snapshot_dir must be a folder path")
    text = "" if value is None else str(os.fspath(value)).strip()
    return Path(text).expanduser() if text else None


def _number(name: str, value: Any, kind: type[int] | type[float], minimum: float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise PhaseConfigError(f"{name} must be a number, got {type(value).__name__}") from None
    if number < minimum:
        raise PhaseConfigError(f"{name} must be at least {minimum}")
    return number


def _token_name(origins: Mapping[str, str]) -> str:
    """The name a token error gives the token: its environment variable, else ``phase_token``."""
    origin = origins["phase_token"]
    return origin if origin.startswith("PHASE_") else "phase_token"


@scrubbed()
def resolve_config(
    settings_config: Mapping[str, Any],
    arguments: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """Resolve every ``phase_*`` key for one load.

    Args:
        settings_config: the settings class's ``model_config``.
        arguments: values given to the source (keys ``phase_*``; ``UNSET`` means not given).
        environ: the process environment (default ``os.environ``).

    Raises:
        PhaseConfigError: a value that cannot be used.
    """
    environ = os.environ if environ is None else environ
    env_files = env_file_paths(settings_config)
    dotenv: dict[str, str] | None = None
    phase_json: dict[str, Any] | None = None
    origins: dict[str, str] = {}

    def lookup(key: str) -> Any:
        nonlocal dotenv, phase_json
        value = arguments.get(key, UNSET)
        if value is not UNSET:
            origins[key] = "argument"
            return value
        for name in ENV_NAMES.get(key, ()):
            if environ.get(name):
                origins[key] = name
                return environ[name]
        if key in settings_config:
            origins[key] = f"model_config['{key}']"
            return settings_config[key]
        if key in ENV_NAMES:
            if dotenv is None:
                dotenv = read_phase_keys(env_files, settings_config.get("env_file_encoding"))
            for name in ENV_NAMES[key]:
                if dotenv.get(name):
                    origins[key] = f"{name} in the env file"
                    return dotenv[name]
        if key in ("phase_app_id", "phase_env"):
            if phase_json is None:
                phase_json = find_phase_json()
            json_key = "appId" if key == "phase_app_id" else "defaultEnv"
            if isinstance(phase_json.get(json_key), str) and phase_json[json_key]:
                origins[key] = ".phase.json"
                return phase_json[json_key]
        origins[key] = "default"
        return DEFAULTS[key]

    token = lookup("phase_token")
    if isinstance(token, str):
        token = SecretStr(token.strip()) if token.strip() else None
    elif token is not None and not isinstance(token, SecretStr):
        raise PhaseConfigError("phase_token must be a string or SecretStr")

    fallback = lookup("phase_fallback")
    if fallback not in FALLBACKS:
        raise PhaseConfigError("phase_fallback must be 'dotenv', 'stale' or 'raise'")
    allow_http = lookup("phase_allow_http")
    if isinstance(allow_http, str):
        allow_http = bool(env_flag(allow_http))
    env_name = lookup("phase_env")
    app_id = lookup("phase_app_id")
    host = lookup("phase_host")
    return ResolvedConfig(
        token=token,
        host=str(host).strip() or None if host else None,
        app_id=str(app_id).strip() or None if app_id else None,
        env=str(env_name).strip() if env_name else DEFAULTS["phase_env"],
        paths=_parse_paths(lookup("phase_path"), origins.get("phase_path", "phase_path")),
        tags=_parse_tags(lookup("phase_tags")),
        verify_ssl=parse_verify_ssl(lookup("phase_verify_ssl")),
        allow_http=bool(allow_http),
        timeout=_number("phase_timeout", lookup("phase_timeout"), float, 0.001),
        deadline=_number("phase_deadline", lookup("phase_deadline"), float, 0.001),
        max_attempts=_number("phase_max_attempts", lookup("phase_max_attempts"), int, 1),
        cache_ttl=_number("phase_cache_ttl", lookup("phase_cache_ttl"), float, 0),
        fallback=fallback,
        required=bool(lookup("phase_required")),
        use_overrides=bool(lookup("phase_use_overrides")),
        max_response_bytes=_number(
            "phase_max_response_bytes", lookup("phase_max_response_bytes"), int, 1
        ),
        snapshot_dir=_snapshot_dir(lookup("phase_snapshot_dir")),
        snapshot_max_age=_number(
            "phase_snapshot_max_age", lookup("phase_snapshot_max_age"), float, 0
        ),
        env_files=env_files,
        token_origin=origins["phase_token"],
        credentials=None if token is None else Credentials(token, origin=_token_name(origins)),
        mode=parse_mode(lookup("phase_mode"), origins.get("phase_mode", "phase_mode")),
    )
