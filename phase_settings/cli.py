"""The ``phase-settings`` command line (DESIGN §6), and the settings check it shares with the
Django and Flask integrations.

Exit codes: 0 success; 1 the answer is no (settings invalid, a key that does not exist); 2 usage
or local configuration (bad flags, :class:`PhaseConfigError`, a class that cannot be imported);
3 Phase refused or could not be reached (any other :class:`PhaseError`).

Errors are one line on stderr and never a traceback; no message holds a token or a secret value.
``import phase_settings`` never imports this module: only the entry point, ``python -m
phase_settings`` and the framework integrations do.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from dotenv import dotenv_values
from pydantic import BaseModel, Secret, SecretBytes, SecretStr, ValidationError
from pydantic.aliases import AliasChoices
from pydantic_core import to_jsonable_python
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsError,
)
from pydantic_settings.sources import DefaultSettingsSource

from . import __version__
from ._cache import Fetched, load_status
from ._client import PhaseClient
from ._config import UNSET, ResolvedConfig, resolve_config
from ._errors import PhaseConfigError, PhaseError
from ._models import LoadStatus
from ._retry import Deadline
from ._source import PhaseSettingsSource, merge_secrets

__all__ = [
    "EXIT_NO",
    "EXIT_OK",
    "EXIT_PHASE",
    "EXIT_USAGE",
    "CheckReport",
    "CommandFailed",
    "FieldReport",
    "Writer",
    "check_settings",
    "exit_code_for",
    "format_dotenv",
    "load_settings_class",
    "main",
    "plain_value",
    "run_check",
    "settings_to_config",
    "write_private_file",
]

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2
EXIT_PHASE = 3

MASK = "****"
PROG = "phase-settings"
DEFAULT_DEADLINE = 15.0

logger = logging.getLogger("phase_settings")


class Writer(Protocol):
    """Where a report goes: ``sys.stdout``, Django's ``OutputWrapper``, a ``StringIO``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class CommandFailed(Exception):
    """A failure with a one-line message (no value, no token) and the exit code it maps to."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message = message
        self.code = code


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an error: 2 for local configuration, 1 for invalid settings, else 3."""
    if isinstance(exc, CommandFailed):
        return exc.code
    if isinstance(exc, PhaseConfigError):
        return EXIT_USAGE
    if isinstance(exc, ValidationError | SettingsError):
        return EXIT_NO
    return EXIT_PHASE


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- values as frameworks want them ------------------------------------------------------------


