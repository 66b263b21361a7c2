"""What the sync and async clients share, everything but I/O: the options, the protocol core,
the API of the mode in use, the lazily built, fork-aware httpx client, and how a failed
attempt becomes an outcome."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from random import Random
from typing import Any, Generic, Self, TypeVar

import httpx

from .._core.api import SecretsApi
from .._core.deadline import Deadline
from .._core.gate import NO_GATE, RequestGate
from .._core.protocol import Body, Outcome, Plan, Protocol, Send, Sleep
from .._core.switch import ApiSwitch
from .._errors import PhaseConfigError
from .._transport.failures import classify_failure
from .auto import api_for
from .options import ClientOptions
from .switch import PROCESS_SWITCH

__all__ = ["DeadlineArg", "Driver"]

DeadlineArg = Deadline | float | None
T = TypeVar("T")
TransportT = TypeVar("TransportT")  # httpx.BaseTransport or httpx.AsyncBaseTransport
SleepT = TypeVar("SleepT")  # how the client waits: a function, or a coroutine function


class Driver(Generic[TransportT, SleepT]):
    """What both clients hold: the options, the protocol core, the API plans and the pool."""

    _http_client: Any

    def _setup(
        self,
        options: ClientOptions,
        transport: TransportT | None,
        clock: Callable[[], float] | None,
        sleep: SleepT | None,
        rng: Random | None,
        gate: RequestGate = NO_GATE,
        switch: ApiSwitch = PROCESS_SWITCH,
    ) -> None:
        self.options = options
        self.base_url = options.base_url
        self.timeout = options.timeout
        self.deadline = options.deadline
        self.max_attempts = options.max_attempts
        self.verify_ssl = options.verify_ssl
        self.max_response_bytes = options.max_response_bytes
        self.token_type = options.token_type
        self.token_fingerprint = options.token_fingerprint
        self._core = Protocol(options, clock, rng, gate)
        self._api: SecretsApi = api_for(options, switch)
        self.mode = options.mode
        self._transport = transport
        self._sleep: SleepT = sleep or self._default_sleep()
        self._http_client = None
        self._pid = os.getpid()
        self._closed = False

    def _default_sleep(self) -> SleepT:
        raise NotImplementedError

    @classmethod
    def from_options(
        cls,
        options: ClientOptions,
        *,
        transport: TransportT | None = None,
        clock: Callable[[], float] | None = None,
        sleep: SleepT | None = None,
        rng: Random | None = None,
        gate: RequestGate = NO_GATE,
        switch: ApiSwitch = PROCESS_SWITCH,
    ) -> Self:
        """A client for already checked :class:`ClientOptions`; ``gate`` sees every request
        and every 429, ``switch`` holds what ``"auto"`` mode learns (default: the process's)."""
        client = cls.__new__(cls)
        client._setup(options, transport, clock, sleep, rng, gate, switch)
        return client

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"token=<{self.token_type} {self.token_fingerprint[:8]}…>)"
        )

    def _client_needed(self) -> bool:
        # After fork() the child builds its own pool: a connection is never used by two
        # processes (the parent's sockets are left alone, not closed, in the child).
        if self._http_client is not None and self._pid == os.getpid():
            return False
        if self._closed:
            raise PhaseConfigError(f"this {type(self).__name__} is closed")
        self._pid = os.getpid()
        return True

    def _release(self) -> Any:
        """Mark the client closed; the pool to close, if this process built one (a pool
        inherited across fork() is the parent's: left alone)."""
        self._closed = True
        pool, self._http_client = self._http_client, None
        return pool if pool is not None and self._pid == os.getpid() else None

    def _client_options(self) -> dict[str, Any]:
        return {
            "follow_redirects": False,
            "trust_env": False,  # no environment proxies for loopback, no .netrc
            "timeout": httpx.Timeout(self.timeout),
        }

    def _steps(
        self, plan: Plan[T], deadline: DeadlineArg
    ) -> tuple[Deadline, Generator[Send | Sleep, Any, T]]:
        """The load's deadline, and the steps the core asks the driver to perform."""
        load_deadline = self._core.deadline(deadline)
        return load_deadline, self._core.run(plan, load_deadline)

    def _stream_options(self, send: Send) -> dict[str, Any]:
        """The httpx ``stream()`` arguments of an attempt, after its method and URL."""
        return {
            "params": send.params,
            "content": send.content,
            "headers": send.headers,
            "timeout": send.timeout,
        }

    def _failed(self, exc: BaseException, send: Send, body: Body | None) -> Outcome:
        """The outcome of an attempt that raised ``exc`` (``body``: the reply being read, None
        before its head arrived): a refusal of ours (a proxy or host the transport will not
        use) as it is, anything else as the transport classifies it."""
        if isinstance(exc, PhaseConfigError):
            return Outcome(error=exc, reached_server=False)
        failure = classify_failure(exc, "send" if body is None else "body")
        status = None if body is None else body.status
        return self._core.failure(exc, failure, send.deadline, status=status, send=send)
