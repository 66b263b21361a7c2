"""The sans-IO protocol core shared by the sync and async clients.

It builds each request, reads each reply (:mod:`.replies`; another API's status rules come
with its requests) and each failure the transport has classified (:mod:`.failures`), and
runs the retry plan; the clients only move bytes and sleep. An API operation is a *plan*: a
generator that yields :class:`Request` objects, receives each one's decoded JSON reply, and
returns the result, so an operation that needs several requests is written as one function
too."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from random import Random
from typing import Any, NamedTuple, TypeVar
from typing import Protocol as Interface

from .._errors import PhaseConnectionError, PhaseError, PhaseRateLimitError, PhaseResponseError
from .._version import __version__
from .deadline import Deadline
from .decoding import ACCEPT_ENCODING, BoundedDecoder, DecodeError, TooLarge, refused_encoding
from .failures import Failure, Kind
from .gate import NO_GATE, RequestGate
from .replies import Outcome, failure_error, read_reply, status_error, too_large
from .retry import RetryPolicy, next_wait, parse_retry_after
from .watchdog import WATCHDOG, Watch, Watchdog

__all__ = [
    "Body",
    "CoreOptions",
    "Outcome",
    "Plan",
    "Protocol",
    "ReplyRules",
    "Request",
    "Send",
    "Sleep",
]

logger = logging.getLogger("phase_settings.client")

SLOW_START = 2.0  # seconds a load may wait for Phase before it says so

USER_AGENT = f"phase-settings/{__version__}"
T = TypeVar("T")


class SecretValue(Interface):
    """A value that shows itself only when asked (``pydantic.SecretStr``)."""

    def get_secret_value(self) -> str: ...


class CoreOptions(Interface):
    """What the core reads of a client's options (``ClientOptions`` has all of it)."""

    @property
    def base_url(self) -> str: ...
    @property
    def authorization(self) -> SecretValue: ...
    @property
    def timeout(self) -> float: ...
    @property
    def deadline(self) -> float: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def max_response_bytes(self) -> int: ...


class ReplyRules(Interface):
    """How an API that answers differently from REST reads its error statuses, handed to the
    core with each of its requests (the core itself knows only REST's rules)."""

    def error(
        self, status: int, body: bytes, *, method: str, retry_after: float | None
    ) -> tuple[PhaseError, bool]:
        """The error of a non-2xx, non-3xx reply and whether it may be retried."""
        ...

    def host(self, url: str) -> str:
        """The host a failure message names for a request to ``url``."""
        ...


@dataclass(frozen=True, slots=True)
class Request:
    """One API request, before headers and the base URL are added."""

    method: str
    route: str
    params: Mapping[str, str] | None = None
    body: Any = None  # JSON-serialisable, or None for no body
    url: str | None = None  # an absolute URL instead of the API base + ``route``
    headers: Mapping[str, str] | None = None  # extra headers (they may hold the token)
    rules: ReplyRules | None = None  # another API's status rules (REST's when None)

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
    rules: ReplyRules | None = None  # set for another API than REST: its status rules

    def __repr__(self) -> str:  # headers hold the token
        return f"Send({self.method} {self.url})"


class Sleep(NamedTuple):
    """Wait this many seconds, then report None."""

    seconds: float


class Body:
    """The reply body of one attempt, fed the raw stream: decoded here (gzip or deflate, see
    :mod:`.decoding`) and refused once either the raw or the decoded bytes pass
    ``max_response_bytes``, or when its Content-Encoding is one this library does not read."""

    def __init__(
        self, core: Protocol, status: int, headers: Mapping[str, str], send: Send | None = None
    ):
        self._core = core
        self._send = send
        self.status = status
        self.chunks = bytearray()
        self.retry_after = headers.get("retry-after")
        limit = core.options.max_response_bytes
        declared = headers.get("content-length", "")
        self.too_large = declared.isdigit() and int(declared) > limit
        encoding = headers.get("content-encoding")
        self.refused = refused_encoding(encoding)  # e.g. "br", or "gzip, gzip"
        self.undecodable = False
        self._raw = 0
        self._decoder = BoundedDecoder(encoding, limit)

    def add(self, chunk: bytes) -> bool:
        """Take the next raw ``chunk``; False once there is no point reading on."""
        if self.refused is not None:
            return False
        self._raw += len(chunk)
        limit = self._core.options.max_response_bytes
        try:
            self.chunks += self._decoder.feed(chunk)
        except TooLarge:
            self.too_large = True
        except DecodeError:
            self.undecodable = True
        self.too_large = self.too_large or self._raw > limit
        return not (self.too_large or self.undecodable)

    def add_decoded(self, content: bytes) -> None:
        """Take a whole body that is already decoded (an in-process transport's reply)."""
        self.refused = None
        self._decoder = BoundedDecoder(None, self._core.options.max_response_bytes)
        self.chunks = bytearray(content)
        self.too_large = len(content) > self._core.options.max_response_bytes

    def outcome(self) -> Outcome:
        if not (self.too_large or self.undecodable or self.refused):
            try:
                self.chunks += self._decoder.finish()
            except TooLarge:
                self.too_large = True
            except DecodeError:
                self.undecodable = True
        if self.too_large:
            return self._core.too_large()
        if self.refused is not None or self.undecodable:
            return self._core.undecodable(self.status, self.refused)
        send = self._send
        if send is not None and send.rules is not None:
            return self._core.rules_reply(send, self.status, bytes(self.chunks), self.retry_after)
        return self._core.reply(self.status, bytes(self.chunks), self.retry_after)


