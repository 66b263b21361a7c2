"""Exit codes and one-line error messages shared by the command line and the framework checks.

Exit codes: 0 success; 1 the answer is no (settings invalid, a key that does not exist); 2 usage
or local configuration (bad flags, :class:`PhaseConfigError`, a class that cannot be imported);
3 Phase refused or could not be reached (any other :class:`PhaseError`); 4 an unexpected
internal error (a bug to report). No message holds a token or a secret value.
"""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .._errors import PhaseConfigError, PhaseError

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_NO",
    "EXIT_OK",
    "EXIT_PHASE",
    "EXIT_USAGE",
    "CommandFailed",
    "Writer",
    "exit_code_for",
    "failure",
    "one_line",
    "printable",
    "settings_errors",
    "validation_errors",
]

EXIT_OK = 0
EXIT_NO = 1
EXIT_USAGE = 2
EXIT_PHASE = 3
EXIT_INTERNAL = 4


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


def printable(text: str) -> str:
    """``text``, with backslash escapes for what UTF-8 cannot encode (lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) as one space."""
    return " ".join(text.split())


def exit_code_for(exc: BaseException) -> int:
    """The exit code of an error: 2 for local configuration, 1 for invalid settings, else 3."""
    if isinstance(exc, CommandFailed):
        return exc.code
    if isinstance(exc, PhaseConfigError):
        return EXIT_USAGE
    if isinstance(exc, ValidationError | SettingsError):
        return EXIT_NO
    if isinstance(exc, PhaseError):
        return EXIT_PHASE
    return EXIT_INTERNAL


def validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """``(location, error type)`` of each error: no input, no value."""
    return [
        (".".join(str(part) for part in err["loc"]) or "(model)", err["type"])
        for err in exc.errors(include_input=False, include_url=False)
    ]


_SETTINGS_ERROR = re.compile(r'error parsing value for field "([^"]+)" from source "([^"]+)"')


def settings_errors(exc: SettingsError) -> list[tuple[str, str]]:
    """``(field, error)`` of a pydantic-settings decoding error, without the value."""
    match = _SETTINGS_ERROR.search(str(exc))
    if match is None:
        return [("(settings)", "settings_error")]
    return [(match.group(1), f"value_not_decodable (from {match.group(2)})")]


def failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and one-line message for an error raised while loading settings.

    A ``ValidationError`` or ``SettingsError`` names the fields and error types, never a value;
    a :class:`PhaseError` or :class:`CommandFailed` gives its own message (which never holds a
    token or a value); anything else is an internal error named by its type only.
    """
    if isinstance(exc, ValidationError | SettingsError):
        pairs = validation_errors(exc) if isinstance(exc, ValidationError) else settings_errors(exc)
        errors = ", ".join(f"{name} ({kind})" for name, kind in pairs)
        return EXIT_NO, f"the settings failed to load: {errors}"
    if isinstance(exc, CommandFailed):
        return exc.code, one_line(exc.message)
    if isinstance(exc, PhaseError):
        return exit_code_for(exc), one_line(str(exc))
    return EXIT_INTERNAL, f"internal error: {type(exc).__name__}"
