"""How the protocol core reads what came back: a reply's status and body, or a failed attempt.

Pure functions of plain values (no options object, no transport): a reply becomes an
:class:`Outcome` (its payload, or the :class:`PhaseError` it means), a classified transport
:class:`~._core.failures.Failure` becomes the error a user reads.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .._errors import (
    PhaseAuthError,
    PhaseConfigError,
    PhaseConflictError,
    PhaseConnectionError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseRequestError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSSEDisabledError,
    PhaseTLSError,
    sanitize_server_text,
)
from .failures import Failure, Kind
from .retry import parse_retry_after

__all__ = ["Outcome", "failure_error", "read_reply", "status_error", "too_large"]


class Outcome(NamedTuple):
    """What one attempt ended with: a payload, or an error plus whether it reached the server."""

    payload: Any = None
    error: PhaseError | None = None
    reached_server: bool = True
    retryable: bool = True  # False: never retried, whatever the retry policy says


def too_large(max_response_bytes: int) -> Outcome:
    """The outcome of a reply refused for its size."""
    return Outcome(
        error=PhaseResponseError(
            f"Phase's reply is larger than max_response_bytes "
            f"({max_response_bytes} bytes); raise phase_max_response_bytes if "
            "the environment really is that large"
        )
    )


def read_reply(status: int, body: bytes, retry_after: str | None, base: str) -> Outcome:
    """Classify a complete reply: its payload, or the error it means."""
    payload: Any = None
    decoded = False
    if body:
        try:
            payload = json.loads(body)
            decoded = True
        except (ValueError, RecursionError):
            payload = None
    text = sanitize_server_text(payload.get("error") if isinstance(payload, dict) else None)
    if 200 <= status < 300:
        if not decoded:
            return Outcome(
                error=PhaseResponseError(
                    f"Phase answered {status} but the body is not JSON. Is PHASE_HOST "
                    f"({base}) a Phase API?",
                    status=status,
                )
            )
        if isinstance(payload, dict) and "error" in payload and len(payload) == 1:
            return Outcome(
                error=PhaseResponseError(
                    f"Phase answered {status} with an error body", status=status, error=text
                )
            )
        return Outcome(payload=payload)
    return Outcome(error=status_error(status, text, retry_after, base))


def status_error(status: int, text: str | None, retry_after: str | None, base: str) -> PhaseError:
    """The error a non-2xx status of the REST API means (``base``: the API base, for hints)."""
    if 300 <= status < 400:
        return PhaseResponseError(
            f"Phase answered with a redirect ({status}); redirects are not followed so the "
            f"token never goes elsewhere. Check PHASE_HOST ({base})",
            status=status,
        )
    if status == 429:
        seconds = parse_retry_after(retry_after)
        hint = f" (Retry-After: {seconds:g} s)" if seconds is not None else ""
        return PhaseRateLimitError(
            f"Phase rate limit reached{hint}; the account's requests per minute are used",
            error=text,
            retry_after=seconds,
        )
    if status in (400, 403) and text and text.startswith("SSE is not enabled"):
        return PhaseSSEDisabledError(
            "This Phase app is end-to-end encrypted, so the REST API cannot serve it. Read "
            "it over the end-to-end-encrypted API with a pss_ token that carries key parts "
            "(pss_service:v2:… or pss_user:v1:…; the console's REST form 'ServiceAccount "
            "<token>' has none) and phase_mode 'auto' or 'e2ee', or enable server-side "
            "encryption (SSE) in the app's settings",
            status=status,
            error=text,
        )
    if status in (401, 403):
        return PhaseAuthError(
            f"Phase refused the token ({status}): check that PHASE_SERVICE_TOKEN is valid, "
            "not expired, and has access to this app and environment",
            status=status,
            error=text,
        )
    if status == 404 and text is None:
        return PhaseResponseError(
            f"Got 404 without Phase's JSON error body: PHASE_HOST ({base}) does not look "
            "like a Phase API",
            status=status,
        )
    if status == 404:
        return PhaseNotFoundError(
            "Phase could not find it: check the app id and environment name",
            status=status,
            error=text,
        )
    if status == 409:
        return PhaseConflictError(
            "Phase reported a conflict (a secret with this key exists at this path?)",
            status=status,
            error=text,
        )
    if 400 <= status < 500:
        return PhaseRequestError(
            f"Phase rejected the request ({status})", status=status, error=text
        )
    if 500 <= status < 600:
        return PhaseServerError(f"Phase had a server error ({status})", status=status, error=text)
    return PhaseResponseError(f"Phase answered with an unexpected status ({status})", status=status)


def failure_error(
    exc: BaseException, failure: Failure, *, base: str, deadline_expired: bool
) -> PhaseError:
    """The error of an attempt that raised ``exc``, classified as ``failure``; ``base`` is the
    host the request went to (named in the message; the exception's text never is)."""
    if failure.kind is Kind.TLS:
        return PhaseTLSError(
            f"TLS failed talking to {base}: the certificate could not be verified or the "
            "TLS handshake was refused. Give a CA bundle with PHASE_VERIFY_SSL=/path/to/ca.pem"
        )
    if failure.kind is Kind.DECODING:
        return PhaseResponseError("Phase's reply could not be decoded (bad Content-Encoding)")
    if failure.kind is Kind.BAD_URL:
        return PhaseConfigError(f"PHASE_HOST is not a usable URL: {type(exc).__name__}")
    if failure.kind is Kind.NOT_HTTP:
        return PhaseResponseError(
            f"The server at {base} did not answer in HTTP: is PHASE_HOST (and its "
            "http/https scheme) right?"
        )
    reason = (
        "the load's deadline passed"
        if deadline_expired
        else f"timed out ({type(exc).__name__})"
        if failure.timeout
        else type(exc).__name__
    )
    if failure.cause is not None:  # the transport named it: said first, the deadline after
        reason = f"{failure.cause} ({reason})" if deadline_expired else failure.cause
    error = PhaseConnectionError(f"Could not reach Phase at {base}: {reason}")
    error.unknown_host = failure.unknown_host
    return error
