"""What the sync and async clients share: the options, the protocol core, the API layer of the
mode in use, and the lazily built, fork-aware httpx client."""

from __future__ import annotations

import os
from collections.abc import Callable
from random import Random
from typing import TYPE_CHECKING, Any

import httpx

from .._core.deadline import Deadline
from .._core.protocol import Protocol
from .._errors import PhaseConfigError
from .._rest.api import RestApi
from .options import ClientOptions

if TYPE_CHECKING:
    from .._e2ee.plans import AutoApi, E2EEApi

__all__ = ["DeadlineArg", "Driver"]

DeadlineArg = Deadline | float | None


class Driver:
    """What both clients hold: the options, the protocol core, the API plans and the pool."""

    _transport: Any
    _http_client: Any

    def _setup(
        self,
        options: ClientOptions,
        transport: Any,
        clock: Callable[[], float] | None,
        rng: Random | None,
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
        self._core = Protocol(options, clock, rng)
        self._api: RestApi | E2EEApi | AutoApi = RestApi()
        if options.mode != "sse":
            from .._e2ee.plans import (
                api_for,
            )  # the E2EE modules: only for clients that may need them

            self._api = api_for(options)
        self.mode = options.mode
        self._transport = transport
        self._http_client = None
        self._pid = os.getpid()
        self._closed = False

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

    def _client_options(self) -> dict[str, Any]:
        return {
            "follow_redirects": False,
            "trust_env": False,  # no environment proxies for loopback, no .netrc
            "timeout": httpx.Timeout(self.timeout),
        }