class Protocol:
    """Requests, replies and the retry plan for one client's options; ``gate`` sees every
    attempt and every 429 (see :mod:`.gate`)."""

    def __init__(
        self,
        options: CoreOptions,
        clock: Callable[[], float] | None = None,
        rng: Random | None = None,
        gate: RequestGate = NO_GATE,
        watchdog: Watchdog = WATCHDOG,
    ):
        self.options = options
        self.gate = gate
        self.watchdog = watchdog
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
            "Accept-Encoding": ACCEPT_ENCODING,
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
            self.gate.before_request(request.method, url)
            started = time.monotonic()
            watch = self._watch_slow_start(deadline, attempt)
            outcome: Outcome = yield Send(
                request.method,
                url,
                request.params,
                content,
                headers,
                min(self.options.timeout, deadline.remaining()),
                deadline,
                request.rules,
            )
            if watch is not None:
                watch.cancel()
            self._log(request, outcome, attempt, started)
            if isinstance(outcome.error, PhaseRateLimitError):
                self.gate.rate_limited(url, outcome.error.retry_after)
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

    def _watch_slow_start(self, deadline: Deadline, attempt: int) -> Watch | None:
        """While this attempt waits, the watchdog says so at ``SLOW_START`` seconds into the
        load (once per load, like the retry plan's notice)."""
        if deadline.slow_noted or deadline.at - deadline.started <= SLOW_START:
            return None  # said already, or the load gives up first and its outcome says it
        left = SLOW_START - deadline.elapsed()
        if left <= 0:
            return None  # past it already: the retry plan said so before its wait

        def note() -> None:
            if deadline.slow_noted:
                return
            deadline.slow_noted = True
            logger.warning(
                "waiting for Phase at %s: attempt %d of %d, no answer yet after %g s",
                self.options.base_url,
                attempt,
                self.options.max_attempts,
                SLOW_START,
            )

        return self.watchdog.watch(time.monotonic() + left, note)

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

    def undecodable(self, status: int, refused: str | None) -> Outcome:
        """A reply whose body cannot be decoded: an error reply means what its status says
        (a proxy's 502 labelled gzip: the body only carries Phase's error text, so a 5xx is
        still retried and may fall back); a success is a
        :class:`PhaseResponseError` naming the encoding."""
        if not 200 <= status < 300:
            return Outcome(error=status_error(status, None, None, self.options.base_url))
        if refused is not None:
            message = (
                f"Phase's reply is encoded as {refused!r}, which phase-settings does not read "
                f"(it asks for {ACCEPT_ENCODING} only): a proxy in between may have re-encoded it"
            )
        else:
            message = "Phase's reply could not be decoded (bad Content-Encoding)"
        return Outcome(error=PhaseResponseError(message, status=status))

    def too_large(self) -> Outcome:
        return too_large(self.options.max_response_bytes)

    def reply(self, status: int, body: bytes, retry_after: str | None = None) -> Outcome:
        """Classify a complete reply of the REST API: its payload, or the error it means."""
        return read_reply(status, body, retry_after, self.options.base_url)

    def rules_reply(
        self, send: Send, status: int, body: bytes, retry_after: str | None = None
    ) -> Outcome:
        """Classify a reply of an API with its own status rules (``send.rules``): a write's 2xx
        may have no body, and error statuses follow those rules (e.g. a 500 to a write of the
        end-to-end-encrypted API is not retried)."""
        if 200 <= status < 300 and not body:
            return Outcome(payload=None)
        if 200 <= status < 300 or 300 <= status < 400:
            return self.reply(status, body, retry_after)
        assert send.rules is not None
        error, retryable = send.rules.error(
            status, body, method=send.method, retry_after=parse_retry_after(retry_after)
        )
        return Outcome(error=error, retryable=retryable)

    # -- transport failures -------------------------------------------------------------------

    def failure(
        self,
        exc: BaseException,
        failure: Failure,
        deadline: Deadline,
        *,
        status: int | None = None,
        send: Send | None = None,
    ) -> Outcome:
        """The outcome of an attempt that raised ``exc``, which the transport classified as
        ``failure``; ``status`` is the reply's status when the failure came while reading its
        body, ``send`` the attempt (a request to another API names that API's host)."""
        if failure.kind is Kind.DECODING and status is not None and not 200 <= status < 300:
            return self.undecodable(status, None)  # an in-process transport's decoding failed
        base = self.options.base_url
        if send is not None and send.rules is not None:
            base = send.rules.host(send.url)
        error = failure_error(exc, failure, base=base, deadline_expired=deadline.expired)
        return Outcome(error=error, reached_server=failure.reached_server)
