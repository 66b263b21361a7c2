"""``PhaseClient`` and ``AsyncPhaseClient``: Phase's public REST API with retries under a deadline.

The retry policy lives here (DESIGN §4): 429 waits ``Retry-After`` (capped), 5xx and transport
failures back off with full jitter, other 4xx and TLS failures are final, POST is retried only
when the request never reached the server. No wait is started that would pass the deadline,
and every socket operation is clamped to the time left, so a call never outlives it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from random import Random
from types import TracebackType
from typing import Any, Self

import httpx

from . import __version__
from ._errors import (
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
    ascrubbed,
    sanitize_server_text,
    scrubbed,
)
from ._models import (
    PhaseApp,
    PhaseEnvironment,
    Secret,
    parse_apps,
    parse_environments,
    parse_secrets,
)
from ._retry import Deadline, RetryPolicy, parse_retry_after
from ._transport import (
    api_base,
    auth_header,
    build_async_transport,
    build_transport,
    deadline_scope,
    token_fingerprint,
    token_kind,
)

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AsyncPhaseClient", "PhaseClient"]

logger = logging.getLogger("phase_settings")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
USER_AGENT = f"phase-settings/{__version__}"
_RETRIED_5XX = frozenset({500, 502, 503, 504})
_SECRETS = "/v1/secrets/"


def _tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError | ssl.CertificateError):
            return True
        current = current.__cause__ or current.__context__
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSL:" in text


def _transient_protocol_error(exc: Exception) -> bool:
    """A connection that closed early (a reset, a keep-alive race) rather than a peer that
    does not speak HTTP."""
    text = str(exc).lower()
    return "disconnected" in text or "peer closed" in text or "incomplete" in text


class _Outcome:
    """What one attempt ended with: a payload, or an error plus whether it reached the server."""

    __slots__ = ("error", "payload", "reached_server")

    def __init__(
        self, payload: Any = None, error: PhaseError | None = None, reached_server: bool = True
    ):
        self.payload = payload
        self.error = error
        self.reached_server = reached_server


class _BaseClient:
    """State and decisions shared by the sync and async clients; no I/O happens here."""

    def __init__(
        self,
        token: Any = None,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        deadline: float = 15.0,
        max_attempts: int = 3,
        verify_ssl: bool | str = True,
        allow_http: bool = False,
        transport: Any = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] | None = None,
        rng: Random | None = None,
    ):
        if token is None:
            token = os.environ.get("PHASE_SERVICE_TOKEN") or os.environ.get("PHASE_TOKEN")
        if not token:
            raise PhaseConfigError(
                "No Phase token: pass token= or set PHASE_SERVICE_TOKEN "
                "(a pss_service:v2:… service account token)"
            )
        if max_attempts < 1:
            raise PhaseConfigError("max_attempts must be at least 1")
        if timeout <= 0 or deadline <= 0:
            raise PhaseConfigError("timeout and deadline must be positive numbers of seconds")
        self._authorization = auth_header(token)
        if host is None:
            host = os.environ.get("PHASE_HOST") or None
        self.base_url = api_base(host, allow_http=allow_http)
        self.timeout = float(timeout)
        self.deadline = float(deadline)
        self.max_attempts = int(max_attempts)
        self.verify_ssl = verify_ssl
        self.max_response_bytes = int(max_response_bytes)
        self._transport = transport
        self._clock = clock or time.monotonic
        self._rng = rng or Random()
        self.token_type = token_kind(self._authorization)
        self.token_fingerprint = token_fingerprint(self._authorization)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"token=<{self.token_type} {self.token_fingerprint[:8]}…>)"
        )

    # -- request building -------------------------------------------------------------------

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {
            "Authorization": self._authorization,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _new_deadline(self, deadline: Deadline | float | None) -> Deadline:
        if isinstance(deadline, Deadline):
            return deadline
        return Deadline(self.deadline if deadline is None else deadline, self._clock)

    @staticmethod
    def _secret_params(
        app_id: str,
        env: str,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> dict[str, str]:
        if not app_id or not isinstance(app_id, str):
            raise PhaseConfigError("app_id is required: the UUID of a Phase app")
        if not env or not isinstance(env, str):
            raise PhaseConfigError("env is required: the name of a Phase environment")
        params = {"app_id": app_id, "env": env}
        if path is not None:
            params["path"] = path
        if key is not None:
            params["key"] = key
        if tags:
            params["tags"] = tags if isinstance(tags, str) else ",".join(tags)
        return params

    @staticmethod
    def _create_body(secrets: Iterable[Mapping[str, Any]], *, need_id: bool) -> dict[str, Any]:
        items = []
        for secret in secrets:
            if not isinstance(secret, Mapping):
                raise PhaseConfigError("each secret must be a mapping such as {'key': …}")
            item = dict(secret)
            if need_id and not item.get("id"):
                raise PhaseConfigError("each secret to update needs the 'id' Phase gave it")
            if not need_id and not item.get("key"):
                raise PhaseConfigError("each secret to create needs a non-empty 'key'")
            override = item.get("override")
            if isinstance(override, Mapping) and "is_active" in override:
                override = dict(override)
                override["isActive"] = override.pop("is_active")
                item["override"] = override
            if "tags" in item and not isinstance(item["tags"], list):
                item["tags"] = list(item["tags"])
            items.append(item)
        return {"secrets": items}

    # -- reply classification -----------------------------------------------------------------

    def _classify(self, response: httpx.Response, body: bytes) -> _Outcome:
        status = response.status_code
        payload: Any = None
        decoded = False
        if body:
            try:
                payload = json.loads(body)
                decoded = True
            except (ValueError, RecursionError):
                payload = None
        error_text = payload.get("error") if isinstance(payload, dict) else None
        text = sanitize_server_text(error_text)
        if 200 <= status < 300:
            if not decoded:
                return _Outcome(
                    error=PhaseResponseError(
                        f"Phase answered {status} but the body is not JSON. Is PHASE_HOST "
                        f"({self.base_url}) a Phase API?",
                        status=status,
                    )
                )
            if isinstance(payload, dict) and "error" in payload and len(payload) == 1:
                return _Outcome(
                    error=PhaseResponseError(
                        f"Phase answered {status} with an error body", status=status, error=text
                    )
                )
            return _Outcome(payload=payload)
        if 300 <= status < 400:
            return _Outcome(
                error=PhaseResponseError(
                    f"Phase answered with a redirect ({status}); redirects are not followed so the "
                    f"token never goes elsewhere. Check PHASE_HOST ({self.base_url})",
                    status=status,
                )
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            hint = f" (Retry-After: {retry_after:g} s)" if retry_after is not None else ""
            return _Outcome(
                error=PhaseRateLimitError(
                    f"Phase rate limit reached{hint}; the account's requests per minute are used",
                    error=text,
                    retry_after=retry_after,
                )
            )
        if status in (400, 403) and text and text.startswith("SSE is not enabled"):
            return _Outcome(
                error=PhaseSSEDisabledError(
                    "This Phase app is end-to-end encrypted: enable server-side encryption (SSE) "
                    "in the app's settings so the REST API can serve its secrets",
                    status=status,
                    error=text,
                )
            )
        if status in (401, 403):
            return _Outcome(
                error=PhaseAuthError(
                    f"Phase refused the token ({status}): check that PHASE_SERVICE_TOKEN is valid, "
                    "not expired, and has access to this app and environment",
                    status=status,
                    error=text,
                )
            )
        if status == 404:
            if text is None:
                return _Outcome(
                    error=PhaseResponseError(
                        f"Got 404 without Phase's JSON error body: PHASE_HOST ({self.base_url}) "
                        "does not look like a Phase API",
                        status=status,
                    )
                )
            return _Outcome(
                error=PhaseNotFoundError(
                    "Phase could not find it: check the app id and environment name",
                    status=status,
                    error=text,
                )
            )
        if status == 409:
            return _Outcome(
                error=PhaseConflictError(
                    "Phase reported a conflict (a secret with this key exists at this path?)",
                    status=status,
                    error=text,
                )
            )
        if 400 <= status < 500:
            return _Outcome(
                error=PhaseRequestError(
                    f"Phase rejected the request ({status})", status=status, error=text
                )
            )
        if 500 <= status < 600:
            return _Outcome(
                error=PhaseServerError(
                    f"Phase had a server error ({status})", status=status, error=text
                )
            )
        return _Outcome(
            error=PhaseResponseError(
                f"Phase answered with an unexpected status ({status})", status=status
            )
        )

    def _transport_error(self, exc: Exception, deadline: Deadline) -> _Outcome:
        """Map an httpx/ssl failure; ``reached_server`` False only when the request never left."""
        if _tls_failure(exc):
            return _Outcome(
                error=PhaseTLSError(
                    f"TLS failed talking to {self.base_url}: the certificate could not be "
                    "verified. Give a CA bundle with PHASE_VERIFY_SSL=/path/to/ca.pem",
                    status=None,
                )
            )
        if isinstance(exc, httpx.DecodingError):
            return _Outcome(
                error=PhaseResponseError(
                    "Phase's reply could not be decoded (bad Content-Encoding)"
                )
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return _Outcome(
                error=PhaseConfigError(f"PHASE_HOST is not a usable URL: {type(exc).__name__}"),
                reached_server=False,
            )
        if isinstance(exc, httpx.RemoteProtocolError) and not _transient_protocol_error(exc):
            # Not HTTP at all (an SSH banner, TLS spoken to http://, a garbled status line):
            # a wrong PHASE_HOST, which must fail loudly rather than fall back.
            return _Outcome(
                error=PhaseResponseError(
                    f"The server at {self.base_url} did not answer in HTTP: is PHASE_HOST "
                    "(and its http/https scheme) right?"
                )
            )
        reached = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        if deadline.expired:
            reason = "the load's deadline passed"
        elif isinstance(exc, httpx.TimeoutException):
            reason = f"timed out ({type(exc).__name__})"
        else:
            reason = f"{type(exc).__name__}"
        return _Outcome(
            error=PhaseConnectionError(f"Could not reach Phase at {self.base_url}: {reason}"),
            reached_server=reached,
        )

    def _too_large(self) -> _Outcome:
        return _Outcome(
            error=PhaseResponseError(
                f"Phase's reply is larger than max_response_bytes ({self.max_response_bytes} "
                "bytes); raise phase_max_response_bytes if the environment really is that large"
            )
        )

    def _next_wait(
        self,
        outcome: _Outcome,
        attempt: int,
        method: str,
        deadline: Deadline,
        policy: RetryPolicy,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None to stop and raise."""
        err = outcome.error
        if attempt >= self.max_attempts:
            return None
        if isinstance(err, PhaseRateLimitError):
            wait = (
                min(err.retry_after, policy.retry_after_cap)
                if err.retry_after is not None
                else policy.backoff(attempt)
            )
        elif isinstance(err, PhaseServerError):
            if method == "POST" or err.status not in _RETRIED_5XX:
                return None
            wait = policy.backoff(attempt)
        elif isinstance(err, PhaseConnectionError):
            if deadline.expired or (method == "POST" and outcome.reached_server):
                return None
            wait = policy.backoff(attempt)
        else:
            return None
        if wait >= deadline.remaining():
            return None  # a wait that would pass the deadline is not started
        return wait

    def _log(self, method: str, route: str, status: int | str, attempt: int, t0: float) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s in %.0f ms (attempt %d/%d)",
                method,
                route,
                status,
                (time.monotonic() - t0) * 1000,
                attempt,
                self.max_attempts,
            )


