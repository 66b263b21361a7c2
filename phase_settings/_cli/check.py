"""The settings check behind ``phase-settings check``, ``manage.py phase_check`` and
``flask phase check``: load a class once and report where each field came from.

Sources are observed as a load builds them: pydantic-settings' own assembly (the class's
``settings_customise_sources`` given its default sources, ``build_sources``), each Phase source
given the command line's context (``PhaseSettingsSource.with_overrides``) and every source made
to record what it returns; the class then loads through exactly those sources.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsError,
)
from pydantic_settings.sources import DefaultSettingsSource

from .._errors import PhaseError
from .._models import utf8_encodable
from .._settings.assembly import BuiltSources, build_sources
from .._settings.source import PhaseSettingsSource
from .._settings.values import MASK, is_secret, masked
from .check_report import CheckReport, FieldReport
from .context import make_context
from .fieldnames import field_names
from .outcome import (
    EXIT_NO,
    EXIT_OK,
    EXIT_PHASE,
    EXIT_USAGE,
    CommandFailed,
    Writer,
    failure,
    one_line,
    printable,
    settings_errors,
    validation_errors,
)

__all__ = ["check_settings", "load_settings_class", "observe", "run_check"]

_SEEN = "_phase_settings_check_data"


def load_settings_class(target: str) -> type[BaseSettings]:
    """Import ``module:Class`` (the current folder is searched first, as ``python -m`` does).

    Raises:
        CommandFailed: not ``module:Class``, the import failed, or not a settings class (exit 2).
        PhaseError, ValidationError, SettingsError: the module loads its settings at import
            time, and that failed.
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
            f"cannot import {module_name}: {one_line(str(exc))}", EXIT_USAGE
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


