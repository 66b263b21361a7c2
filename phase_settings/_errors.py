"""The error hierarchy: every failure the public API raises is a :class:`PhaseError`.

Messages say what to fix and never carry a token or a secret value: the only text taken from
a reply is Phase's own ``error`` field, cut to 200 characters with control characters removed.
"""

from __future__ import annotations

import re

__all__ = [
    "PhaseAuthError",
    "PhaseConfigError",
    "PhaseConflictError",
    "PhaseConnectionError",
    "PhaseError",
    "PhaseNotFoundError",
    "PhaseRateLimitError",
    "PhaseRequestError",
    "PhaseResponseError",
    "PhaseSSEDisabledError",
    "PhaseServerError",
    "PhaseTLSError",
    "PhaseUnavailableError",
    "sanitize_server_text",
]

_MAX_SERVER_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sanitize_server_text(text: object) -> str | None:
    """Return Phase's ``error`` text fit for a message: a string, no control characters, <= 200."""
    if not isinstance(text, str):
        return None
    cleaned = _CONTROL.sub("", text).strip()
    if len(cleaned) > _MAX_SERVER_TEXT:
        cleaned = cleaned[: _MAX_SERVER_TEXT - 1] + "…"
    return cleaned


class PhaseError(Exception):
    """Base of every error raised by phase-settings.

    Attributes:
        status: the HTTP status of the reply that caused it, or None.
        error: Phase's own ``error`` text (sanitised, at most 200 characters), or None.
    """

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = sanitize_server_text(error) if error is not None else None

    def __str__(self) -> str:
        if self.error and self.error not in self.message:
            return f"{self.message} (Phase said: {self.error})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only state through pickling (multiprocessing, pytest-xdist).
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[PhaseError], message: str, state: dict[str, object]) -> PhaseError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class PhaseConfigError(PhaseError):
    """Bad or missing configuration: a malformed token, a refused ``http://`` host, no app id."""


class PhaseAuthError(PhaseError):
    """Phase refused the credentials (401 or 403)."""


class PhaseNotFoundError(PhaseError):
    """Phase answered 404 with its JSON error body: unknown app, environment or secret."""


class PhaseSSEDisabledError(PhaseError):
    """The app is end-to-end encrypted; its secrets are not served by the REST API."""


class PhaseConflictError(PhaseError):
    """409: for example a secret with the same key already exists at that path."""


class PhaseRequestError(PhaseError):
    """Any other 4xx: Phase rejected the request as sent."""


class PhaseResponseError(PhaseError):
    """The reply is not Phase's contract: a redirect, HTML, malformed JSON, or too large."""


class PhaseTLSError(PhaseError):
    """Certificate or TLS failure. Never retried, never served from a fallback."""


class PhaseUnavailableError(PhaseError):
    """Phase could not answer now. The only family of errors that may fall back."""


class PhaseConnectionError(PhaseUnavailableError):
    """Connection refused or reset, a timeout, or the load's deadline passed."""


class PhaseServerError(PhaseUnavailableError):
    """Phase answered with a 5xx status."""


class PhaseRateLimitError(PhaseUnavailableError):
    """Phase answered 429.

    Attributes:
        retry_after: the server's ``Retry-After`` in seconds (uncapped), or None when absent
            or unparsable.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        error: str | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status=status, error=error)
        self.retry_after = retry_after