def plain_value(value: Any) -> Any:
    """A field value as frameworks expect it: secrets unwrapped, nested models as dicts.

    ``SecretStr``/``SecretBytes``/``Secret`` become their secret value, models become
    ``model_dump()`` dicts, and mappings, lists, tuples and sets are walked.
    """
    if isinstance(value, SecretStr | SecretBytes | Secret):
        return plain_value(value.get_secret_value())
    if isinstance(value, BaseModel):
        return plain_value(value.model_dump())
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_value(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(plain_value(v) for v in value)
    return value


def settings_to_config(settings: BaseModel) -> dict[str, Any]:
    """The fields of a settings instance as ``UPPER_CASE`` names with plain values.

    Args:
        settings: a settings instance (any pydantic model).

    Returns:
        ``{FIELD_NAME: value}`` with secrets unwrapped and nested models as dicts.
    """
    return {
        name.upper(): plain_value(getattr(settings, name)) for name in type(settings).model_fields
    }


def _masked(value: Any) -> Any:
    """A JSON-able rendering of ``value`` in which every secret type reads ``****``."""
    if isinstance(value, SecretStr | SecretBytes | Secret):
        return MASK
    if isinstance(value, BaseModel):
        return {name: _masked(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return to_jsonable_python(value, fallback=lambda v: f"<{type(v).__name__}>")


# --- the check -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldReport:
    """One field of a settings check.

    Attributes:
        name: the field's name.
        source: where its value came from: ``"phase"``, ``"env"``, ``"dotenv"``, ``"secrets"``,
            ``"init"``, ``"default"``, ``"missing"``, or a custom source's class name.
        path: for ``"phase"``, the Phase folder(s) the value came from, else None.
        value: the value as JSON-able data, ``"****"`` where masked, None if not validated.
        masked: whether the value is hidden.
        also: lower-priority sources that filled parts of a nested value.
        stale: the Phase value is a last good value served while Phase was unavailable.
    """

    name: str
    source: str
    path: str | None
    value: Any
    masked: bool
    also: tuple[str, ...] = ()
    stale: bool = False

    @property
    def origin(self) -> str:
        """``"phase /folder"``, ``"env"``, ... as shown in the text report."""
        text = f"phase {self.path}" if self.source == "phase" and self.path else self.source
        return " + ".join((text, *self.also)) + (" (stale)" if self.stale else "")


@dataclass(slots=True)
class CheckReport:
    """The result of checking a settings class: where each field came from, what is wrong.

    Attributes:
        target: ``module:Class`` of the settings class.
        fields: one row per field, in declaration order.
        unused_keys: ``(key, path)`` of Phase keys that no field reads.
        errors: ``(field, error type)`` of each validation error; empty when valid.
        status: how the Phase load went (:class:`LoadStatus`).
        app_id: the Phase app loaded, or None.
        env: the Phase environment loaded, or None.
        phase_sources: how many Phase sources the class has.
    """

    target: str
    fields: list[FieldReport] = field(default_factory=list)
    unused_keys: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    status: LoadStatus = field(default_factory=LoadStatus)
    app_id: str | None = None
    env: str | None = None
    phase_sources: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the settings validate."""
        return not self.errors

    @property
    def fell_back(self) -> bool:
        """True when a fallback (last good values, or the env file) served instead of Phase."""
        return self.status.source in ("stale", "dotenv")

    def phase_summary(self) -> str:
        """One line on how Phase was used."""
        status = self.status
        if self.phase_sources == 0:
            return "Phase: not used (the class has no Phase source)"
        where = f"app {self.app_id}, environment {self.env!r}" if self.app_id else ""
        fetched = (
            f" (fetched {status.fetched_at.isoformat(timespec='seconds')})"
            if status.fetched_at
            else ""
        )
        if status.source == "phase":
            return f"Phase: {where}: loaded from Phase{fetched}"
        if status.source == "cache":
            return f"Phase: {where}: loaded from Phase (cached in this process){fetched}"
        if status.source == "stale":
            return (
                f"WARNING: Phase was unavailable ({status.last_error}); the values are the LAST "
                f"GOOD values{fetched}, not current ones from Phase"
            )
        if status.source == "dotenv":
            return (
                f"WARNING: Phase was unavailable ({status.last_error}); the values came from the "
                "env file FALLBACK, not from Phase"
            )
        return "Phase: not used (no token: set PHASE_SERVICE_TOKEN)"

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        status = self.status
        return {
            "settings": self.target,
            "valid": self.valid,
            "phase": {
                "used": self.phase_sources > 0 and status.source != "none",
                "app_id": self.app_id,
                "env": self.env,
                "status": status.source,
                "fallback": self.fell_back,
                "fetched_at": status.fetched_at.isoformat() if status.fetched_at else None,
                "stale_since": status.stale_since.isoformat() if status.stale_since else None,
                "last_error": status.last_error,
            },
            "fields": [
                {
                    "name": row.name,
                    "source": row.source,
                    "path": row.path,
                    "also": list(row.also),
                    "stale": row.stale,
                    "value": row.value,
                    "masked": row.masked,
                }
                for row in self.fields
            ],
            "unused_keys": [{"key": key, "path": path} for key, path in self.unused_keys],
            "errors": [{"field": name, "type": kind} for name, kind in self.errors],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The report as text."""
        lines = [f"{self.target}", self.phase_summary(), ""]
        rows = [("FIELD", "SOURCE", "VALUE")]
        for row in self.fields:
            rows.append((row.name, row.origin, _display(row.value)))
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for name, origin, value in rows:
            lines.append(f"  {name.ljust(widths[0])}  {origin.ljust(widths[1])}  {value}".rstrip())
        if self.unused_keys:
            lines.append("")
            lines.append("Unused Phase keys (no field reads them; a typo?):")
            lines.extend(f"  {key} ({path})" for key, path in self.unused_keys)
        lines.append("")
        if self.errors:
            lines.append(f"INVALID: {len(self.errors)} error(s)")
            lines.extend(f"  {name}: {kind}" for name, kind in self.errors)
            lines.extend(f"  {note}" for note in self.notes)
        else:
            lines.append(f"OK: {len(self.fields)} field(s) valid")
        return "\n".join(lines) + "\n"


def _display(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and value.isprintable():
        return value
    return json.dumps(value, ensure_ascii=False)


class _Recorder(PydanticBaseSettingsSource):
    """Wraps a settings source and keeps what it returned, so the check can tell which source
    supplied each field while the instance is built from exactly those values."""

    def __init__(self, inner: PydanticBaseSettingsSource):
        super().__init__(inner.settings_cls, getattr(inner, "_init_state", None))
        self.inner = inner
        self.data: dict[str, Any] | None = None
        self.__name__ = getattr(inner, "__name__", type(inner).__name__)

    def _set_current_state(self, state: dict[str, Any]) -> None:
        super()._set_current_state(state)
        self.inner._set_current_state(state)

    def _set_settings_sources_data(self, states: dict[str, dict[str, Any]]) -> None:
        super()._set_settings_sources_data(states)
        self.inner._set_settings_sources_data(states)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        self.data = self.inner()
        return self.data


def _source_label(source: PydanticBaseSettingsSource) -> str:
    if isinstance(source, PhaseSettingsSource):
        return "phase"
    if isinstance(source, DotEnvSettingsSource):
        return "dotenv"
    if isinstance(source, EnvSettingsSource):
        return "env"
    if isinstance(source, SecretsSettingsSource):
        return "secrets"
    if isinstance(source, InitSettingsSource):
        return "init"
    return type(source).__name__


def _field_keys(name: str, info: Any) -> set[str]:
    keys = {name}
    if isinstance(info.alias, str):
        keys.add(info.alias)
    alias = info.validation_alias
    if isinstance(alias, str):
        keys.add(alias)
    elif isinstance(alias, AliasChoices):
        keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return keys


def load_settings_class(target: str) -> type[BaseSettings]:
    """Import ``module:Class`` (the current folder is searched first, as ``python -m`` does).

    Raises:
        CommandFailed: not ``module:Class``, the import failed, or not a settings class (exit 2).
        PhaseError, ValidationError: the module loads its settings at import time, and that
            failed.
    """
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise CommandFailed(f"expected module:Class, got {target!r}", EXIT_USAGE)
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except (PhaseError, ValidationError, SettingsError):
        raise
    except ImportError as exc:
        raise CommandFailed(
            f"cannot import {module_name}: {_one_line(str(exc))}", EXIT_USAGE
        ) from None
    except Exception as exc:
        raise CommandFailed(
            f"importing {module_name} raised {type(exc).__name__}; run python -c "
            f"'import {module_name}' to see why",
            EXIT_USAGE,
        ) from None
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CommandFailed(f"{module_name} has no attribute {attribute}", EXIT_USAGE) from None
    if not (isinstance(obj, type) and issubclass(obj, BaseSettings)):
        raise CommandFailed(f"{target} is not a pydantic-settings BaseSettings class", EXIT_USAGE)
    return obj


def _errors_of(exc: ValidationError) -> list[tuple[str, str]]:
    return [
        (".".join(str(part) for part in err["loc"]) or "(model)", err["type"])
        for err in exc.errors(include_input=False, include_url=False)
    ]


_SETTINGS_ERROR = re.compile(r'error parsing value for field "([^"]+)" from source "([^"]+)"')


def _settings_error(exc: SettingsError) -> list[tuple[str, str]]:
    match = _SETTINGS_ERROR.search(str(exc))
    if match is None:
        return [("(settings)", "settings_error")]
    return [(match.group(1), f"value_not_decodable (from {match.group(2)})")]


def check_settings(
    target: str | type[BaseSettings],
    *,
    show_values: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> CheckReport:
    """Load a settings class once and report where each field came from.

    The sources are those the class would use (``settings_customise_sources``); each is called
    once in priority order, and the instance is built from exactly what they returned.

    Args:
        target: the class, or ``"module:Class"``.
        show_values: show the values that came from Phase (``SecretStr`` stays masked).
        overrides: ``phase_*`` arguments for every Phase source (``phase_app_id``,
            ``phase_env``, ``phase_path``, ``phase_host``, ``phase_deadline``): the command
            line's context flags.

    Returns:
        The report. Validation errors are in it, not raised.

    Raises:
        CommandFailed: the class cannot be imported (exit 2).
        PhaseError: Phase failed and no fallback applied.
    """
    if isinstance(target, str):
        settings_cls = load_settings_class(target)
        name = target
    else:
        settings_cls = target
        name = f"{target.__module__}:{target.__qualname__}"
    # A class that parses its own command line (cli_parse_args) must not parse ours.
    no_cli: dict[str, Any] = (
        {"_cli_parse_args": False} if settings_cls.model_config.get("cli_parse_args") else {}
    )
    sources, init_kwargs = settings_cls._settings_init_sources(**no_cli)
    recorders: list[_Recorder] = []
    wrapped: list[PydanticBaseSettingsSource] = []
    for source in sources:
        if isinstance(source, PhaseSettingsSource) and overrides:
            source._arguments.update({k: v for k, v in overrides.items() if v is not UNSET})
        if isinstance(source, PydanticBaseSettingsSource) and not isinstance(
            source, DefaultSettingsSource
        ):
            recorder = _Recorder(source)
            recorders.append(recorder)
            wrapped.append(recorder)
        else:
            wrapped.append(source)
    report = CheckReport(target=name)
    instance: BaseSettings | None = None
    try:
        instance = settings_cls(_build_sources=(tuple(wrapped), init_kwargs))
    except ValidationError as exc:
        report.errors = _errors_of(exc)
    except SettingsError as exc:
        report.errors = _settings_error(exc)

    phase = [r for r in recorders if isinstance(r.inner, PhaseSettingsSource)]
    report.phase_sources = len(phase)
    report.status = load_status(settings_cls) if phase else LoadStatus()
    origins: dict[str, str] = {}
    expected: dict[str, list[str]] = {}
    delimiter = ""
    for recorder in phase:
        assert isinstance(recorder.inner, PhaseSettingsSource)
        load = recorder.inner.report
        if load.app_id is not None and report.app_id is None:
            report.app_id, report.env = load.app_id, load.env
        origins.update({key.upper(): path for key, path in load.origins.items()})
        for field_name, keys in load.expected_keys.items():
            expected.setdefault(field_name, []).extend(keys)
        delimiter = delimiter or (recorder.inner.env_nested_delimiter or "").upper()

    def phase_paths(field_name: str) -> str | None:
        paths: list[str] = []
        for key in expected.get(field_name, []):
            for phase_key, path in origins.items():
                nested = bool(delimiter) and phase_key.startswith(key + delimiter)
                if (phase_key == key or nested) and path not in paths:
                    paths.append(path)
        return ", ".join(paths) or None

    for field_name, info in settings_cls.model_fields.items():
        candidates = _field_keys(field_name, info)
        contributors: list[tuple[_Recorder, Any]] = []
        for recorder in recorders:
            data = recorder.data or {}
            for key in candidates:
                if key in data:
                    contributors.append((recorder, data[key]))
                    break
        if contributors:
            first_source, first_value = contributors[0]
            label = _source_label(first_source.inner)
            also: list[str] = []
            if isinstance(first_value, dict):
                for other, other_value in contributors[1:]:
                    other_label = _source_label(other.inner)
                    if isinstance(other_value, dict) and other_label not in (label, *also):
                        also.append(other_label)
        else:
            label = "default" if not info.is_required() else "missing"
            also = []
        from_phase = label == "phase" or "phase" in also
        path = phase_paths(field_name) if from_phase else None
        stale = from_phase and report.status.source == "stale"
        masked = from_phase and not show_values
        if instance is None:
            value: Any = None
        elif masked:
            value = MASK
        else:
            attribute = getattr(instance, field_name)
            value = _masked(attribute)
            masked = isinstance(attribute, SecretStr | SecretBytes | Secret)
        report.fields.append(
            FieldReport(field_name, label, path, value, masked, tuple(also), stale)
        )

    used: set[str] = set()
    for keys in expected.values():
        for key in keys:
            for phase_key in origins:
                if phase_key == key or (delimiter and phase_key.startswith(key + delimiter)):
                    used.add(phase_key)
    report.unused_keys = sorted((k, p) for k, p in origins.items() if k not in used)
    missing = {name for name, kind in report.errors if kind == "missing"}
    for field_name in settings_cls.model_fields:
        if field_name in missing and expected.get(field_name) and report.app_id:
            keys_text = " or ".join(dict.fromkeys(expected[field_name]))
            report.notes.append(
                f"{field_name}: expected Phase key {keys_text} in app {report.app_id}, "
                f"environment {report.env!r} (or an environment variable / .env entry)"
            )
    return report


def run_check(
    target: str | type[BaseSettings],
    *,
    as_json: bool = False,
    show_values: bool = False,
    strict: bool = False,
    out: Writer | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[int, str | None]:
    """Check a settings class, write the report, and say how the command should exit.

    Shared by ``phase-settings check``, ``manage.py phase_check`` and ``flask phase check``.

    Args:
        target: the class, or ``"module:Class"``.
        as_json: write the report as JSON.
        show_values: show the values that came from Phase (never ``SecretStr``).
        strict: a fallback (stale values, or the env file) is a failure (exit 3).
        out: where the report goes (default stdout).
        overrides: ``phase_*`` arguments for the Phase sources (the context flags).

    Returns:
        The exit code, and the one-line error message to print (None on success).
    """
    stream: Writer = out if out is not None else sys.stdout
    try:
        report = check_settings(target, show_values=show_values, overrides=overrides)
    except ValidationError as exc:
        errors = ", ".join(f"{name} ({kind})" for name, kind in _errors_of(exc))
        return EXIT_NO, f"the settings failed to load at import: {errors}"
    except SettingsError as exc:
        errors = ", ".join(f"{name} ({kind})" for name, kind in _settings_error(exc))
        return EXIT_NO, f"the settings failed to load at import: {errors}"
    except (CommandFailed, PhaseError) as exc:
        return exit_code_for(exc), _one_line(str(exc))
    if as_json:
        stream.write(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        stream.write(report.render())
    stream.flush()
    if not report.valid:
        names = ", ".join(dict.fromkeys(name for name, _ in report.errors))
        return EXIT_NO, f"{report.target} is invalid: {names}"
    if report.fell_back and strict:
        return EXIT_PHASE, (
            f"Phase was unavailable and a fallback ({report.status.source}) served the values "
            "(--strict)"
        )
    return EXIT_OK, None


# --- the Phase context of get, set, delete and export ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Context:
    config: ResolvedConfig
    deadline: float

    @property
    def app_id(self) -> str:
        assert self.config.app_id is not None
        return self.config.app_id

    def where(self, paths: Sequence[str | None] | None = None) -> str:
        shown = self.config.paths if paths is None else paths
        folders = "every folder" if shown is None or None in shown else ", ".join(map(str, shown))
        return f"app {self.app_id}, environment {self.config.env!r}, {folders}"

    def client(self) -> PhaseClient:
        return PhaseClient(
            self.config.token,
            self.config.host,
            timeout=min(10.0, self.deadline),
            deadline=self.deadline,
            verify_ssl=self.config.verify_ssl,
            allow_http=self.config.allow_http,
            max_response_bytes=self.config.max_response_bytes,
        )


def _context(args: argparse.Namespace) -> _Context:
    arguments = {
        "phase_host": args.host or UNSET,
        "phase_app_id": args.app_id or UNSET,
        "phase_env": args.env or UNSET,
        "phase_path": args.path or UNSET,
    }
    config = resolve_config({}, arguments)
    if config.token is None:
        raise PhaseConfigError(
            "No Phase token: set PHASE_SERVICE_TOKEN (or PHASE_TOKEN) to a service account token"
        )
    if not config.app_id:
        raise PhaseConfigError(
            "No Phase app: pass --app-id, set PHASE_APP_ID, or add appId to .phase.json"
        )
    return _Context(config, args.deadline or DEFAULT_DEADLINE)


def _fetch(
    ctx: _Context, client: PhaseClient, *, key: str | None = None, paths: Sequence[str | None]
) -> list[tuple[str | None, Fetched]]:
    deadline = Deadline(ctx.deadline)
    now = datetime.now(UTC)
    fetched = []
    for path in paths:
        secrets = client.list_secrets(
            ctx.app_id,
            ctx.config.env,
            path=path,
            key=key,
            tags=ctx.config.tags or None,
            deadline=deadline,
        )
        if key is not None:
            secrets = [s for s in secrets if s.key.upper() == key.upper()]
        fetched.append((path, Fetched(tuple(secrets), now, 0.0)))
    return fetched


def _paths(ctx: _Context) -> list[str | None]:
    return list(ctx.config.paths) if ctx.config.paths is not None else [None]


def _single_path(ctx: _Context, command: str) -> str:
    paths = ctx.config.paths
    if paths is None or len(paths) != 1:
        raise PhaseConfigError(f"{command} needs one folder: pass --path /folder")
    return paths[0]


def _cmd_get(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key = args.key.strip()
    with ctx.client() as client:
        fetched = _fetch(ctx, client, key=key, paths=_paths(ctx))
    values, _ = merge_secrets(fetched, use_overrides=ctx.config.use_overrides)
    if not values:
        raise CommandFailed(f"{key} not found in {ctx.where()}", EXIT_NO)
    sys.stdout.write(next(iter(values.values())) + "\n")
    return EXIT_OK


def _cmd_set(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key, sep, value = args.assignment.partition("=")
    key = key.strip()
    if not key:
        raise CommandFailed("expected KEY=VALUE (or KEY alone to read the value from stdin)", 2)
    if not sep:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
    path = _single_path(ctx, "set")
    with ctx.client() as client:
        fetched = _fetch(ctx, client, key=key, paths=[path])
        existing = [s for _, entry in fetched for s in entry.secrets if s.path == path]
        if existing:
            update: dict[str, Any] = {"id": existing[0].id, "value": value}
            if args.comment is not None:
                update["comment"] = args.comment
            result = client.update_secrets(ctx.app_id, ctx.config.env, [update])
            version = f" (version {result[0].version})" if result else ""
            print(f"updated {existing[0].key} in {ctx.where([path])}{version}")
        else:
            created = {"key": key, "value": value, "path": path, "comment": args.comment or ""}
            result = client.create_secrets(ctx.app_id, ctx.config.env, [created])
            shown = result[0].key if result else key.upper()
            print(f"created {shown} in {ctx.where([path])}")
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key = args.key.strip()
    with ctx.client() as client:
        fetched = _fetch(ctx, client, key=key, paths=_paths(ctx))
        found = {s.id: s for _, entry in fetched for s in entry.secrets}
        if not found:
            raise CommandFailed(f"{key} not found in {ctx.where()}", EXIT_NO)
        if len(found) > 1:
            folders = ", ".join(sorted(s.path for s in found.values()))
            raise PhaseConfigError(f"{key} is in several folders ({folders}): pass --path /folder")
        secret = next(iter(found.values()))
        client.delete_secrets(ctx.app_id, ctx.config.env, [secret.id])
    print(f"deleted {secret.key} from {ctx.where([secret.path])}")
    return EXIT_OK


# --- export --------------------------------------------------------------------------------------

_DOTENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _dotenv_quote(value: str) -> str:
    """A double-quoted python-dotenv value that reads back as ``value``."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def format_dotenv(values: Mapping[str, str], header: str = "") -> tuple[str, list[str]]:
    r"""``values`` as a ``.env`` file that python-dotenv reads back identically.

    Values are double-quoted with ``\\``, ``\"``, ``\n`` and ``\r`` escaped (a file is
    read with universal newlines, so a raw carriage return would not survive), one per line,
    sorted by key; the result is parsed back to make sure.

    Args:
        values: Phase keys and values.
        header: text put first (comment lines).

    Returns:
        The text, and the keys left out: a value holding ``${`` (python-dotenv would expand
        it), a key that is not a ``.env`` name, or (defensively) anything that does not read
        back identically.
    """
    left_out: list[str] = []
    kept: dict[str, str] = {}
    for key in sorted(values):
        value = values[key]
        if "${" in value or not _DOTENV_NAME.match(key):
            left_out.append(key)
        else:
            kept[key] = value
    while True:
        body = "".join(f"{key}={_dotenv_quote(value)}\n" for key, value in kept.items())
        text = header + body
        parsed = dotenv_values(stream=io.StringIO(text))
        wrong = [key for key, value in kept.items() if parsed.get(key) != value]
        if not wrong:
            return text, left_out
        for key in wrong:
            del kept[key]
            left_out.append(key)


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600, whatever the umask.

    A temporary file in the same folder (created 0600) is written, flushed to disk, then
    renamed over ``path``: readers see the old file or the new one, never a part.

    Args:
        path: the file to write.
        text: its content (UTF-8, newlines as given).

    Raises:
        OSError: the folder does not exist or is not writable (the temporary file is removed).
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError, AttributeError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _cmd_export(args: argparse.Namespace) -> int:
    ctx = _context(args)
    with ctx.client() as client:
        fetched = _fetch(ctx, client, paths=_paths(ctx))
    values, _ = merge_secrets(fetched, use_overrides=ctx.config.use_overrides)
    if args.format == "json":
        text = json.dumps(dict(sorted(values.items())), indent=2, ensure_ascii=False) + "\n"
        left_out: list[str] = []
    else:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        header = f"# Exported by phase-settings from {ctx.where()} at {stamp}\n"
        text, left_out = format_dotenv(values, header)
    for key in left_out:
        reason = (
            "holds '${', which python-dotenv would expand"
            if "${" in values[key]
            else "cannot be written so that python-dotenv reads it back identically"
        )
        print(f"{PROG}: warning: {key} left out: its value {reason}", file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    target = Path(args.output)
    try:
        write_private_file(target, text)
    except OSError as exc:
        raise CommandFailed(
            f"cannot write {target}: {exc.strerror or type(exc).__name__}", EXIT_USAGE
        ) from None
    print(f"wrote {len(values) - len(left_out)} secret(s) to {target} (mode 0600)", file=sys.stderr)
    return EXIT_OK


# --- check ---------------------------------------------------------------------------------------


def _cmd_check(args: argparse.Namespace) -> int:
    overrides = {
        "phase_host": args.host or UNSET,
        "phase_app_id": args.app_id or UNSET,
        "phase_env": args.env or UNSET,
        "phase_path": args.path or UNSET,
        "phase_deadline": args.deadline or UNSET,
    }
    code, error = run_check(
        args.target,
        as_json=args.json,
        show_values=args.show_values,
        strict=args.strict,
        overrides=overrides,
    )
    if error:
        raise CommandFailed(error, code)
    return code


# --- serve-fake ----------------------------------------------------------------------------------


def _cmd_serve_fake(args: argparse.Namespace) -> int:
    from .testing import FakePhase  # only this command needs the fake server

    try:
        seed = json.loads(Path(args.seed).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandFailed(
            f"cannot read the seed {args.seed}: {exc.strerror or type(exc).__name__}", EXIT_USAGE
        ) from None
    except ValueError:
        raise CommandFailed(f"the seed {args.seed} is not valid JSON", EXIT_USAGE) from None
    try:
        fake = FakePhase.from_seed(seed)
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandFailed(f"bad seed {args.seed}: {_one_line(str(exc))}", EXIT_USAGE) from None
    apps = seed.get("apps") if isinstance(seed, dict) else None
    if not apps:
        raise CommandFailed(f"the seed {args.seed} has no apps", EXIT_USAGE)
    first = apps[0]
    app_id = first.get("id") or fake.app_id(first["name"])
    token = fake.add_service_account(envs=None)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with contextlib.ExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            stack.callback(signal.signal, sig, signal.signal(sig, on_signal))
        try:
            url = stack.enter_context(fake.serve(port=args.port))
        except OSError as exc:
            raise CommandFailed(
                f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", EXIT_USAGE
            ) from None
        sys.stdout.write(
            f"export PHASE_HOST={shlex.quote(url)}\n"
            f"export PHASE_APP_ID={shlex.quote(str(app_id))}\n"
            f"export PHASE_SERVICE_TOKEN={shlex.quote(token)}\n"
        )
        sys.stdout.flush()
        print(f"{PROG}: fake Phase serving on {url}; stop with Ctrl-C", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    return EXIT_OK


# --- the parser ----------------------------------------------------------------------------------

DESCRIPTION = """\
Check settings classes against Phase (phase.dev), read and write secrets, export a fallback
.env file, and run a fake Phase server for local development.

The token is read from PHASE_SERVICE_TOKEN (or PHASE_TOKEN), never from a flag."""

COMMANDS_HELP = """\
commands:
  check module:Class [--json] [--show-values] [--strict]
        Load the settings class and show, per field, where its value came from
        (phase <folder>, env, dotenv, secrets, default) with the value masked:
        **** for SecretStr always, and for every value from Phase unless
        --show-values. Phase keys that no field reads are listed as unused.
        When Phase was unavailable and a fallback (last good values or the env
        file) served, the report says so; --strict makes that exit 3.
  export --format dotenv|json [--output FILE]
        Write the environment's secrets (for a fallback file), atomically and
        with mode 0600. A value containing '${' is left out of a .env file
        with a warning naming the key (python-dotenv would expand it).
  get KEY                  print the value of KEY (exit 1 if it does not exist)
  set KEY=VALUE [--path P] [--comment C]
                           create KEY, or update it if it exists (KEY alone
                           reads the value from stdin)
  delete KEY [--path P]    delete KEY (exit 1 if it does not exist)
  serve-fake --seed FILE.json [--port N]
        Serve a fake Phase on 127.0.0.1 seeded from FILE.json, shaped like
        {"apps": [{"name": "demo", "environments": {"Development": {"/": {"KEY": "v"}}}}]},
        print export PHASE_HOST=..., PHASE_APP_ID=... (the first app) and
        PHASE_SERVICE_TOKEN=... lines for a shell, and serve until SIGINT/SIGTERM."""

CONTEXT_HELP = """\
context (check, export, get, set, delete):
  --host, --app-id, --env and --path default to PHASE_HOST, PHASE_APP_ID,
  PHASE_ENV and PHASE_PATH, then to appId/defaultEnv of .phase.json, then to
  https://api.phase.dev, environment Development and folder /. --path takes a
  folder, a comma-separated list (merged in order) or '*' for every folder.
  PHASE_TAGS, PHASE_VERIFY_SSL and PHASE_ALLOW_HTTP apply too. The flags may
  come before or after the command."""

EXIT_HELP = """\
exit codes:
  0  success
  1  the answer is no: the settings are invalid, or the key does not exist
  2  usage or local configuration: bad flags, no or malformed token, no app id,
     a class that cannot be imported, a file that cannot be written
  3  Phase refused or could not be reached (authentication, not found,
     unavailable, unexpected reply), or a fallback served under --strict

Errors are one line on stderr; no output ever holds a token, and values only
where asked for (get, export, check --show-values)."""

EPILOG = "\n\n".join((COMMANDS_HELP, CONTEXT_HELP, EXIT_HELP))


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def _add_context(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    # The flags work before and after the command; in a subcommand they must not overwrite a
    # value given before it, hence SUPPRESS there.
    default: Any = argparse.SUPPRESS if in_subcommand else None
    group = parser.add_argument_group("Phase context")
    group.add_argument("--host", default=default, help="Phase host (PHASE_HOST)")
    group.add_argument("--app-id", default=default, help="the app's UUID (PHASE_APP_ID)")
    group.add_argument("--env", default=default, help="environment name (PHASE_ENV)")
    group.add_argument(
        "--path", default=default, help="folder, /a,/b, or '*' for every folder (PHASE_PATH)"
    )
    group.add_argument(
        "--deadline",
        type=_positive,
        default=default,
        metavar="SECONDS",
        help="give up on Phase after this long, retries included (default 15; for check: "
        "the class's phase_deadline)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``phase-settings``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_context(parser, in_subcommand=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=EXIT_HELP if name == "serve-fake" else f"{CONTEXT_HELP}\n\n{EXIT_HELP}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name != "serve-fake":
            _add_context(sub, in_subcommand=True)
        return sub

    check = command("check", "report where each field of a settings class comes from")
    check.add_argument("target", metavar="module:Class", help="the settings class to check")
    check.add_argument("--json", action="store_true", help="write the report as JSON")
    check.add_argument(
        "--show-values", action="store_true", help="show values from Phase (never SecretStr)"
    )
    check.add_argument(
        "--strict", action="store_true", help="exit 3 when a fallback served instead of Phase"
    )
    check.set_defaults(handler=_cmd_check)

    export = command("export", "write the environment's secrets as .env or JSON (mode 0600)")
    export.add_argument("--format", choices=("dotenv", "json"), default="dotenv")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    export.set_defaults(handler=_cmd_export)

    get = command("get", "print the value of a secret (exit 1 if it does not exist)")
    get.add_argument("key", metavar="KEY")
    get.set_defaults(handler=_cmd_get)

    set_ = command("set", "create a secret, or update it if it exists")
    set_.add_argument(
        "assignment", metavar="KEY=VALUE", help="KEY alone reads the value from stdin"
    )
    set_.add_argument("--comment", help="the secret's comment")
    set_.set_defaults(handler=_cmd_set)

    delete = command("delete", "delete a secret (exit 1 if it does not exist)")
    delete.add_argument("key", metavar="KEY")
    delete.set_defaults(handler=_cmd_delete)

    serve = command("serve-fake", "serve a fake Phase on 127.0.0.1 from a seed file")
    serve.add_argument("--seed", required=True, metavar="FILE.json", help="the apps and secrets")
    serve.add_argument("--port", type=_port, default=0, help="the port (default: a free one)")
    serve.set_defaults(handler=_cmd_serve_fake)
    return parser


class _WarningFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {_one_line(record.getMessage())}"


@contextlib.contextmanager
def _library_warnings_to_stderr() -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_WarningFormatter())
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``phase-settings``; returns the exit code (see the module's docstring).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with _library_warnings_to_stderr():
        try:
            return int(args.handler(args))
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return EXIT_NO
        except (CommandFailed, PhaseError) as exc:
            message = exc.message if isinstance(exc, CommandFailed) else str(exc)
            print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
            return exit_code_for(exc)
        except Exception as exc:
            print(
                f"{PROG}: error: unexpected {type(exc).__name__}; please report it",
                file=sys.stderr,
            )
            return EXIT_PHASE
