"""Fallback files: a ``.env`` text python-dotenv reads back identically, written atomically
with mode 0600, and ``export --for``: the Phase values one settings class reads, under the
names its env source expects."""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values
from pydantic_settings import BaseSettings

from .._load.result import merge_secrets
from .._models import shown, utf8_encodable
from .context import Context
from .fieldnames import field_names
from .outcome import EXIT_NO, CommandFailed

__all__ = ["ClassExport", "export_for_class", "format_dotenv", "write_private_file"]

_DOTENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _dotenv_quote(value: str) -> str:
    """A double-quoted python-dotenv value that reads back as ``value``."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def format_dotenv(values: Mapping[str, str], header: str = "") -> tuple[str, list[str]]:
    r"""``values`` as a ``.env`` file that python-dotenv reads back identically.

    Values are double-quoted with ``\\``, ``\"``, ``\n`` and ``\r`` escaped (a file is read
    with universal newlines, so a raw carriage return would not survive), one per line, sorted
    by key; the result is parsed back to make sure.

    Returns:
        The text, and the keys left out: a value holding ``${`` (python-dotenv would expand
        it), a key that is not a ``.env`` name, or anything that does not read back identically.
    """
    left_out: list[str] = []
    kept: dict[str, str] = {}
    for key in sorted(values):
        value = values[key]
        if "${" in value or not _DOTENV_NAME.match(key) or not utf8_encodable(value):
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


def left_out_reason(value: str, key: str = "") -> str:
    """Why a value was left out of a ``.env`` file (never the value itself)."""
    if not utf8_encodable(key):
        return "its key is not valid UTF-8 (it holds a lone surrogate)"
    if not utf8_encodable(value):
        return "its value is not valid UTF-8 (it holds a lone surrogate)"
    if "${" in value:
        return "its value holds '${', which python-dotenv would expand"
    return "it cannot be written so that python-dotenv reads it back identically"


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600, whatever the umask.

    A temporary file in the same folder (created 0600) is written, flushed to disk, then
    renamed over ``path``: readers see the old file or the new one, never a part.

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


@dataclass(slots=True)
class ClassExport:
    """What ``export --for`` writes: the text, how many keys, and warnings (keys, no values)."""

    text: str
    count: int
    warnings: list[str] = field(default_factory=list)


def export_for_class(
    settings_cls: type[BaseSettings], ctx: Context, header: str = ""
) -> ClassExport:
    """The ``.env`` text that ``settings_cls`` accepts as its env file during an outage.

    ``ctx`` is resolved from the class's configuration (its ``phase_path``, ``phase_tags``,
    ``phase_use_overrides``). Only the Phase keys some field reads are kept, under their Phase
    names, which the env source maps exactly as the Phase source does (prefix, aliases, nested
    delimiter).

    Raises:
        CommandFailed: a required field's value cannot be written (exit 1).
    """
    with ctx.client() as client:
        fetched = ctx.fetch(client, paths=ctx.paths)
    use_overrides = ctx.config.use_overrides
    values, _ = merge_secrets(fetched, use_overrides=use_overrides)
    names = field_names(settings_cls)
    used = {key: value for key, value in values.items() if names.fields_of(key)}
    text, left_out = format_dotenv(used, header)
    warnings: list[str] = []
    overridden = sorted(
        {
            s.key
            for _, entry in fetched
            for s in entry.secrets
            if use_overrides and s.key in used and s.override is not None and s.override.is_active
        }
    )
    if overridden:
        warnings.append(
            f"{', '.join(overridden)}: personal override value(s) written, not the "
            f"environment's shared value(s) (set phase_use_overrides=False to export those)"
        )
    blocked: list[str] = []
    for key in left_out:
        fields = names.fields_of(key)
        required = [f for f in fields if settings_cls.model_fields[f].is_required()]
        if required:
            blocked.append(f"{shown(key)} (read by required field {', '.join(required)})")
        warnings.append(f"{shown(key)} left out: {left_out_reason(used[key], key)}")
    if blocked:
        raise CommandFailed(
            f"cannot write a fallback file that {settings_cls.__name__} accepts: "
            f"{'; '.join(blocked)} cannot be written to .env; no file written",
            EXIT_NO,
        )
    present = {f for key in used if key not in left_out for f in names.fields_of(key)}
    absent = [
        name
        for name, info in settings_cls.model_fields.items()
        if info.is_required() and name not in present
    ]
    if absent:
        warnings.append(
            f"{', '.join(absent)}: required but not in Phase ({ctx.where()}): the file does not "
            "provide it"
        )
    return ClassExport(text, len(used) - len(left_out), warnings)
