"""The sans-IO protocol core shared by the sync and async clients.

It builds each request, classifies each reply and each transport failure, and runs the retry
plan; the clients only move bytes and sleep. An API operation is a *plan*: a generator that
yields :class:`Request` objects, receives each one's decoded JSON reply, and returns the
result, so an operation that needs several requests is written as one function too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from random import Random
from typing import Any, NamedTuple, TypeVar

from .._client.options import ClientOptions
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
from .._transport.failures import Kind, Stage, classify_failure
from .._version import __version__
from .deadline import Deadline
from .retry import RetryPolicy, next_wait, parse_retry_after

__all__ = ["Outcome", "Plan", "Protocol", "Request", "Send", "Sleep"]

logger = logging.getLogger("phase_settings.client")

SLOW_START = 2.0  # seconds a load may wait for Phase before it says so

USER_AGENT = f"phase-settings/{__version__}"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Request:
    """One API request, before headers and the base URL are added."""

    method: str
    route: str
    params: Mapping[str, str] | None = None
    body: Any = None  # JSON-serialisable, or None for no body
    url: str | None = None  # an absolute URL instead of the API base + ``route``
    headers: Mapping[str, str] | None = None  # extra headers (they may hold the token)
    endpoint: str | None = None  # an end-to-end-encrypted API endpoint: "tokens" or "secrets"

    def __repr__(self) -> str:  # headers hold the token
        return f"Request({self.method} {self.url or self.route})"


Plan = Generator[Request, Any, T]


class Send(NamedTuple):
    """Send this request and report its :class:`Outcome`."""

    method: str
    url: str
    params: Mapping[str, str] | None
    content: bytes | None
    headers: dict[str, str]
    timeout: float
    deadline: Deadline
    endpoint: str | None = None  # set for the end-to-end-encrypted API: its status rules

    def __repr__(self) -> str:  # headers hold the token
        return f"Send({self.method} {self.url})"


class Sleep(NamedTuple):
    """Wait this many seconds, then report None."""

    seconds: float


class Outcome(NamedTuple):
    """What one attempt ended with: a payload, or an error plus whether it reached the server."""

    payload: Any = None
    error: PhaseError | None = None
    reached_server: bool = True
    retryable: bool = True  # False: never retried, whatever the retry policy says


class Body:
    """The reply body of one attempt, refused once it passes ``max_response_bytes``."""

    def __init__(
        self, core: Protocol, status: int, headers: Mapping[str, str], send: Send | None = None
    ):
        self._core = core
        self._send = send
        self.status = status
        self.chunks = bytearray()
        self.retry_after = headers.get("retry-after")
        declared = headers.get("content-length", "")
        self.too_large = declared.isdigit() and int(declared) > core.options.max_response_bytes

    def add(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once the body is over the limit (stop reading)."""
        self.chunks += chunk
        self.too_large = len(self.chunks) > self._core.options.max_response_bytes
        return not self.too_large

    def outcome(self) -> Outcome:
        if self.too_large:
            return self._core.too_large()
        send = self._send
        if send is not None and send.endpoint is not None:
            return self._core.e2ee_reply(send, self.status, bytes(self.chunks), self.retry_after)
        return self._core.reply(self.status, bytes(self.chunks), self.retry_after)