def _recording(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
    """``source``, made to keep what it returns (its class gains a recording ``__call__``).

    The subclass has the same name, so error messages and ``settings_sources_data`` name the
    source as before. It is built per check, so no class outlives the check.
    """
    base = type(source)

    def __call__(self: Any) -> dict[str, Any]:
        data: dict[str, Any] = base.__call__(self)
        self.__dict__[_SEEN] = data
        return data

    namespace = {
        "__call__": __call__,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
    }
    with contextlib.suppress(TypeError):  # a source without __dict__ is not recorded
        source.__class__ = type(base.__name__, (base,), namespace)
    return source


def observe(
    built: BuiltSources, overrides: Mapping[str, Any] | None = None
) -> tuple[BuiltSources, list[PydanticBaseSettingsSource]]:
    """The sources of a load (``build_sources``) made to record what they return, and the list
    of those the class's ``settings_customise_sources`` chose.

    Each Phase source is replaced by ``source.with_overrides(**overrides)``; every chosen source
    keeps what it returned (read it with :func:`seen`). Load the class with the first result as
    ``_build_sources``, once.
    """
    sources, init_kwargs = built
    sources_seen: list[PydanticBaseSettingsSource] = []
    result = []
    for source in sources:
        if isinstance(source, PhaseSettingsSource) and overrides:
            source = source.with_overrides(**overrides)
        # pydantic-settings' own additions (the defaults, a command line) are not the class's.
        if isinstance(source, PydanticBaseSettingsSource) and not isinstance(
            source, DefaultSettingsSource | CliSettingsSource
        ):
            source = _recording(source)
            sources_seen.append(source)
        result.append(source)
    return (tuple(result), init_kwargs), sources_seen


def seen(source: PydanticBaseSettingsSource) -> dict[str, Any] | None:
    """What an observed source returned, or None if it was not called."""
    data: dict[str, Any] | None = source.__dict__.get(_SEEN)
    return data


def _label(source: PydanticBaseSettingsSource) -> str:
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


def _data_keys(name: str, info: Any) -> set[str]:
    keys = {name}
    if isinstance(info.alias, str):
        keys.add(info.alias)
    alias = info.validation_alias
    if isinstance(alias, str):
        keys.add(alias)
    elif alias is not None and hasattr(alias, "choices"):
        keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return keys


def _phase_types(overrides: Mapping[str, Any] | None, settings_cls: type[Any]) -> dict[str, str]:
    """Phase key -> Phase type (``secret``, ``sealed``, ``config``); {} when not known."""
    arguments = {f"phase_{k}": v for k, v in (overrides or {}).items()}
    arguments = {k: (",".join(v) if isinstance(v, list) else v) for k, v in arguments.items()}
    arguments = {k: ("*" if v is None else v) for k, v in arguments.items()}
    try:
        ctx = make_context(arguments, 5.0, settings_cls.model_config)
        with ctx.client() as client:
            fetched = ctx.fetch(client, paths=ctx.paths)
    except (PhaseError, OSError, ValueError):
        return {}
    return {s.key.upper(): s.type for _, entry in fetched for s in entry.secrets}


def check_settings(
    target: str | type[BaseSettings],
    *,
    show_values: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> CheckReport:
    """Load a settings class once and report where each field came from.

    Values from Phase are masked (``****``) unless ``show_values`` or the secret's Phase type is
    ``config``; ``SecretStr`` values are always masked.

    Args:
        target: the class, or ``"module:Class"``.
        show_values: show the values that came from Phase (``SecretStr`` stays masked).
        overrides: ``PhaseSettingsSource.with_overrides`` arguments for every Phase source
            (``app_id``, ``env``, ``path``, ``host``): the command line's context flags.

    Raises:
        CommandFailed: the class cannot be imported (exit 2).
        PhaseError: Phase failed and no fallback applied.
    """
    if isinstance(target, str):
        settings_cls, name = load_settings_class(target), target
    else:
        settings_cls, name = target, f"{target.__module__}:{target.__qualname__}"
    # A class that parses its own command line (cli_parse_args) must not parse ours.
    no_cli: dict[str, Any] = (
        {"_cli_parse_args": False} if settings_cls.model_config.get("cli_parse_args") else {}
    )
    report = CheckReport(target=name)
    instance: BaseSettings | None = None
    sources: list[PydanticBaseSettingsSource] = []
    try:
        built, sources = observe(build_sources(settings_cls, no_cli), overrides)
        instance = settings_cls(_build_sources=built)
    except ValidationError as exc:
        report.errors = validation_errors(exc)
    except SettingsError as exc:
        report.errors = settings_errors(exc)

    phase = [s for s in sources if isinstance(s, PhaseSettingsSource)]
    report.phase_sources = len(phase)
    origins: dict[str, str] = {}
    for phase_source in phase:
        result = phase_source.result
        if result is not None:
            origins.update({key.upper(): path for key, path in result.origins.items()})
            report.status = result.status
    if report.status.source != "none":
        with contextlib.suppress(PhaseError):
            args = {f"phase_{k}": v for k, v in (overrides or {}).items() if k in ("app_id", "env")}
            ctx = make_context(args, None, settings_cls.model_config)
            report.app_id, report.env = ctx.app_id, ctx.config.env
    names = field_names(settings_cls)
    types: dict[str, str] | None = None

    for field_name, info in settings_cls.model_fields.items():
        candidates = _data_keys(field_name, info)
        contributors: list[tuple[str, Any]] = []
        for source in sources:
            data = seen(source) or {}
            for key in candidates:
                if key in data:
                    contributors.append((_label(source), data[key]))
                    break
        if contributors:
            label, first_value = contributors[0]
            also: list[str] = []
            if isinstance(first_value, dict):
                for other, other_value in contributors[1:]:
                    if isinstance(other_value, dict) and other not in (label, *also):
                        also.append(other)
        else:
            label, also = ("default" if not info.is_required() else "missing"), []
        from_phase = "phase" in (label, *also)
        keys = [k for k in origins if names.matches(field_name, k)] if from_phase else []
        path = ", ".join(dict.fromkeys(origins[k] for k in keys)) or None
        hide = from_phase and not show_values
        if hide and keys and report.status.source in ("phase", "cache"):
            types = _phase_types(overrides, settings_cls) if types is None else types
            hide = not all(types.get(k) == "config" for k in keys)
        if instance is None:
            value: Any = None
            hidden = hide
        else:
            attribute = getattr(instance, field_name)
            value = MASK if hide else masked(attribute)
            hidden = hide or is_secret(attribute)
        stale = from_phase and report.status.source in ("stale", "snapshot")
        report.fields.append(
            FieldReport(field_name, label, path, value, hidden, tuple(also), stale)
        )

    used = names.used(origins)
    report.unused_keys = sorted((k, p) for k, p in origins.items() if k not in used)
    missing = {name for name, kind in report.errors if kind == "missing"}
    for field_name, wanted in names.names.items():
        if field_name in missing and report.app_id:
            keys_text = " or ".join(dict.fromkeys(w.upper() for w in wanted))
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
    debug: bool = False,
) -> tuple[int, str | None]:
    """Check a settings class, write the report, and say how the command should exit.

    Shared by ``phase-settings check``, ``manage.py phase_check`` and ``flask phase check``.
    An unexpected error is ``internal error: <Type>`` with exit 4 (re-raised when ``debug``).

    Returns:
        The exit code, and the one-line error message to print (None on success).
    """
    stream: Writer = out if out is not None else sys.stdout
    try:
        report = check_settings(target, show_values=show_values, overrides=overrides)
    except (CommandFailed, PhaseError, ValidationError, SettingsError) as exc:
        return failure(exc)
    except Exception as exc:  # a bug: one line, exit 4 (the command line's --debug re-raises)
        if debug:
            raise
        return failure(exc)
    if as_json:
        document = report.to_json()
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if not utf8_encodable(text):  # a lone surrogate: JSON's own escapes keep it exact
            text = json.dumps(document, indent=2)
        stream.write(text + "\n")
    else:
        stream.write(printable(report.render()))
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
