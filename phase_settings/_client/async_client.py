"""``AsyncPhaseClient``: the async driver of the protocol core, on anyio (asyncio or trio)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from random import Random
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import httpx

from .._core.deadline import deadline_scope
from .._core.protocol import Outcome, Plan, Send, Sleep
from .._defaults import DEFAULT_DEADLINE, DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, DEFAULTS, Mode
from .._errors import PhaseConfigError, ascrubbed, scrubbed
from .._models import PhaseApp, PhaseEnvironment, Secret
from .._transport.failures import Stage
from .._transport.http import build_async_transport
from .driver import DeadlineArg, Driver
from .options import DEFAULT_MAX_RESPONSE_BYTES, ClientOptions

T = TypeVar("T")

__all__ = ["AsyncPhaseClient"]


class AsyncPhaseClient(Driver):
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
        self._setup(options, transport, clock, rng)
        self._asleep = sleep or anyio.sleep

    @classmethod
    def from_options(
        cls,
        options: ClientOptions,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: Random | None = None,
    ) -> Self:
        """A client for already checked :class:`ClientOptions`."""
        client = cls.__new__(cls)
        client._setup(options, transport, clock, rng)
        client._asleep = sleep or anyio.sleep
        return client

    @property
    def _http(self) -> httpx.AsyncClient:
        if self._client_needed():
            transport = self._transport or build_async_transport(self.base_url, self.verify_ssl)
            self._http_client = httpx.AsyncClient(transport=transport, **self._client_options())
        client: httpx.AsyncClient = self._http_client
        return client

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

    async def _run(self, plan: Plan[T], deadline: DeadlineArg) -> T:
        load_deadline = self._core.deadline(deadline)
        steps = self._core.run(plan, load_deadline)
        reply: Outcome | None = None
        # The plan runs in the load's scope: its calls share what one load may reuse.
        with deadline_scope(load_deadline):
            try:
                while True:
                    step = steps.send(reply)
                    if isinstance(step, Sleep):
                        await self._asleep(step.seconds)
                        reply = None
                    else:
                        reply = await self._attempt(step)
            except StopIteration as stop:
                result: T = stop.value
                return result

    async def _attempt(self, send: Send) -> Outcome:
        stage: Stage = "send"
        status: int | None = None
        try:
            # The backend clamps each socket operation (and the request timeout the pool wait)
            # to the deadline. No outer cancel scope: cancelling a TLS handshake from outside
            # would skip httpcore's cleanup and leak the socket.
            with deadline_scope(send.deadline):
                async with self._http.stream(
                    send.method,
                    send.url,
                    params=send.params,
                    content=send.content,
                    headers=send.headers,
                    timeout=send.timeout,
                ) as response:
                    stage = "body"
                    status = response.status_code
                    body = self._core.body(response.status_code, response.headers, send)
                    if not body.too_large:
                        async for chunk in response.aiter_bytes():
                            if not body.add(chunk):
                                break
        except (httpx.HTTPError, OSError, PhaseConfigError) as exc:
            return self._core.failure(exc, stage, send.deadline, status=status, send=send)
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