class Protocol:
    """Requests, replies and the retry plan for one client's options."""

    def __init__(
        self,
        options: ClientOptions,
        clock: Callable[[], float] | None = None,
        rng: Random | None = None,
    ):
        self.options = options
        self.clock = clock or time.monotonic
        self.policy = RetryPolicy(max_attempts=options.max_attempts, rng=rng or Random())

    def deadline(self, deadline: Deadline | float | None) -> Deadline:
        if isinstance(deadline, Deadline):
            return deadline
        return Deadline(self.options.deadline if deadline is None else deadline, self.clock)

    def run(self, plan: Plan[T], deadline: Deadline) -> Generator[Send | Sleep, Any, T]:
        """Drive ``plan``: each request it yields is sent, retried and waited for as the retry
        policy says; the driver performs the :class:`Send` and :class:`Sleep` steps."""
        try:
            request = next(plan)
            while True:
                try:
                    payload = yield from self._exchange(request, deadline)
                except PhaseError as error:
                    # The plan sees the failure where it asked: it may recover (a reference
                    # it cannot read stays literal) or let it propagate.
                    request = plan.throw(error)
                else:
                    request = plan.send(payload)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _exchange(self, request: Request, deadline: Deadline) -> Generator[Send | Sleep, Any, Any]:
        content = None if request.body is None else json.dumps(request.body).encode()
        headers = {
            "Authorization": self.options.authorization.get_secret_value(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        if request.headers:
            headers.update(request.headers)
        url = request.url or self.options.base_url + request.route
        attempt = 0
        while True:
            attempt += 1
            if deadline.expired:
                raise PhaseConnectionError(
                    f"Could not reach Phase at {self.options.base_url}: the load's deadline passed"
                )
            started = time.monotonic()
            outcome: Outcome = yield Send(
                request.method,
                url,
                request.params,
                content,
                headers,
                min(self.options.timeout, deadline.remaining()),
                deadline,
                request.endpoint,
            )
            self._log(request, outcome, attempt, started)
            if outcome.error is None:
                return outcome.payload
            if not outcome.retryable:
                raise outcome.error
            wait = next_wait(
                outcome.error,
                attempt=attempt,
                method=request.method,
                reached_server=outcome.reached_server,
                deadline=deadline,
                policy=self.policy,
            )
            if wait is None:
                raise outcome.error
            self._note_slow_start(deadline, attempt + 1, wait, outcome.error)
            yield Sleep(wait)

    def _note_slow_start(
        self, deadline: Deadline, attempt: int, wait: float, error: PhaseError
    ) -> None:
        """One WARNING per load once it will have waited ``SLOW_START`` seconds: a slow start
        is never silent, and says what it waits for (never a value or the token)."""
        if deadline.slow_noted or deadline.elapsed() + wait < SLOW_START:
            return
        deadline.slow_noted = True
        if isinstance(error, PhaseRateLimitError) and error.retry_after is not None:
            why = f"Retry-After {error.retry_after:g} s"
        else:
            why = f"after {type(error).__name__}, retrying in {wait:.1f} s"
        logger.warning(
            "waiting for Phase at %s: attempt %d of %d, %s",
            self.options.base_url,
            attempt,
            self.options.max_attempts,
            why,
        )

    def _log(self, request: Request, outcome: Outcome, attempt: int, started: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            error = outcome.error
            logger.debug(
                "%s %s -> %s in %.0f ms (attempt %d/%d)",
                request.method,
                request.route or request.url,
                200 if error is None else error.status or type(error).__name__,
                (time.monotonic() - started) * 1000,
                attempt,
                self.options.max_attempts,
            )

    # -- replies ------------------------------------------------------------------------------

    def body(self, status: int, headers: Mapping[str, str], send: Send | None = None) -> Body:
        return Body(self, status, headers, send)

    def too_large(self) -> Outcome:
        return Outcome(
            error=PhaseResponseError(
                f"Phase's reply is larger than max_response_bytes "
                f"({self.options.max_response_bytes} bytes); raise phase_max_response_bytes if "
                "the environment really is that large"
            )
        )

    def reply(self, status: int, body: bytes, retry_after: str | None = None) -> Outcome:
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
        base = self.options.base_url
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
        return Outcome(error=self._status_error(status, text, retry_after))

    def e2ee_reply(
        self, send: Send, status: int, body: bytes, retry_after: str | None = None
    ) -> Outcome:
        """Classify a reply of the end-to-end-encrypted API: a write's 2xx has no body, and
        error statuses follow that API's rules (a 500 to a write is not retried)."""
        if 200 <= status < 300 and not body:
            return Outcome(payload=None)
        if 200 <= status < 300 or 300 <= status < 400:
            return self.reply(status, body, retry_after)
        from .._e2ee.api import error_for_status

        assert send.endpoint is not None
        error, retryable = error_for_status(
            status,
            body,
            endpoint=send.endpoint,
            method=send.method,
            retry_after=parse_retry_after(retry_after),
        )
        return Outcome(error=error, retryable=retryable)

    def _status_error(self, status: int, text: str | None, retry_after: str | None) -> PhaseError:
        base = self.options.base_url
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
            return PhaseServerError(
                f"Phase had a server error ({status})", status=status, error=text
            )
        return PhaseResponseError(
            f"Phase answered with an unexpected status ({status})", status=status
        )

    # -- transport failures -------------------------------------------------------------------

    def failure(
        self,
        exc: BaseException,
        stage: Stage,
        deadline: Deadline,
        *,
        status: int | None = None,
        send: Send | None = None,
    ) -> Outcome:
        """The outcome of an attempt that raised ``exc`` (see :func:`classify_failure`);
        ``status`` is the reply's status when the failure came while reading its body, ``send``
        the attempt (a request to the end-to-end-encrypted API names that API's host)."""
        if isinstance(exc, PhaseConfigError):
            return Outcome(error=exc, reached_server=False)
        failure = classify_failure(exc, stage)
        if failure.kind is Kind.DECODING and status is not None and not 200 <= status < 300:
            # An error reply (a proxy's 502 labelled gzip) means what its status says: the
            # body only carries Phase's error text, so a 5xx is still retried and may fall back.
            return Outcome(error=self._status_error(status, None, None))
        base = self.options.base_url
        if send is not None and send.endpoint is not None:
            base = send.url.split("/service/", 1)[0]  # Phase Cloud: the console's host
        error: PhaseError
        if failure.kind is Kind.TLS:
            error = PhaseTLSError(
                f"TLS failed talking to {base}: the certificate could not be verified or the "
                "TLS handshake was refused. Give a CA bundle with PHASE_VERIFY_SSL=/path/to/ca.pem"
            )
        elif failure.kind is Kind.DECODING:
            error = PhaseResponseError("Phase's reply could not be decoded (bad Content-Encoding)")
        elif failure.kind is Kind.BAD_URL:
            error = PhaseConfigError(f"PHASE_HOST is not a usable URL: {type(exc).__name__}")
        elif failure.kind is Kind.NOT_HTTP:
            error = PhaseResponseError(
                f"The server at {base} did not answer in HTTP: is PHASE_HOST (and its "
                "http/https scheme) right?"
            )
        else:
            reason = (
                "the load's deadline passed"
                if deadline.expired
                else f"timed out ({type(exc).__name__})"
                if failure.timeout
                else type(exc).__name__
            )
            error = PhaseConnectionError(f"Could not reach Phase at {base}: {reason}")
        return Outcome(error=error, reached_server=failure.reached_server)
