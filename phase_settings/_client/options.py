"""The client's options: one frozen object, checked once, passed around whole."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import SecretStr

from .._core.tokens import auth_header, token_fingerprint, token_kind
from .._core.urls import api_base
from .._errors import PhaseConfigError, scrubbed
from .._settings.config import DEFAULTS, ENV_NAMES, Mode, parse_mode

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "ClientOptions"]

DEFAULT_TIMEOUT: float = DEFAULTS["phase_timeout"]
DEFAULT_DEADLINE: float = DEFAULTS["phase_deadline"]
DEFAULT_MAX_ATTEMPTS: int = DEFAULTS["phase_max_attempts"]
DEFAULT_MAX_RESPONSE_BYTES: int = DEFAULTS["phase_max_response_bytes"]


def _from_env(key: str, environ: Mapping[str, str]) -> str | None:
    for name in ENV_NAMES[key]:
        if environ.get(name):
            return environ[name]
    return None


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
    verify_ssl: bool | str = True
    allow_http: bool = False
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    mode: Mode | None = None
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
        set_(self, "authorization", SecretStr(auth_header(secret)))
        mode = self.mode if self.mode is not None else _from_env("phase_mode", os.environ)
        mode = parse_mode(DEFAULTS["phase_mode"] if mode is None else mode, "mode")
        set_(self, "mode", mode)
        if mode == "e2ee":
            from .._e2ee.keys import TokenKeys

            TokenKeys.from_token(secret)  # a token without key parts fails before any request
        set_(self, "base_url", api_base(host, allow_http=self.allow_http))

    @classmethod
    def from_config(cls, config: Any, **changes: Any) -> ClientOptions:
        """The options of a resolved ``phase_*`` configuration (``token``, ``host``,
        ``timeout``, ``deadline``, ``max_attempts``, ``verify_ssl``, ``allow_http``,
        ``max_response_bytes``, ``mode``), with ``changes`` applied."""
        values = {
            name: getattr(config, name)
            for name in (
                "token",
                "host",
                "timeout",
                "deadline",
                "max_attempts",
                "verify_ssl",
                "allow_http",
                "max_response_bytes",
            )
        }
        values["mode"] = getattr(config, "mode", None)
        return cls(**(values | changes))

    def replace(self, **changes: Any) -> ClientOptions:
        """A copy with ``changes`` applied (and checked)."""
        return replace(self, **changes)

    @property
    def token_type(self) -> str:
        """``ServiceAccount``, ``Service`` or ``User``."""
        return token_kind(self.authorization.get_secret_value())

    @property
    def token_fingerprint(self) -> str:
        """A short one-way name for the token (cache keys, logs); never the token."""
        return token_fingerprint(self.authorization.get_secret_value())