class PhaseClient(_BaseClient):
    """Synchronous client of Phase's public REST API.

    Args:
        token: a Phase token (``pss_service:v2:…``, ``pss_user:v1:…`` or the console's REST
            form); default ``PHASE_SERVICE_TOKEN``, then ``PHASE_TOKEN``.
        host: the Phase host; default ``PHASE_HOST``, else ``https://api.phase.dev``.
        timeout: seconds per request (connect, each read and write).
        deadline: seconds for one call, every retry and wait included; never exceeded.
        max_attempts: attempts per call, the first included.
        verify_ssl: True, False, or the path of a CA bundle.
        allow_http: allow plain ``http://`` to a host that is not loopback.
        transport: an ``httpx.BaseTransport`` to use instead of the network (tests).
        max_response_bytes: a larger reply is refused before it is parsed.
        clock, sleep, rng: injectable time and randomness (tests).

    Raises:
        PhaseConfigError: no token, a malformed token, or a refused host.
    """

    @scrubbed()
    def __init__(
        self,
        token: Any = None,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        deadline: float = 15.0,
        max_attempts: int = 3,
        verify_ssl: bool | str = True,
        allow_http: bool = False,
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Random | None = None,
    ):
        super().__init__(
            token,
            host,
            timeout=timeout,
            deadline=deadline,
            max_attempts=max_attempts,
            verify_ssl=verify_ssl,
            allow_http=allow_http,
            transport=transport,
            max_response_bytes=max_response_bytes,
            clock=clock,
            rng=rng,
        )
        self._policy = RetryPolicy(sleep=sleep or time.sleep, rng=self._rng)
        self._http_client: httpx.Client | None = None
        self._pid = os.getpid()
        self._closed = False

    @property
    def _http(self) -> httpx.Client:
        # After fork() the child builds its own pool: a connection is never used by two
        # processes (the parent's sockets are left alone, not closed, in the child).
        if self._http_client is None or self._pid != os.getpid():
            if self._closed:
                raise PhaseConfigError("this PhaseClient is closed")
            transport = self._transport or build_transport(self.base_url, self.verify_ssl)
            self._http_client = httpx.Client(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.timeout),
            )
            self._pid = os.getpid()
        return self._http_client

    def close(self) -> None:
        """Close the connection pool."""
        self._closed = True
        if self._http_client is not None and self._pid == os.getpid():
            self._http_client.close()
        self._http_client = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _attempt(
        self,
        method: str,
        route: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        deadline: Deadline,
    ) -> _Outcome:
        timeout = min(self.timeout, deadline.remaining())
        try:
            with (
                deadline_scope(deadline),
                self._http.stream(
                    method,
                    self.base_url + route,
                    params=params,
                    content=content,
                    headers=self._headers(content is not None),
                    timeout=timeout,
                ) as response,
            ):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_response_bytes:
                    return self._too_large()
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        return self._too_large()
                    if deadline.expired:
                        raise httpx.ReadTimeout("the load's deadline passed")
        except PhaseConfigError as exc:
            return _Outcome(error=exc, reached_server=False)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            return self._transport_error(exc, deadline)
        return self._classify(response, bytes(body))

    def _request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        deadline: Deadline | float | None = None,
    ) -> Any:
        limit = self._new_deadline(deadline)
        content = None if json_body is None else json.dumps(json_body).encode()
        attempt = 0
        while True:
            attempt += 1
            if limit.expired:
                raise PhaseConnectionError(
                    f"Could not reach Phase at {self.base_url}: the load's deadline passed"
                )
            t0 = time.monotonic()
            outcome = self._attempt(method, route, params, content, limit)
            self._log(
                method,
                route,
                outcome.error.status or type(outcome.error).__name__ if outcome.error else 200,
                attempt,
                t0,
            )
            if outcome.error is None:
                return outcome.payload
            wait = self._next_wait(outcome, attempt, method, limit, self._policy)
            if wait is None:
                raise outcome.error
            self._policy.sleep(wait)

    # -- the REST API -------------------------------------------------------------------------

    @scrubbed()
    def list_secrets(
        self,
        app_id: str,
        env: str,
        *,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """Secrets of one environment (``GET /v1/secrets/``), references resolved by Phase.

        Args:
            app_id: the app's UUID.
            env: the environment's name (case-insensitive).
            path: one folder (exact, not recursive); None for every folder.
            key: only this key (case-insensitive).
            tags: only secrets with any of these tags.
            deadline: seconds (or a shared :class:`Deadline`) for this call; default the
                client's.

        Returns:
            The secrets; dynamic secrets are skipped.
        """
        params = self._secret_params(app_id, env, path, key, tags)
        return parse_secrets(self._request("GET", _SECRETS, params=params, deadline=deadline))

    @scrubbed()
    def create_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """Create secrets (``POST /v1/secrets/``): mappings with ``key``, ``value`` and
        optionally ``comment``, ``path``, ``tags``, ``type``, ``override``."""
        body = self._create_body(secrets, need_id=False)
        if not body["secrets"]:
            return []
        params = self._secret_params(app_id, env, None)
        return parse_secrets(
            self._request("POST", _SECRETS, params=params, json_body=body, deadline=deadline)
        )

    @scrubbed()
    def update_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """Update secrets by ``id`` (``PUT /v1/secrets/``); omitted fields stay as they are."""
        body = self._create_body(secrets, need_id=True)
        if not body["secrets"]:
            return []
        params = self._secret_params(app_id, env, None)
        return parse_secrets(
            self._request("PUT", _SECRETS, params=params, json_body=body, deadline=deadline)
        )

    @scrubbed()
    def delete_secrets(
        self,
        app_id: str,
        env: str,
        ids: Iterable[str],
        *,
        deadline: Deadline | float | None = None,
    ) -> int:
        """Delete secrets by id (``DELETE /v1/secrets/``); returns how many were deleted."""
        id_list = [str(i) for i in ids]
        if not id_list:
            return 0
        params = self._secret_params(app_id, env, None)
        self._request(
            "DELETE", _SECRETS, params=params, json_body={"secrets": id_list}, deadline=deadline
        )
        return len(id_list)

    @scrubbed()
    def list_apps(self, *, deadline: Deadline | float | None = None) -> list[PhaseApp]:
        """Apps the token can access (``GET /v1/apps/``)."""
        return parse_apps(self._request("GET", "/v1/apps/", deadline=deadline))

    @scrubbed()
    def list_environments(
        self, app_id: str, *, deadline: Deadline | float | None = None
    ) -> list[PhaseEnvironment]:
        """Environments of an app that the token can access (``GET /v1/environments/``)."""
        return parse_environments(
            self._request("GET", "/v1/environments/", params={"app_id": app_id}, deadline=deadline)
        )


class AsyncPhaseClient(_BaseClient):
    """Asynchronous twin of :class:`PhaseClient` (same arguments; ``sleep`` is awaitable)."""

    @scrubbed()
    def __init__(
        self,
        token: Any = None,
        host: str | None = None,
        *,
        timeout: float = 10.0,
        deadline: float = 15.0,
        max_attempts: int = 3,
        verify_ssl: bool | str = True,
        allow_http: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Random | None = None,
    ):
        super().__init__(
            token,
            host,
            timeout=timeout,
            deadline=deadline,
            max_attempts=max_attempts,
            verify_ssl=verify_ssl,
            allow_http=allow_http,
            transport=transport,
            max_response_bytes=max_response_bytes,
            clock=clock,
            rng=rng,
        )
        self._policy = RetryPolicy(rng=self._rng)
        self._asleep = sleep or asyncio.sleep
        self._http_client: httpx.AsyncClient | None = None
        self._pid = os.getpid()
        self._closed = False

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._http_client is None or self._pid != os.getpid():
            if self._closed:
                raise PhaseConfigError("this AsyncPhaseClient is closed")
            transport = self._transport or build_async_transport(self.base_url, self.verify_ssl)
            self._http_client = httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(self.timeout),
            )
            self._pid = os.getpid()
        return self._http_client

    async def aclose(self) -> None:
        """Close the connection pool."""
        self._closed = True
        if self._http_client is not None and self._pid == os.getpid():
            await self._http_client.aclose()
        self._http_client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _attempt(
        self,
        method: str,
        route: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        deadline: Deadline,
    ) -> _Outcome:
        remaining = deadline.remaining()
        try:
            async with (
                asyncio.timeout(remaining),
                self._http.stream(
                    method,
                    self.base_url + route,
                    params=params,
                    content=content,
                    headers=self._headers(content is not None),
                    timeout=min(self.timeout, remaining),
                ) as response,
            ):
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_response_bytes:
                    return self._too_large()
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_response_bytes:
                        return self._too_large()
        except PhaseConfigError as exc:
            return _Outcome(error=exc, reached_server=False)
        except TimeoutError:
            return self._transport_error(httpx.ReadTimeout("deadline"), deadline)
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            return self._transport_error(exc, deadline)
        return self._classify(response, bytes(body))

    async def _request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        deadline: Deadline | float | None = None,
    ) -> Any:
        limit = self._new_deadline(deadline)
        content = None if json_body is None else json.dumps(json_body).encode()
        attempt = 0
        while True:
            attempt += 1
            if limit.expired:
                raise PhaseConnectionError(
                    f"Could not reach Phase at {self.base_url}: the load's deadline passed"
                )
            t0 = time.monotonic()
            outcome = await self._attempt(method, route, params, content, limit)
            self._log(
                method,
                route,
                outcome.error.status or type(outcome.error).__name__ if outcome.error else 200,
                attempt,
                t0,
            )
            if outcome.error is None:
                return outcome.payload
            wait = self._next_wait(outcome, attempt, method, limit, self._policy)
            if wait is None:
                raise outcome.error
            await self._asleep(wait)

    @ascrubbed
    async def list_secrets(
        self,
        app_id: str,
        env: str,
        *,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.list_secrets`."""
        params = self._secret_params(app_id, env, path, key, tags)
        return parse_secrets(await self._request("GET", _SECRETS, params=params, deadline=deadline))

    @ascrubbed
    async def create_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.create_secrets`."""
        body = self._create_body(secrets, need_id=False)
        if not body["secrets"]:
            return []
        params = self._secret_params(app_id, env, None)
        return parse_secrets(
            await self._request("POST", _SECRETS, params=params, json_body=body, deadline=deadline)
        )

    @ascrubbed
    async def update_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: Deadline | float | None = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.update_secrets`."""
        body = self._create_body(secrets, need_id=True)
        if not body["secrets"]:
            return []
        params = self._secret_params(app_id, env, None)
        return parse_secrets(
            await self._request("PUT", _SECRETS, params=params, json_body=body, deadline=deadline)
        )

    @ascrubbed
    async def delete_secrets(
        self,
        app_id: str,
        env: str,
        ids: Iterable[str],
        *,
        deadline: Deadline | float | None = None,
    ) -> int:
        """See :meth:`PhaseClient.delete_secrets`."""
        id_list = [str(i) for i in ids]
        if not id_list:
            return 0
        params = self._secret_params(app_id, env, None)
        await self._request(
            "DELETE", _SECRETS, params=params, json_body={"secrets": id_list}, deadline=deadline
        )
        return len(id_list)

    @ascrubbed
    async def list_apps(self, *, deadline: Deadline | float | None = None) -> list[PhaseApp]:
        """See :meth:`PhaseClient.list_apps`."""
        return parse_apps(await self._request("GET", "/v1/apps/", deadline=deadline))

    @ascrubbed
    async def list_environments(
        self, app_id: str, *, deadline: Deadline | float | None = None
    ) -> list[PhaseEnvironment]:
        """See :meth:`PhaseClient.list_environments`."""
        return parse_environments(
            await self._request(
                "GET", "/v1/environments/", params={"app_id": app_id}, deadline=deadline
            )
        )
