"""The error hierarchy: every failure the public API raises is a :class:`PhaseError`.

Messages say what to fix and never carry a token or a secret value: the only text taken from
a reply is Phase's own ``error`` field, cut to 200 characters with control characters removed.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

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
    "ascrubbed",
    "fresh",
    "sanitize_server_text",
    "scrubbed",
    "without_tracebacks",
]

_MAX_SERVER_TEXT = 200
_CONTROL = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)])  # for str.translate: remove


def sanitize_server_text(text: object) -> str | None:
    """Return Phase's ``error`` text fit for a message: a string, no control characters, <= 200."""
    if not isinstance(text, str):
        return None
    cleaned = text.translate(_CONTROL).strip()
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
    """Connection refused or reset, a timeout, or the load's deadline passed.

    Attributes:
        unknown_host: the host name the resolver said does not exist (EAI_NONAME), or None.
    """

    unknown_host: str | None = None


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


# --- keeping secrets out of tracebacks --------------------------------------------------------
#
# Error trackers (Sentry, Rollbar, ``TracebackException(capture_locals=True)``) record the local
# variables of every frame an exception passed through. Frames of ours hold tokens (arguments,
# the environment) and values (a decoded reply, a request body). The public entry points that
# see them re-raise their errors from a frame that has dropped its arguments, with a fresh
# traceback, so no such frame is recorded.

_P = ParamSpec("_P")
_R = TypeVar("_R")

_E = TypeVar("_E", bound=BaseException)

_SCRUBBED: tuple[type[BaseException], ...] = (PhaseError,)


def scrubbed(
    *kinds: type[BaseException],
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Re-raise ``PhaseError`` (and ``kinds``) from a frame without the arguments or locals."""
    catch = _SCRUBBED + kinds

    def decorate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(fn)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return fn(*args, **kwargs)
            except catch as exc:
                error = exc
            del args, kwargs
            raise without_tracebacks(error)

        return wrapper

    return decorate


def ascrubbed(
    fn: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """:func:`scrubbed` for coroutine functions."""

    @functools.wraps(fn)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return await fn(*args, **kwargs)
        except PhaseError as exc:
            error = exc
        del args, kwargs
        raise without_tracebacks(error)

    return wrapper


def without_tracebacks(error: _E) -> _E:
    """``error`` with no traceback, nor any on the exceptions it was raised from (whose frames
    hold the value being parsed when a decode failed)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return error


def fresh(error: _E) -> _E:
    """A copy of ``error`` without its traceback: an error served again (single-flight waiters,
    the outage backoff) must not grow one traceback with every load's frames."""
    duplicate = copy.copy(error)
    duplicate.__traceback__ = None
    return duplicate
