"""The client's options: one frozen object, checked once, passed around whole."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pydantic import SecretStr

from .._core.credentials import Credentials
from .._core.urls import api_base
from .._defaults import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DEFAULTS,
    SETTINGS,
    Mode,
    from_environ,
    parse_mode,
)
from .._errors import PhaseConfigError, scrubbed

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "ClientOptions"]


def _from_env(key: str, environ: Mapping[str, str]) -> str | None:
    found = from_environ(key, environ)
    return None if found is None else found[1]


@dataclass(frozen=True, kw_only=True, eq=False)
class ClientOptions:
    """Everything a :class:`PhaseClient` or :class:`AsyncPhaseClient` needs, resolved and
    checked when built: the token and host (default ``PHASE_SERVICE_TOKEN`` / ``PHASE_TOKEN``
    and ``PHASE_HOST``), the timeouts, attempts, TLS setting, reply limit and the API mode
    (default ``PHASE_MODE``, else ``"auto"``).

    Raises:
        PhaseConfigError: no token, a malformed token, a refused host, a bad number, an
            unknown mode, or ``mode="e2ee"`` with a token without key parts.
    """

    token: SecretStr | str | None = field(default=None, repr=False)
    host: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    verify_ssl: bool | str = DEFAULTS["phase_verify_ssl"]
    allow_http: bool = DEFAULTS["phase_allow_http"]
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    mode: Mode | None = None
    credentials: Credentials = field(init=False, repr=False)
    authorization: SecretStr = field(init=False, repr=False)
    base_url: str = field(init=False)

    @scrubbed()
    def __post_init__(self) -> None:
        token = self.token
        if token is None:
            token = _from_env("phase_token", os.environ)
        if not token or (isinstance(token, SecretStr) and not token.get_secret_value()):
            raise PhaseConfigError(
                "No Phase token: pass token= or set PHASE_SERVICE_TOKEN "
                "(a pss_service:v2:… service account token)"
            )
        if not isinstance(token, str | SecretStr):
            raise PhaseConfigError("the Phase token must be a string or SecretStr")
        if self.max_attempts < 1:
            raise PhaseConfigError("max_attempts must be at least 1")
        if not self.timeout > 0 or not self.deadline > 0:
            raise PhaseConfigError("timeout and deadline must be positive numbers of seconds")
        if self.max_response_bytes < 1:
            raise PhaseConfigError("max_response_bytes must be at least 1")
        host = self.host if self.host is not None else _from_env("phase_host", os.environ)
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        set_ = object.__setattr__
        set_(self, "token", secret)
        set_(self, "host", host)
        set_(self, "timeout", float(self.timeout))
        set_(self, "deadline", float(self.deadline))
        set_(self, "max_attempts", int(self.max_attempts))
        set_(self, "max_response_bytes", int(self.max_response_bytes))
        credentials = Credentials.parse(secret)  # the one parse of this client's token
        set_(self, "credentials", credentials)
        set_(self, "authorization", credentials.authorization)
        mode = self.mode if self.mode is not None else _from_env("phase_mode", os.environ)
        mode = parse_mode(DEFAULTS["phase_mode"] if mode is None else mode, "mode")
        set_(self, "mode", mode)
        if mode == "e2ee":
            credentials.key_parts()  # a token without key parts fails before any request
        set_(self, "base_url", api_base(host, allow_http=self.allow_http))

    @classmethod
    def from_config(cls, config: Any, **changes: Any) -> ClientOptions:
        """The options of a resolved ``phase_*`` configuration (the settings that are options
        too: ``token``, ``host``, ``timeout``, ``deadline``, ``max_attempts``, ``verify_ssl``,
        ``allow_http``, ``max_response_bytes``, ``mode``), with ``changes`` applied."""
        values = {name: getattr(config, name) for name in _FROM_CONFIG}
        return cls(**(values | changes))

    def replace(self, **changes: Any) -> ClientOptions:
        """A copy with ``changes`` applied (and checked)."""
        return replace(self, **changes)

    @property
    def token_type(self) -> str:
        """``ServiceAccount``, ``Service`` or ``User``."""
        return self.credentials.token_type

    @property
    def token_fingerprint(self) -> str:
        """A short one-way name for the whole token, key parts included (cache and pool keys,
        logs); never the token."""
        return self.credentials.fingerprint


# The options that are ``phase_*`` settings too, read from a resolved configuration.
_FROM_CONFIG = tuple(
    f.name for f in fields(ClientOptions) if f.init and f"phase_{f.name}" in SETTINGS
)
