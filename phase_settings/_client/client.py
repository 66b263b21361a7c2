"""``PhaseClient`` and ``AsyncPhaseClient``: Phase's APIs with retries under a deadline.

Thin drivers of the sans-IO core (:mod:`.._core.protocol`) on their shared base (:mod:`.driver`):
the core says what to send, how to read each reply and how long to wait; a driver sends over
its httpx client and sleeps (the async one with anyio: asyncio and trio). The transport's
network backend clamps every socket operation to the deadline: a call never outlives it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from random import Random
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

from .._core.deadline import deadline_scope
from .._core.protocol import Body, Outcome, Plan, Send, Sleep
from .._defaults import DEFAULT_DEADLINE, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, DEFAULTS, Mode
from .._errors import PhaseConfigError, ascrubbed, scrubbed
from .._models import PhaseApp, PhaseEnvironment, Secret
from .._transport.http import build_async_transport, build_transport
from .driver import DeadlineArg, Driver
from .options import DEFAULT_MAX_RESPONSE_BYTES, ClientOptions

T = TypeVar("T")

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "AsyncPhaseClient", "ClientOptions", "PhaseClient"]


class PhaseClient(Driver[httpx.BaseTransport, Callable[[float], None]]):
    """Synchronous client of Phase: the REST API, and the end-to-end-encrypted API for apps
    without server-side encryption (values decrypted on the client).

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
        mode: ``"auto"`` (REST, and for an app without SSE the end-to-end-encrypted API,
            decrypting on the client), ``"sse"`` (REST only) or ``"e2ee"`` (the
            end-to-end-encrypted API only; needs a ``pss_`` token with key parts); default
            ``PHASE_MODE``, else ``"auto"``.
        clock, sleep, rng: injectable time and randomness (tests).

    Raises:
        PhaseConfigError: no token, a malformed token, a refused host, or ``mode="e2ee"``
            with a token without key parts.
    """

    @scrubbed()
    def __init__(
        self,
        token: Any = None,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        verify_ssl: bool | str = DEFAULTS["phase_verify_ssl"],
        allow_http: bool = DEFAULTS["phase_allow_http"],
        transport: httpx.BaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        mode: Mode | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: Random | None = None,
    ):
        options = ClientOptions(
            token=token,
            host=host,
            timeout=timeout,
            deadline=deadline,
            max_attempts=max_attempts,
            verify_ssl=verify_ssl,
            allow_http=allow_http,
            max_response_bytes=max_response_bytes,
            mode=mode,
        )
        self._setup(options, transport, clock, sleep, rng)

    def _default_sleep(self) -> Callable[[float], None]:
        return time.sleep

    @property
    def _http(self) -> httpx.Client:
        if self._client_needed():
            transport = self._transport or build_transport(self.base_url, self.verify_ssl)
            self._http_client = httpx.Client(transport=transport, **self._client_options())
        client: httpx.Client = self._http_client
        return client

    def close(self) -> None:
        """Close the connection pool."""
        pool = self._release()
        if pool is not None:
            pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, plan: Plan[T], deadline: DeadlineArg) -> T:
        load_deadline, steps = self._steps(plan, deadline)
        reply: Outcome | None = None
        # The plan runs in the load's scope: its calls share what one load may reuse.
        with deadline_scope(load_deadline):
            try:
                while True:
                    step = steps.send(reply)
                    if isinstance(step, Sleep):
                        self._sleep(step.seconds)
                        reply = None
                    else:
                        reply = self._attempt(step)
            except StopIteration as stop:
                result: T = stop.value
                return result

    def _attempt(self, send: Send) -> Outcome:
        body: Body | None = None  # set once the reply's head has arrived
        try:
            with (
                deadline_scope(send.deadline),
                self._http.stream(send.method, send.url, **self._stream_options(send)) as reply,
            ):
                body = self._core.body(reply.status_code, reply.headers, send)
                if reply.is_stream_consumed:  # an in-process transport gave the whole body
                    body.add_decoded(reply.content)
                elif not body.too_large:
                    for chunk in reply.iter_raw():  # decoded by the body, within its limit
                        if not body.add(chunk):
                            break
        except (httpx.HTTPError, OSError, PhaseConfigError) as exc:
            return self._failed(exc, send, body)
        return body.outcome()

    # -- the REST API: each call is one plan of the API layer, run by _run -------------------

    @scrubbed()
    def list_secrets(
        self,
        app_id: str,
        env: str,
        *,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
        deadline: DeadlineArg = None,
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
        return self._run(self._api.list_secrets(app_id, env, path, key, tags), deadline)

    @scrubbed()
    def create_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: DeadlineArg = None,
    ) -> list[Secret]:
        """Create secrets (``POST /v1/secrets/``): mappings with ``key``, ``value`` and
        optionally ``comment``, ``path``, ``tags``, ``type``, ``override``."""
        return self._run(self._api.create_secrets(app_id, env, secrets), deadline)

    @scrubbed()
    def update_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: DeadlineArg = None,
    ) -> list[Secret]:
        """Update secrets by ``id`` (``PUT /v1/secrets/``); omitted fields stay as they are."""
        return self._run(self._api.update_secrets(app_id, env, secrets), deadline)

    @scrubbed()
    def delete_secrets(
        self, app_id: str, env: str, ids: Iterable[str], *, deadline: DeadlineArg = None
    ) -> int:
        """Delete secrets by id (``DELETE /v1/secrets/``); returns how many were deleted."""
        return self._run(self._api.delete_secrets(app_id, env, ids), deadline)

    @scrubbed()
    def list_apps(self, *, deadline: DeadlineArg = None) -> list[PhaseApp]:
        """Apps the token can access (``GET /v1/apps/``)."""
        return self._run(self._api.list_apps(), deadline)

    @scrubbed()
    def list_environments(
        self, app_id: str, *, deadline: DeadlineArg = None
    ) -> list[PhaseEnvironment]:
        """Environments of an app that the token can access (``GET /v1/environments/``)."""
        return self._run(self._api.list_environments(app_id), deadline)


class AsyncPhaseClient(Driver[httpx.AsyncBaseTransport, Callable[[float], Awaitable[None]]]):
    """Asynchronous twin of :class:`PhaseClient` (same arguments; ``sleep`` is awaitable).
    Runs under asyncio and trio."""

    @scrubbed()
    def __init__(
        self,
        token: Any = None,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        verify_ssl: bool | str = DEFAULTS["phase_verify_ssl"],
        allow_http: bool = DEFAULTS["phase_allow_http"],
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        mode: Mode | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Random | None = None,
    ):
        options = ClientOptions(
            token=token,
            host=host,
            timeout=timeout,
            deadline=deadline,
            max_attempts=max_attempts,
            verify_ssl=verify_ssl,
            allow_http=allow_http,
            max_response_bytes=max_response_bytes,
            mode=mode,
        )
        self._setup(options, transport, clock, sleep, rng)

    def _default_sleep(self) -> Callable[[float], Awaitable[None]]:
        return anyio.sleep

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client_needed():
            transport = self._transport or build_async_transport(self.base_url, self.verify_ssl)
            self._http_client = httpx.AsyncClient(transport=transport, **self._client_options())
        client: httpx.AsyncClient = self._http_client
        return client

    async def aclose(self) -> None:
        """Close the connection pool."""
        pool = self._release()
        if pool is not None:
            await pool.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, plan: Plan[T], deadline: DeadlineArg) -> T:
        load_deadline, steps = self._steps(plan, deadline)
        reply: Outcome | None = None
        # The plan runs in the load's scope: its calls share what one load may reuse.
        with deadline_scope(load_deadline):
            try:
                while True:
                    step = steps.send(reply)
                    if isinstance(step, Sleep):
                        await self._sleep(step.seconds)
                        reply = None
                    else:
                        reply = await self._attempt(step)
            except StopIteration as stop:
                result: T = stop.value
                return result

    async def _attempt(self, send: Send) -> Outcome:
        body: Body | None = None  # set once the reply's head has arrived
        try:
            # The backend clamps each socket operation (and the request timeout the pool wait)
            # to the deadline. No outer cancel scope: cancelling a TLS handshake from outside
            # would skip httpcore's cleanup and leak the socket.
            with deadline_scope(send.deadline):
                async with self._http.stream(
                    send.method, send.url, **self._stream_options(send)
                ) as reply:
                    body = self._core.body(reply.status_code, reply.headers, send)
                    if reply.is_stream_consumed:  # an in-process transport gave the whole body
                        body.add_decoded(reply.content)
                    elif not body.too_large:
                        async for chunk in reply.aiter_raw():
                            if not body.add(chunk):
                                break
        except (httpx.HTTPError, OSError, PhaseConfigError) as exc:
            return self._failed(exc, send, body)
        return body.outcome()

    @ascrubbed
    async def list_secrets(
        self,
        app_id: str,
        env: str,
        *,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
        deadline: DeadlineArg = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.list_secrets`."""
        return await self._run(self._api.list_secrets(app_id, env, path, key, tags), deadline)

    @ascrubbed
    async def create_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: DeadlineArg = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.create_secrets`."""
        return await self._run(self._api.create_secrets(app_id, env, secrets), deadline)

    @ascrubbed
    async def update_secrets(
        self,
        app_id: str,
        env: str,
        secrets: Iterable[Mapping[str, Any]],
        *,
        deadline: DeadlineArg = None,
    ) -> list[Secret]:
        """See :meth:`PhaseClient.update_secrets`."""
        return await self._run(self._api.update_secrets(app_id, env, secrets), deadline)

    @ascrubbed
    async def delete_secrets(
        self, app_id: str, env: str, ids: Iterable[str], *, deadline: DeadlineArg = None
    ) -> int:
        """See :meth:`PhaseClient.delete_secrets`."""
        return await self._run(self._api.delete_secrets(app_id, env, ids), deadline)

    @ascrubbed
    async def list_apps(self, *, deadline: DeadlineArg = None) -> list[PhaseApp]:
        """See :meth:`PhaseClient.list_apps`."""
        return await self._run(self._api.list_apps(), deadline)

    @ascrubbed
    async def list_environments(
        self, app_id: str, *, deadline: DeadlineArg = None
    ) -> list[PhaseEnvironment]:
        """See :meth:`PhaseClient.list_environments`."""
        return await self._run(self._api.list_environments(app_id), deadline)
