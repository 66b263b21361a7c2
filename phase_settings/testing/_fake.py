"""``FakePhase``: an in-memory Phase server that answers like the real one.

The state (apps, environments, secrets, personal overrides, accounts and their tokens) lives in
memory behind one lock. :meth:`FakePhase.handle` turns one HTTP request into a
:class:`FakeResponse`; the loopback server of :meth:`FakePhase.serve` and the in-process
:meth:`FakePhase.transport` both call it, so they answer alike. Every response follows the
contract in ``phase-api/README.md`` and the recordings of a real v2.73.2 server beside it:
status, error text, header order, field order, server-side reference resolution, the
per-account throttle and the order in which the server checks things.

Only the standard library and httpx are used: the fake never imports the client it tests.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

from . import _server

__all__ = ["FakePhase", "FakeResponse", "RecordedRequest"]

SERVER_VERSION = "v2.73.2"
DEFAULT_ENVIRONMENTS = ("Development", "Staging", "Production")
MAX_REFERENCE_DEPTH = 25
# Bounds on one value's reference resolution, so that a pathological graph (every key
# referencing every other, or values doubling at each level) can never hang the fake.
_MAX_REFERENCE_LOOKUPS = 2_000
_MAX_RESOLVED_CHARS = 1_000_000

_TOKEN_TYPES = ("User", "Service", "ServiceAccount")
_SECRET_TYPES = ("config", "sealed", "secret")
_SECRETS_METHODS = ("GET", "POST", "PUT", "DELETE")
_SECRETS_ALLOW = "GET, POST, PUT, DELETE, HEAD, OPTIONS"
_READ_ONLY_ALLOW = "GET, HEAD, OPTIONS"
_ENV_TYPES = {"development": "dev", "staging": "staging", "production": "prod"}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_NOT_PROVIDED = "Authentication credentials were not provided."
_INVALID_TOKEN = "Invalid token"
_TOKEN_GONE = "Token expired or deleted"
_ENV_CONTEXT = "Environment context required. Supply `app_id` and `env` as query parameters."
_SSE_DISABLED = "SSE is not enabled for this App"
_SERVICE_TOKEN_CONTEXT = "Service tokens require an environment context"

# Django's default error page (django/views/defaults.py), byte for byte as recorded.
_ERROR_PAGE = """
<!doctype html>
<html lang="en">
<head>
  <title>{title}</title>
</head>
<body>
  <h1>{title}</h1><p>{details}</p>
</body>
</html>
"""
_NOT_FOUND_HTML = _ERROR_PAGE.format(
    title="Not Found", details="The requested resource was not found on this server."
).encode()
_SERVER_ERROR_HTML = _ERROR_PAGE.format(title="Server Error (500)", details="").encode()

# Secret reference patterns of the server (contract §5).
_CROSS_APP_REF = re.compile(r"\$\{(?!\{)([^{}]+?)::([^{}]+?)\.([^{}]+?)\}")
_CROSS_ENV_REF = re.compile(r"\$\{(?!\{)(?![^{}]*::)([^{}.]+?)\.([^{}]+?)\}")
_LOCAL_REF = re.compile(r"\$\{(?!\{)([^{}.]+?)\}")

# djangorestframework-camel-case 1.4.2 turns query parameter names into snake_case.
_UNDERSCOREIZE = re.compile(
    r"([a-z0-9]|[A-Z]?(?=[A-Z0-9](?=[a-z0-9]|(?<![A-Z])$)))"
    r"([A-Z]|(?<=[a-z])[0-9](?=[0-9A-Z]|$)|(?<=[A-Z])[0-9](?=[0-9]|$))"
)
_APP_DETAIL = re.compile(r"/v1/apps/([^/]+)/")


def normalize_path(path: str) -> str:
    """Normalise a folder path the way the server does (``normalize_path_string``).

    Args:
        path: A folder path such as ``backend/``, ``/backend`` or ``//backend/``.

    Returns:
        The normalised path: ``/`` stays ``/``; repeated slashes are collapsed, a leading slash
        is added and a trailing slash removed, so all three examples give ``/backend``.
    """
    if path == "/":
        return path
    while "//" in path:
        path = path.replace("//", "/")
    if not path.startswith("/"):
        path = "/" + path
    if path.endswith("/") and path != "/":
        path = path[:-1]
    return path


def _decompose_keyref(keyref: str) -> tuple[str, str]:
    slash = keyref.rfind("/")
    if slash == -1:
        return "/", keyref
    return normalize_path(keyref[:slash]), keyref[slash + 1 :]


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _now() -> datetime:
    return datetime.now(UTC)


def _compact(payload: Any) -> bytes:
    # DRF's JSONRenderer: compact, UTF-8, with U+2028/U+2029 escaped.
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (possible through a JSON POST body) cannot be UTF-8: escape it.
        return json.dumps(payload, separators=(",", ":")).encode()


def _spaced(payload: Any) -> bytes:
    # Django's JsonResponse: default separators, ASCII only.
    return json.dumps(payload).encode()


def _underscoreize(name: str) -> str:
    return _UNDERSCOREIZE.sub(r"\1_\2", name).lower()


def _truthy_flag(value: str | None) -> bool:
    return value is not None and value.lower() != "false"


def _token_segment(token: str) -> str:
    """The 64-hex value the server sees, from any accepted token spelling."""
    token = token.strip()
    if token.startswith(("pss_service:", "pss_user:")):
        parts = token.split(":")
        if len(parts) > 2:
            return parts[2]
    if " " in token:
        return token.rsplit(" ", 1)[-1]
    return token


def _parse_rate(rate: str) -> tuple[int, int]:
    num, sep, period = rate.partition("/")
    if not sep or not period or period[0] not in _PERIODS:
        raise ValueError(f"rate must look like '5/m' (period s, m, h or d), got {rate!r}")
    try:
        count = int(num)
    except ValueError:
        raise ValueError(f"rate must start with an integer count, got {rate!r}") from None
    if count < 0:
        raise ValueError(f"rate count must not be negative, got {rate!r}")
    return count, _PERIODS[period[0]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. The token is never stored.

    Attributes:
        method: The HTTP method, upper case.
        path: The path as received (still percent-encoded), without the query string.
        query: Query parameters as sent (names unchanged; the last value of a repeated name).
        token_type: ``"ServiceAccount"``, ``"User"`` or ``"Service"`` when the Authorization
            header named one of those types, else None.
        client_port: The client's TCP port (None for the in-process transport).
        headers: Request headers with lower-cased names, without ``authorization``.
        timestamp: When the request arrived, from the fake's clock (``time.monotonic`` unless
            another clock was given).
        body: The request body bytes.
    """

    method: str
    path: str
    query: dict[str, str]
    token_type: str | None
    client_port: int | None
    headers: dict[str, str]
    timestamp: float
    body: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class FakeResponse:
    """What :meth:`FakePhase.handle` answers.

    Attributes:
        status: The HTTP status code.
        headers: Response headers in the order they are sent.
        body: The response body (already empty for HEAD requests).
        drop: Close the connection without answering.
        hang: Read the request, send nothing for this many seconds, then close.
        raw: Write exactly these bytes to the socket instead of a response, then close.
        close: Close the connection after the response (set when a test lies about
            ``Content-Length``).
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    hang: float | None = None
    raw: bytes | None = None
    close: bool = False


@dataclass
class _Environment:
    id: str
    app_id: str
    name: str
    env_type: str
    index: int
    salt: bytes
    created_at: datetime
    updated_at: datetime
    secrets: dict[str, _Secret] = field(default_factory=dict)
    dynamic: dict[str, _DynamicSecret] = field(default_factory=dict)


@dataclass
class _App:
    id: str
    name: str
    description: str | None
    sse: bool
    created_at: datetime
    updated_at: datetime
    envs: list[_Environment] = field(default_factory=list)

    def env_named(self, name: str) -> _Environment | None:
        wanted = name.lower()
        return next((env for env in self.envs if env.name.lower() == wanted), None)


@dataclass
class _Secret:
    id: str
    env_id: str
    key: str
    key_digest: str
    value: str
    comment: str
    tags: list[str]
    type: str
    path: str
    folder: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass
class _DynamicSecret:
    id: str
    env_id: str
    name: str
    description: str
    path: str
    folder: str | None
    provider: str
    default_ttl: int
    max_ttl: int
    key_map: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime


@dataclass
class _Override:
    id: str
    value: str
    is_active: bool
    created_at: datetime
    updated_at: datetime


@dataclass
class _Account:
    id: str
    kind: str
    envs: frozenset[str] | None
    apps: frozenset[str] | None
    revoked: bool = False


@dataclass
class _Fault:
    status: int | None
    headers: dict[str, str] | None
    body: bytes | None
    remaining: int
    delay: float
    drop: bool
    hang: float | None
    raw: bytes | None


@dataclass
class _Context:
    account: _Account
    app: _App | None
    env: _Environment | None


@dataclass
class _Budget:
    lookups: int = _MAX_REFERENCE_LOOKUPS


class _Reply(Exception):
    """Raised inside request handling to answer at once with this response."""

    def __init__(self, response: FakeResponse) -> None:
        super().__init__(response.status)
        self.response = response


class FakePhase:
    """An in-memory Phase server for tests: real HTTP on loopback, or an httpx transport.

    Thread-safe: tests may change the state while a server thread answers requests.

    Example:
        ```python
        fake = FakePhase()
        app_id = fake.add_app("demo")
        fake.set_secret(app_id, "development", "DB_HOST", "db")
        token = fake.add_service_account(envs=("development",))
        with fake.serve() as url:  # PHASE_HOST=url
            ...
        ```

    Args:
        legacy_auth: Behave like a server before v2.69.0: every 401 becomes a 403 without
            ``WWW-Authenticate``, a missing ``app_id``/``env`` gives ``Missing app_id
            parameter``/``Missing env parameter``, a malformed Authorization header gives a
            500 HTML page, a path without its trailing slash is redirected (301), the
            ``/v1/apps/`` and ``/v1/environments/`` routes do not exist, and DELETE answers
            ``Secret does not exist`` and always says "secrets".
        clock: The monotonic clock used for the throttle window and request timestamps.
    """

    def __init__(
        self, legacy_auth: bool = False, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.legacy_auth = legacy_auth
        self._clock = clock
        self._lock = threading.RLock()
        self._apps: dict[str, _App] = {}
        self._envs: dict[str, _Environment] = {}
        self._secret_index: dict[str, _Secret] = {}
        self._folders: dict[tuple[str, str], str] = {}
        self._overrides: dict[tuple[str, str], _Override] = {}
        self._tokens: dict[str, _Account] = {}
        self._rate: tuple[int, int] | None = None
        self._history: dict[str, deque[float]] = {}
        self._faults: deque[_Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: _server.FakePhaseServer | None = None
        self._past_errors: list[str] = []
        # Set while a server stops, so that injected delays end at once.
        self._wake = threading.Event()

    # ------------------------------------------------------------------ state: apps

    def add_app(
        self,
        name: str,
        sse: bool = True,
        environments: Iterable[str] = DEFAULT_ENVIRONMENTS,
        *,
        app_id: str | None = None,
        description: str | None = None,
    ) -> str:
        """Create an app with its environments.

        Args:
            name: The app's name (cross-app references find it case-insensitively).
            sse: Whether server-side encryption is on; the REST API refuses apps without it.
            environments: Environment names, in index order. ``Development``, ``Staging``
                and ``Production`` get the types ``dev``, ``staging`` and ``prod``; any other
                name is ``custom``.
            app_id: The app's id; a random UUID when None.
            description: The app's description, as listed by ``/v1/apps/``.

        Returns:
            The app id.

        Raises:
            ValueError: The id is taken, or two environments share a name.
        """
        env_names = [str(env) for env in environments]
        lowered = [env.lower() for env in env_names]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"duplicate environment names in {env_names!r}")
        now = _now()
        new_id = app_id or str(uuid.uuid4())
        with self._lock:
            if new_id in self._apps:
                raise ValueError(f"an app with id {new_id!r} exists already")
            app = _App(new_id, name, description, sse, now, now)
            for index, env_name in enumerate(env_names):
                env = _Environment(
                    id=str(uuid.uuid4()),
                    app_id=new_id,
                    name=env_name,
                    env_type=_ENV_TYPES.get(env_name.lower(), "custom"),
                    index=index,
                    salt=secrets.token_bytes(32),
                    created_at=now,
                    updated_at=now,
                )
                app.envs.append(env)
                self._envs[env.id] = env
            self._apps[new_id] = app
        return new_id

    def app_id(self, name: str) -> str:
        """Look an app up by name, case-insensitively.

        Args:
            name: The app's name.

        Returns:
            The id of the first app with that name.

        Raises:
            KeyError: No app has that name.
        """
        with self._lock:
            for app in self._apps.values():
                if app.name.lower() == name.lower():
                    return app.id
        raise KeyError(name)

    def env_id(self, app_id: str, env: str) -> str:
        """The id of an app's environment, found by name case-insensitively.

        Args:
            app_id: The app's id.
            env: The environment's name.

        Returns:
            The environment id (what the ``Environment`` request header carries).

        Raises:
            KeyError: No such app or environment.
        """
        with self._lock:
            return self._env(app_id, env).id

    def set_sse(self, app_id: str, enabled: bool) -> None:
        """Turn server-side encryption on or off for an app.

        Args:
            app_id: The app's id.
            enabled: The new setting.

        Raises:
            KeyError: No such app.
        """
        with self._lock:
            app = self._app(app_id)
            app.sse = enabled
            app.updated_at = _now()

    # --------------------------------------------------------------- state: secrets

    def set_secret(
        self,
        app_id: str,
        env: str,
        key: str,
        value: str,
        path: str = "/",
        tags: Iterable[str] = (),
        comment: str = "",
        type: str = "secret",
    ) -> str:
        """Create a secret, or update the one with this key at this path.

        An update bumps ``version`` by one and sets ``updatedAt``, as a PUT does.

        Args:
            app_id: The app's id.
            env: The environment's name, matched case-insensitively.
            key: The key; stored upper-cased, as the server does.
            value: The raw value; references in it are resolved when it is read.
            path: The folder, normalised like the server (``backend/`` is ``/backend``).
            tags: Tag names; they replace the secret's tags on an update.
            comment: The comment.
            type: ``"secret"``, ``"sealed"`` or ``"config"``.

        Returns:
            The secret's id.

        Raises:
            KeyError: No such app or environment.
            ValueError: An empty key or an unknown type.
        """
        if not key:
            raise ValueError("key must not be empty")
        if type not in _SECRET_TYPES:
            raise ValueError(f"type must be one of {list(_SECRET_TYPES)}, got {type!r}")
        with self._lock:
            environment = self._env(app_id, env)
            folder_path = normalize_path(path)
            existing = self._find_secret(environment, folder_path, key.upper())
            if existing is not None:
                existing.value = value
                existing.comment = comment
                existing.tags = _dedupe(tags)
                existing.type = type
                existing.version += 1
                existing.updated_at = _now()
                return existing.id
            return self._create_secret(
                environment, key, value, folder_path, comment, _dedupe(tags), type
            ).id

    def delete_secret(self, app_id: str, env: str, key: str, path: str = "/") -> None:
        """Delete a secret and the personal overrides of it.

        Args:
            app_id: The app's id.
            env: The environment's name.
            key: The key, matched case-insensitively.
            path: The folder.

        Raises:
            KeyError: No such app, environment or secret.
        """
        with self._lock:
            environment = self._env(app_id, env)
            secret = self._find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                raise KeyError(key)
            self._remove_secret(secret)

    def get_secret(self, app_id: str, env: str, key: str, path: str = "/") -> dict[str, Any] | None:
        """The stored record of a secret, its value unresolved, for assertions.

        Args:
            app_id: The app's id.
            env: The environment's name.
            key: The key, matched case-insensitively.
            path: The folder.

        Returns:
            A dict shaped like an API item (camelCase, without ``override``) whose ``value``
            is the raw stored value, or None when there is no such secret.

        Raises:
            KeyError: No such app or environment.
        """
        with self._lock:
            environment = self._env(app_id, env)
            secret = self._find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                return None
            return {
                "id": secret.id,
                "key": secret.key,
                "value": secret.value,
                "comment": secret.comment,
                "tags": list(secret.tags),
                "type": secret.type,
                "lifecycle": "static",
                "path": secret.path,
                "keyDigest": secret.key_digest,
                "version": secret.version,
                "createdAt": _iso(secret.created_at),
                "updatedAt": _iso(secret.updated_at),
                "environment": secret.env_id,
                "folder": secret.folder,
            }

    def add_dynamic_secret(
        self,
        app_id: str,
        env: str,
        name: str,
        *,
        path: str = "/",
        key_names: Iterable[str] = ("USERNAME", "PASSWORD"),
        provider: str = "aws",
        description: str = "",
    ) -> str:
        """Add a dynamic secret; GET lists it only when asked with ``dynamic=true``.

        Args:
            app_id: The app's id.
            env: The environment's name.
            name: The dynamic secret's name.
            path: Its folder.
            key_names: The keys of its key map (they also clash with new static keys).
            provider: The provider name.
            description: Its description.

        Returns:
            The dynamic secret's id.

        Raises:
            KeyError: No such app or environment.
        """
        now = _now()
        with self._lock:
            environment = self._env(app_id, env)
            folder_path = normalize_path(path)
            key_map = [
                {
                    "id": str(uuid.uuid4()),
                    "keyName": key_name.upper(),
                    "keyDigest": _digest(key_name.upper(), environment.salt),
                }
                for key_name in key_names
            ]
            dynamic = _DynamicSecret(
                id=str(uuid.uuid4()),
                env_id=environment.id,
                name=name,
                description=description,
                path=folder_path,
                folder=self._folder(environment, folder_path),
                provider=provider,
                default_ttl=3600,
                max_ttl=86400,
                key_map=key_map,
                created_at=now,
                updated_at=now,
            )
            environment.dynamic[dynamic.id] = dynamic
            return dynamic.id

    # -------------------------------------------------------------- state: accounts

    def add_service_account(
        self, envs: Iterable[str] | None = ("development",), apps: Iterable[str] | None = None
    ) -> str:
        """Create a service account with one token.

        Args:
            envs: Environment names it can read, case-insensitive, in every app it can see;
                None means every environment (of apps added later too).
            apps: The app ids it can see; None means every app.

        Returns:
            A token ``pss_service:v2:<64 hex>:<64 hex>:<64 hex>:<64 hex>``.
        """
        return self._add_account("ServiceAccount", "pss_service:v2", envs, apps)

    def add_service_token(self, app_id: str, envs: Iterable[str] | None = ("development",)) -> str:
        """Create a legacy, app-scoped Service token.

        Args:
            app_id: The only app it can read.
            envs: Environment names it holds keys for; None means all of the app's.

        Returns:
            A token ``pss_service:v1:<64 hex>:…`` (sent as ``Bearer Service <64 hex>``).

        Raises:
            KeyError: No such app.
        """
        with self._lock:
            self._app(app_id)
        return self._add_account("Service", "pss_service:v1", envs, (app_id,))

    def add_user(self, envs: Iterable[str] | None = None, apps: Iterable[str] | None = None) -> str:
        """Create an organisation member with a personal access token.

        Args:
            envs: Environment names the user can read; None (the default) means all.
            apps: App ids the user can see; None means all.

        Returns:
            A token ``pss_user:v1:<64 hex>:<64 hex>:<64 hex>:<64 hex>``.
        """
        return self._add_account("User", "pss_user:v1", envs, apps)

    def revoke(self, token: str) -> None:
        """Delete a token: afterwards it gets 401 ``Token expired or deleted``.

        Args:
            token: The token as returned (``pss_…``), or its 64-hex segment.

        Raises:
            KeyError: The token is unknown.
        """
        with self._lock:
            account = self._tokens.get(_token_segment(token))
            if account is None:
                raise KeyError("unknown token")
            account.revoked = True

    def set_override(
        self,
        user: str,
        app_id: str,
        env: str,
        key: str,
        value: str,
        active: bool = True,
        path: str = "/",
    ) -> None:
        """Set a user's personal override of a secret (created or replaced).

        Args:
            user: The user's token, as returned by :meth:`add_user`.
            app_id: The app's id.
            env: The environment's name.
            key: The secret's key.
            value: The override value (references in it are resolved when read).
            active: Whether the override is active.
            path: The secret's folder.

        Raises:
            KeyError: Unknown token, app, environment or secret.
            ValueError: The token is not a user token.
        """
        with self._lock:
            account = self._tokens.get(_token_segment(user))
            if account is None:
                raise KeyError("unknown token")
            if account.kind != "User":
                raise ValueError("personal overrides belong to user tokens")
            environment = self._env(app_id, env)
            secret = self._find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                raise KeyError(key)
            self._upsert_override(account, secret, value, active)

    # ------------------------------------------------------ throttle, faults, log

    def rate_limit(self, rate: str | None) -> None:
        """Throttle each account as the server's ``RATE_LIMIT_DEFAULT`` does.

        A sliding window per account, shared by every throttled route; only requests that
        pass authentication count, and refused ones do not.

        Args:
            rate: ``"<count>/<period>"`` where only the period's first letter counts
                (``s``, ``m``, ``h`` or ``d``: ``"5/minute"`` is ``"5/m"``); None turns the
                throttle off and forgets the windows.

        Raises:
            ValueError: The rate is malformed.
        """
        parsed = None if rate is None else _parse_rate(rate)
        with self._lock:
            self._rate = parsed
            if parsed is None:
                self._history.clear()

    def fail_next(
        self,
        status: int | None = 503,
        headers: Mapping[str, str] | None = None,
        body: str | bytes | None = None,
        times: int = 1,
        delay: float = 0.0,
        drop: bool = False,
        hang: float | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Make the next requests (any route) fail. Calls queue up in order.

        Args:
            status: The status to answer with; None answers normally (after ``delay``).
            headers: Extra response headers. ``Content-Type`` defaults to
                ``application/json``; ``Content-Length`` is computed unless given here (so a
                test can lie about it; the response then says ``Connection: close`` and the
                connection is closed after it).
            body: The body; None gives ``{"error": "<reason>"}`` for the status.
            times: How many requests this applies to.
            delay: Seconds to wait before answering (normally or with ``status``).
            drop: Close the connection without any response.
            hang: Read the request, then send nothing for this many seconds and close.
            raw: Write exactly these bytes (status line, headers, body, possibly malformed),
                then close the connection. Include ``Connection: close`` in well-formed bytes,
                or a keep-alive client may reuse the closing connection for its next request.

        Raises:
            ValueError: Inconsistent arguments.
        """
        actions = sum((drop, hang is not None, raw is not None))
        if actions > 1:
            raise ValueError("choose at most one of drop, hang and raw")
        if times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0 or (hang is not None and hang < 0):
            raise ValueError("delay and hang must not be negative")
        if status is None and not actions and not delay:
            raise ValueError("status=None needs a delay, drop, hang or raw")
        if status is not None and not 100 <= status <= 999:
            raise ValueError(f"not an HTTP status: {status}")
        payload = body.encode() if isinstance(body, str) else body
        fault = _Fault(
            status=status,
            headers=dict(headers) if headers is not None else None,
            body=payload,
            remaining=times,
            delay=delay,
            drop=drop,
            hang=hang,
            raw=raw,
        )
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Forget every pending :meth:`fail_next`."""
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------ seeding

    @classmethod
    def from_seed(cls, data: Mapping[str, Any], *, legacy_auth: bool = False) -> FakePhase:
        """Build a fake from seed data (the JSON of ``phase-settings serve-fake --seed``).

        The shape is ``{"apps": [{"name": "demo", "sse": true, "id": "<optional uuid>",
        "environments": {"Development": {"/": {"KEY": "value"}, "/backend": {"K": "v"}}}}]}``.
        The environments listed are the app's (Development, Staging and Production when none
        are). A value is a string, or an object ``{"value": "...", "comment": "...",
        "tags": [...], "type": "config"}``; numbers, booleans and lists are stored as JSON.

        Args:
            data: The parsed seed.
            legacy_auth: As for the constructor.

        Returns:
            A new, not yet serving, FakePhase.

        Raises:
            ValueError: The seed does not have that shape.
        """
        fake = cls(legacy_auth=legacy_auth)
        apps = data.get("apps") if isinstance(data, Mapping) else None
        if not isinstance(apps, list):
            raise ValueError('seed must be an object with an "apps" list')
        for position, app in enumerate(apps):
            if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
                raise ValueError(f'seed app #{position} must be an object with a "name"')
            environments = app.get("environments")
            if environments is None:
                environments = {}
            if not isinstance(environments, Mapping):
                raise ValueError(f'seed app {app["name"]!r}: "environments" must be an object')
            app_id = fake.add_app(
                app["name"],
                sse=bool(app.get("sse", True)),
                environments=list(environments) or DEFAULT_ENVIRONMENTS,
                app_id=app.get("id"),
                description=app.get("description"),
            )
            for env_name, folders in environments.items():
                if folders is None:
                    continue
                if not isinstance(folders, Mapping):
                    raise ValueError(f"seed environment {env_name!r} must map paths to objects")
                for folder, entries in folders.items():
                    if not isinstance(entries, Mapping):
                        raise ValueError(f"seed path {folder!r} must map keys to values")
                    for key, spec in entries.items():
                        fake._seed_secret(app_id, env_name, folder, key, spec)
        return fake

    def _seed_secret(self, app_id: str, env: str, folder: str, key: str, spec: Any) -> None:
        comment, tags, kind = "", [], "secret"
        if isinstance(spec, Mapping):
            value = spec.get("value", "")
            comment = str(spec.get("comment", ""))
            tags = [str(tag) for tag in spec.get("tags", [])]
            kind = str(spec.get("type", "secret"))
        else:
            value = spec
        if not isinstance(value, str):
            value = json.dumps(value)
        self.set_secret(app_id, env, key, value, path=folder, tags=tags, comment=comment, type=kind)

    # ------------------------------------------------------------ serving

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve real HTTP/1.1 (keep-alive) on 127.0.0.1 while the block runs.

        Stopping takes well under a second, even with idle, delayed or hanging
        connections open: they are shut down.

        Args:
            port: The port; 0 picks a free one.

        Yields:
            The root URL, e.g. ``http://127.0.0.1:54321`` (so ``PHASE_HOST=url`` works).

        Raises:
            RuntimeError: This fake is serving already.
        """
        server = _server.FakePhaseServer(self.handle, port=port)
        with self._lock:
            if self._server is not None:
                raise RuntimeError("this FakePhase is serving already")
            self._server = server
        try:
            url = server.start()
        except BaseException:
            with self._lock:
                self._server = None
            raise
        try:
            yield url
        finally:
            self._wake.set()
            try:
                server.stop()
            finally:
                with self._lock:
                    self._past_errors.extend(server.errors)
                    self._server = None
                self._wake.clear()

    @property
    def url(self) -> str:
        """The root URL while :meth:`serve` runs.

        Raises:
            RuntimeError: Not serving.
        """
        server = self._server
        if server is None or server.url is None:
            raise RuntimeError("this FakePhase is not serving; use `with fake.serve():`")
        return server.url

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of exceptions the fake raised while serving (each answered with a 500).

        A non-empty list means a bug in the fake; the ``fake_phase`` fixture fails on it.
        """
        with self._lock:
            server = self._server
            current = server.errors if server is not None else []
            return [*self._past_errors, *current]

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that calls :meth:`handle` in process (sync and async clients).

        Faults map to what httpx raises on a real socket: ``drop`` and unparseable ``raw``
        bytes raise ``httpx.RemoteProtocolError``, ``hang`` raises ``httpx.ReadTimeout`` at
        once, ``delay`` sleeps.

        Returns:
            The transport, for ``httpx.Client(transport=...)``.
        """
        return httpx.MockTransport(self._transport_handler)

    def _transport_handler(self, request: httpx.Request) -> httpx.Response:
        headers: dict[str, str] = {}
        for name, value in request.headers.multi_items():
            lowered = name.lower()
            headers[lowered] = f"{headers[lowered]}, {value}" if lowered in headers else value
        target = request.url.raw_path.decode("ascii", errors="replace")
        response = self.handle(request.method, target, headers, request.content)
        if response.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        if response.hang is not None:
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        status, header_items, body = response.status, list(response.headers.items()), response.body
        if response.raw is not None:
            parsed = _parse_raw_response(response.raw)
            if parsed is None:
                raise httpx.RemoteProtocolError(
                    "Server sent a malformed response.", request=request
                )
            status, header_items, body = parsed
        elif request.method != "HEAD":
            declared = next((v for k, v in header_items if k.lower() == "content-length"), None)
            if declared is not None:
                if not declared.strip().isdigit():
                    raise httpx.RemoteProtocolError("Invalid Content-Length.", request=request)
                length = int(declared)
                if length > len(body):
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body",
                        request=request,
                    )
                body = body[:length]
        return httpx.Response(status, headers=header_items, content=body, request=request)

    # ------------------------------------------------------------ request handling

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        client_port: int | None = None,
    ) -> FakeResponse:
        """Answer one request: the core shared by the server and the transport.

        Records the request, applies a pending :meth:`fail_next`, and otherwise answers as
        Phase would.

        Args:
            method: The HTTP method.
            target: The request target: path and query string, as sent.
            headers: Request headers (any case).
            body: The request body.
            client_port: The client's TCP port, for the request log.

        Returns:
            The response, or a fault for the caller to act out (drop, hang, raw bytes).
        """
        method = method.upper()
        if target.startswith(("http://", "https://")):
            # An absolute-form target (a proxy request): keep path and query only.
            slash = target.find("/", target.find("//") + 2)
            target = target[slash:] if slash != -1 else "/"
        raw_path, _, query_string = target.partition("#")[0].partition("?")
        lowered = {name.lower(): value for name, value in headers.items()}
        query = dict(parse_qsl(query_string, keep_blank_values=True, errors="replace"))
        self._record(method, raw_path or "/", query, lowered, body, client_port)
        fault = self._take_fault()
        if fault is not None:
            if fault.delay:
                self._wake.wait(fault.delay)
            if fault.drop:
                return FakeResponse(0, drop=True)
            if fault.hang is not None:
                return FakeResponse(0, hang=fault.hang)
            if fault.raw is not None:
                return FakeResponse(0, raw=fault.raw)
            if fault.status is not None:
                return _head_only(method, _fault_response(fault))
        try:
            with self._lock:
                response = self._dispatch(
                    method, raw_path or "/", query_string, query, lowered, body
                )
        except _Reply as reply:
            response = reply.response
        return _head_only(method, response)

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        client_port: int | None,
    ) -> None:
        authorization = headers.get("authorization", "")
        parts = authorization.split(" ")
        token_type = (
            parts[1]
            if len(parts) >= 3 and parts[0].lower() == "bearer" and parts[1] in _TOKEN_TYPES
            else None
        )
        safe_headers = {name: value for name, value in headers.items() if name != "authorization"}
        record = RecordedRequest(
            method=method,
            path=path,
            query=query,
            token_type=token_type,
            client_port=client_port,
            headers=safe_headers,
            timestamp=self._clock(),
            body=bytes(body),
        )
        with self._lock:
            self._requests.append(record)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.popleft()
            return fault

    def _dispatch(
        self,
        method: str,
        raw_path: str,
        query_string: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> FakeResponse:
        path = unquote(raw_path, errors="replace")
        route = self._route(path)
        if route is None:
            if self.legacy_auth and not path.endswith("/") and self._route(path + "/"):
                # Django's APPEND_SLASH redirect, which servers before v2.69.0 had.
                location = raw_path + "/" + (f"?{query_string}" if query_string else "")
                return FakeResponse(
                    301,
                    {
                        "Content-Type": "text/html; charset=utf-8",
                        "Location": location,
                        "X-Frame-Options": "DENY",
                        "Content-Length": "0",
                    },
                )
            return _html(404, _NOT_FOUND_HTML)
        name, detail_id = route
        if name == "root":
            message = (
                "API is alive. Please see https://docs.phase.dev/public-api for documentation "
                "on available endpoints."
            )
            return _plain_json(200, {"message": message, "status": "ok"})
        if name == "health":
            return _plain_json(200, {"status": "alive", "version": SERVER_VERSION})

        allow = _SECRETS_ALLOW if name == "secrets" else _READ_ONLY_ALLOW
        if not _accepts_json(headers.get("accept")):
            return _error(406, "Could not satisfy the request Accept header.", allow)
        params = {_underscoreize(k): v for k, v in query.items()}
        context = self._authenticate(headers, params, detail_id, allow)
        self._throttle(context.account, allow)

        if name == "secrets":
            return self._secrets_view(method, context, params, body)
        if method == "OPTIONS":
            return _json(200, {"name": name.title(), "renders": ["application/json"]}, allow)
        if method not in ("GET", "HEAD"):
            return _error(405, f'Method "{method}" not allowed.', allow)
        if name == "apps":
            return self._apps_view(context)
        if name == "app":
            if context.app is None:  # not reached: the detail URL always names an app
                return _error(404, f"App with ID {detail_id} not found", allow)
            if not context.app.sse:
                return _error(403, _SSE_DISABLED + ".", allow)
            return _json(200, _app_item(context.app), allow)
        # environments
        if context.app is None:
            return _error(403, "Could not resolve app from request.", allow)
        if not context.app.sse:
            return _error(403, _SSE_DISABLED + ".", allow)
        visible = [env for env in context.app.envs if _can_access(context.account, env)]
        return _json(200, {"data": [_env_item(env) for env in visible]}, allow)

    def _route(self, path: str) -> tuple[str, str | None] | None:
        if path.startswith("/service/"):
            path = path[len("/service") :]
        if path == "/health/":
            return "health", None
        if path.startswith("/public/"):
            path = path[len("/public") :]
        if path == "/":
            return "root", None
        if path == "/v1/secrets/":
            return "secrets", None
        if self.legacy_auth:
            return None
        if path == "/v1/apps/":
            return "apps", None
        if path == "/v1/environments/":
            return "environments", None
        match = _APP_DETAIL.fullmatch(path)
        if match:
            return "app", match.group(1)
        return None

    # ------------------------------------------------------------ authentication

    def _unauthenticated(self, message: str, allow: str) -> _Reply:
        if self.legacy_auth:
            return _Reply(_error(403, message, allow))
        return _Reply(_error(401, message, allow, {"WWW-Authenticate": "Bearer"}))

    def _authenticate(
        self,
        headers: dict[str, str],
        params: dict[str, str],
        detail_app_id: str | None,
        allow: str,
    ) -> _Context:
        authorization = headers.get("authorization", "")
        if not authorization:
            raise self._unauthenticated(_NOT_PROVIDED, allow)
        parts = authorization.split(" ")
        if self.legacy_auth and len(parts) < 3:
            # Old servers indexed the split header blindly: an IndexError, a 500 page.
            raise _Reply(_html(500, _SERVER_ERROR_HTML))
        if (
            len(parts) < 3
            or parts[0].lower() != "bearer"
            or not parts[1]
            or not parts[2]
            or parts[1] not in _TOKEN_TYPES
        ):
            raise self._unauthenticated(_INVALID_TOKEN, allow)
        account = self._tokens.get(parts[2])
        if account is None or account.revoked or account.kind != parts[1]:
            raise self._unauthenticated(_TOKEN_GONE, allow)

        app: _App | None = None
        env: _Environment | None = None
        secret_id = None if detail_app_id else (headers.get("secret-id") or params.get("secret_id"))
        if secret_id:
            env = self._env_of_secret(secret_id)
            if env is None:
                raise _Reply(_error(404, "Secret not found", allow))
            app = self._apps[env.app_id]
        elif headers.get("environment") and not detail_app_id:
            env = self._envs.get(headers["environment"])
            if env is None:
                raise self._unauthenticated("Environment not found", allow)
            app = self._apps[env.app_id]
        else:
            app_id = detail_app_id or params.get("app_id")
            env_name = None if detail_app_id else params.get("env")
            if self.legacy_auth and not app_id:
                raise _Reply(_error(403, "Missing app_id parameter", allow))
            if self.legacy_auth and not env_name:
                raise _Reply(_error(403, "Missing env parameter", allow))
            if app_id:
                app = self._apps.get(app_id)
                if app is None:
                    raise _Reply(_error(404, f"App with ID {app_id} not found", allow))
                if env_name:
                    env = app.env_named(env_name)
                    if env is None:
                        message = f"Environment '{env_name}' not found in App {app_id}"
                        raise _Reply(_error(404, message, allow))

        kind = account.kind
        if env is not None:
            if not _can_access(account, env):
                if kind == "User":
                    raise _Reply(_error(403, "User cannot access this environment", allow))
                if kind == "ServiceAccount":
                    message = "Service account cannot access this environment"
                else:
                    message = "Service token cannot access this environment"
                raise self._unauthenticated(message, allow)
        elif app is not None:
            if kind == "Service":
                raise self._unauthenticated(_SERVICE_TOKEN_CONTEXT, allow)
            if not _can_access_app(account, app):
                if kind == "User":
                    raise _Reply(_error(403, "User cannot access this app", allow))
                raise self._unauthenticated("Service account cannot access this app", allow)
        elif kind == "Service":
            raise self._unauthenticated(_SERVICE_TOKEN_CONTEXT, allow)
        return _Context(account, app, env)

    def _throttle(self, account: _Account, allow: str) -> None:
        if self._rate is None:
            return
        count, duration = self._rate
        now = self._clock()
        history = self._history.setdefault(account.id, deque())
        while history and history[-1] <= now - duration:
            history.pop()
        if len(history) >= count:
            # DRF SimpleRateThrottle.wait(): time until a slot frees, shared out.
            remaining = duration - (now - history[-1]) if history else duration
            available = count - len(history) + 1
            message = "Request was throttled."
            extra: dict[str, str] = {}
            if available > 0:
                wait = math.ceil(remaining / available)
                unit = "second" if wait == 1 else "seconds"
                message += f" Expected available in {wait} {unit}."
                if wait:
                    extra["Retry-After"] = str(wait)
            raise _Reply(_error(429, message, allow, extra))
        history.appendleft(now)

    # ------------------------------------------------------------ views

    def _apps_view(self, context: _Context) -> FakeResponse:
        apps = [
            app for app in reversed(self._apps.values()) if _can_access_app(context.account, app)
        ]
        apps.sort(key=lambda app: app.created_at, reverse=True)
        return _json(200, {"data": [_app_item(app) for app in apps]}, _READ_ONLY_ALLOW)

    def _secrets_view(
        self, method: str, context: _Context, params: dict[str, str], body: bytes
    ) -> FakeResponse:
        allow = _SECRETS_ALLOW
        if method not in _SECRETS_METHODS:
            return _error(403, f"Unsupported HTTP method: {method}", allow)
        env = context.env
        if env is None:
            return _error(403, _ENV_CONTEXT, allow)
        if not self._apps[env.app_id].sse:
            return _error(400, _SSE_DISABLED, allow)
        if method == "GET":
            return self._list_secrets(context, env, params)
        payload = _parse_body(body, allow)
        if method == "POST":
            return self._create_secrets(context, env, payload)
        if method == "PUT":
            return self._update_secrets(context, env, payload)
        return self._delete_secrets(env, payload)

    def _list_secrets(
        self, context: _Context, env: _Environment, params: dict[str, str]
    ) -> FakeResponse:
        lease_ttl = params.get("lease_ttl")
        if lease_ttl:
            try:
                int(lease_ttl)
            except ValueError:
                return _error(400, "lease_ttl must be a valid integer (seconds)", _SECRETS_ALLOW)
        key = params.get("key")
        path = params.get("path")
        tags = params.get("tags")
        folder_path = normalize_path(path) if path else None
        wanted_tags = set(tags.split(",")) if tags else None
        items: list[dict[str, Any]] = []
        for secret in env.secrets.values():
            if key and secret.key != key.upper():
                continue
            if folder_path is not None and secret.path != folder_path:
                continue
            repeat = 1
            if wanted_tags is not None:
                # tags__in without .distinct(): one row per matching tag.
                repeat = sum(1 for tag in secret.tags if tag in wanted_tags)
            if repeat:
                item = self._secret_item(secret, env, context.account, check_access=True)
                items.extend([item] * repeat)
        if _truthy_flag(params.get("dynamic")) or _truthy_flag(params.get("include_dynamic")):
            for dynamic in env.dynamic.values():
                if folder_path is None or dynamic.path == folder_path:
                    items.append(_dynamic_item(dynamic))
        return _json(200, items, _SECRETS_ALLOW)

    def _create_secrets(
        self, context: _Context, env: _Environment, payload: dict[str, Any]
    ) -> FakeResponse:
        allow = _SECRETS_ALLOW
        entries = payload.get("secrets")
        if not isinstance(entries, list) or not entries:
            return _error(400, "'secrets' must be a non-empty list.", allow)
        prepared: list[tuple[str, str, str, str, str, Any, dict[str, Any] | None]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                return _error(400, "Each entry in 'secrets' must be an object.", allow)
            key = entry.get("key")
            if not isinstance(key, str) or not key:
                return _error(400, "Each secret requires a non-empty 'key'.", allow)
            value = entry.get("value")
            if not isinstance(value, str):
                return _error(400, "Each secret requires a 'value' string.", allow)
            kind = entry.get("type", "secret")
            if kind not in _SECRET_TYPES:
                return _error(400, _invalid_type(kind), allow)
            override = entry.get("override")
            if "override" in entry:
                problem = _override_problem(override)
                if problem:
                    return _error(400, problem, allow)
            raw_path = entry.get("path", "/")
            folder_path = normalize_path(raw_path) if isinstance(raw_path, str) else "/"
            comment = entry.get("comment", "")
            prepared.append(
                (
                    key,
                    value,
                    folder_path,
                    comment if isinstance(comment, str) else str(comment),
                    kind,
                    entry.get("tags"),
                    override if "override" in entry else None,
                )
            )
        for key, _, folder_path, *_rest in prepared:
            if self._clashes(env, folder_path, key.upper(), exclude=None):
                return _spaced_error(409, "Duplicate secret found", allow)
        created: list[_Secret] = []
        for key, value, folder_path, comment, kind, raw_tags, override in prepared:
            secret = self._create_secret(env, key, value, folder_path, comment, [], kind)
            created.append(secret)
            tags = _clean_tags(raw_tags)
            if isinstance(tags, str):
                return _error(400, tags, allow)
            secret.tags = tags
            if override is not None and context.account.kind == "User":
                self._upsert_override(
                    context.account,
                    secret,
                    override["value"],
                    bool(override.get("isActive", True)),
                )
        items = [self._secret_item(s, env, context.account, check_access=False) for s in created]
        return _json(200, items, allow)

    def _update_secrets(
        self, context: _Context, env: _Environment, payload: dict[str, Any]
    ) -> FakeResponse:
        allow = _SECRETS_ALLOW
        entries = payload.get("secrets")
        if not isinstance(entries, list) or not entries:
            return _error(400, "'secrets' must be a non-empty list.", allow)
        for entry in entries:
            if not isinstance(entry, dict):
                return _error(400, "Each entry in 'secrets' must be an object.", allow)
            if "id" not in entry:
                return _error(400, "Secret ID not provided", allow)
        targets: list[tuple[_Secret, dict[str, Any]]] = []
        for entry in entries:
            secret = env.secrets.get(entry["id"]) if isinstance(entry["id"], str) else None
            if secret is None:
                return _error(404, f"Secret not found: {entry['id']}", allow)
            if "key" in entry and (not isinstance(entry["key"], str) or not entry["key"]):
                return _error(400, "Each secret requires a non-empty 'key'.", allow)
            if "value" in entry and not isinstance(entry["value"], str):
                return _error(400, "Each secret requires a 'value' string.", allow)
            if "type" in entry:
                if entry["type"] not in _SECRET_TYPES:
                    return _error(400, _invalid_type(entry["type"]), allow)
                if secret.type == "sealed" and entry["type"] != "sealed":
                    message = (
                        "Sealed secrets cannot be unsealed. Delete and recreate the secret instead."
                    )
                    return _error(400, message, allow)
            if "override" in entry:
                problem = _override_problem(entry["override"])
                if problem:
                    return _error(400, problem, allow)
            new_key = entry["key"].upper() if "key" in entry else secret.key
            raw_path = entry.get("path")
            new_path = normalize_path(raw_path) if isinstance(raw_path, str) else secret.path
            if ("key" in entry or "path" in entry) and self._clashes(
                env, new_path, new_key, exclude=secret.id
            ):
                return _spaced_error(409, "Duplicate secret found", allow)
            targets.append((secret, entry))
        now = _now()
        for secret, entry in targets:
            if "key" in entry:
                secret.key = entry["key"].upper()
                secret.key_digest = _digest(secret.key, env.salt)
            if "value" in entry and secret.type != "sealed":
                secret.value = entry["value"]
            if isinstance(entry.get("comment"), str):
                secret.comment = entry["comment"]
            if isinstance(entry.get("path"), str):
                secret.path = normalize_path(entry["path"])
                secret.folder = self._folder(env, secret.path)
            if "type" in entry:
                secret.type = entry["type"]
            if "tags" in entry:
                tags = _clean_tags(entry["tags"])
                if isinstance(tags, str):
                    return _error(400, tags, allow)
                secret.tags = tags
            secret.version += 1
            secret.updated_at = now
            override = entry.get("override")
            if override is not None and context.account.kind == "User":
                self._upsert_override(
                    context.account,
                    secret,
                    override["value"],
                    bool(override.get("isActive", True)),
                )
        items = [
            self._secret_item(secret, env, context.account, check_access=False)
            for secret, _ in targets
        ]
        return _json(200, items, allow)

    def _delete_secrets(self, env: _Environment, payload: dict[str, Any]) -> FakeResponse:
        allow = _SECRETS_ALLOW
        ids = payload.get("secrets")
        if not isinstance(ids, list) or not ids:
            return _error(400, "'secrets' must be a non-empty list of secret IDs.", allow)
        missing = [str(i) for i in ids if not (isinstance(i, str) and i in env.secrets)]
        if missing:
            if self.legacy_auth:
                return _error(404, "Secret does not exist", allow)
            message = "Secret(s) not found in this environment: " + ", ".join(missing)
            return _error(404, message, allow)
        distinct = list(dict.fromkeys(ids))
        for secret_id in distinct:
            self._remove_secret(env.secrets[secret_id])
        count = len(distinct)
        noun = "secret" if count == 1 and not self.legacy_auth else "secrets"
        return _json(200, {"message": f"Deleted {count} {noun}"}, allow)

    # ------------------------------------------------------------ serialisation

    def _secret_item(
        self, secret: _Secret, env: _Environment, account: _Account, *, check_access: bool
    ) -> dict[str, Any]:
        reader = account if check_access else None
        override = None
        if account.kind == "User":
            stored = self._overrides.get((account.id, secret.id))
            if stored is not None:
                override = {
                    "id": stored.id,
                    "value": self._resolve(stored.value, env, reader, ()),
                    "isActive": stored.is_active,
                    "createdAt": _iso(stored.created_at),
                    "updatedAt": _iso(stored.updated_at),
                }
        return {
            "id": secret.id,
            "key": secret.key,
            "value": self._resolve(secret.value, env, reader, (secret.id,)),
            "comment": secret.comment,
            "tags": list(secret.tags),
            "override": override,
            "type": secret.type,
            "lifecycle": "static",
            "path": secret.path,
            "keyDigest": secret.key_digest,
            "version": secret.version,
            "createdAt": _iso(secret.created_at),
            "updatedAt": _iso(secret.updated_at),
            "environment": secret.env_id,
            "folder": secret.folder,
        }

    # ------------------------------------------------------------ references

    def _resolve(
        self,
        value: str,
        env: _Environment,
        reader: _Account | None,
        chain: tuple[str, ...],
    ) -> str:
        return self._resolve_in(value, env, reader, chain, _Budget())[0]

    def _resolve_in(
        self,
        value: str,
        env: _Environment,
        reader: _Account | None,
        chain: tuple[str, ...],
        budget: _Budget,
    ) -> tuple[str, bool]:
        """Resolve references in ``value`` (contract §5).

        Returns the value and whether a reference led into a cycle or past the depth limit;
        such a reference stays literal, and so does every reference that leads to it.
        """
        if "${" not in value:
            return value, False
        tainted = False
        app = self._apps[env.app_id]

        def substitute(ref: str, target: _Environment, keyref: str) -> None:
            nonlocal value, tainted
            found = self._lookup(target, keyref, reader, chain, budget)
            if found is None:
                return
            text, bad = found
            if bad:
                tainted = True
                return
            replaced = value.replace(ref, text)
            if len(replaced) <= _MAX_RESOLVED_CHARS:
                value = replaced

        # Each distinct reference once: str.replace changes all its occurrences anyway.
        for match in _distinct(_CROSS_APP_REF.finditer(value)):
            app_name, env_name, keyref = match.groups()
            named = [a for a in self._apps.values() if a.name.lower() == app_name.lower()]
            if len(named) != 1 or not named[0].sse:
                continue
            target = named[0].env_named(env_name)
            if target is None:
                continue
            if reader is not None and not _can_access(reader, target):
                return value, tainted
            substitute(match.group(0), target, keyref)
        for match in _distinct(_CROSS_ENV_REF.finditer(value)):
            env_name, keyref = match.groups()
            target = app.env_named(env_name)
            if target is None:
                continue
            if reader is not None and not _can_access(reader, target):
                return value, tainted
            substitute(match.group(0), target, keyref)
        for match in _distinct(_LOCAL_REF.finditer(value)):
            substitute(match.group(0), env, match.group(1))
        return value, tainted

    def _lookup(
        self,
        env: _Environment,
        keyref: str,
        reader: _Account | None,
        chain: tuple[str, ...],
        budget: _Budget,
    ) -> tuple[str, bool] | None:
        folder_path, key_name = _decompose_keyref(keyref)
        # The server digests the key name as written: ${db_host} finds nothing.
        secret = self._find_secret(env, folder_path, key_name)
        if secret is None:
            return None
        budget.lookups -= 1
        if secret.id in chain or len(chain) > MAX_REFERENCE_DEPTH or budget.lookups < 0:
            return "", True
        return self._resolve_in(secret.value, env, reader, (*chain, secret.id), budget)

    # ------------------------------------------------------------ internals

    def _app(self, app_id: str) -> _App:
        app = self._apps.get(app_id)
        if app is None:
            raise KeyError(f"no app with id {app_id!r}")
        return app

    def _env(self, app_id: str, env: str) -> _Environment:
        environment = self._app(app_id).env_named(env)
        if environment is None:
            raise KeyError(f"app {app_id!r} has no environment {env!r}")
        return environment

    def _env_of_secret(self, secret_id: str) -> _Environment | None:
        secret = self._secret_index.get(secret_id)
        if secret is not None:
            return self._envs[secret.env_id]
        return next((env for env in self._envs.values() if secret_id in env.dynamic), None)

    def _find_secret(self, env: _Environment, folder_path: str, key: str) -> _Secret | None:
        for secret in env.secrets.values():
            if secret.path == folder_path and secret.key == key:
                return secret
        return None

    def _clashes(
        self, env: _Environment, folder_path: str, key: str, *, exclude: str | None
    ) -> bool:
        for secret in env.secrets.values():
            if secret.id != exclude and secret.path == folder_path and secret.key == key:
                return True
        for dynamic in env.dynamic.values():
            if dynamic.path == folder_path and any(e["keyName"] == key for e in dynamic.key_map):
                return True
        return False

    def _folder(self, env: _Environment, folder_path: str) -> str | None:
        if folder_path == "/":
            return None
        return self._folders.setdefault((env.id, folder_path), str(uuid.uuid4()))

    def _create_secret(
        self,
        env: _Environment,
        key: str,
        value: str,
        folder_path: str,
        comment: str,
        tags: list[str],
        kind: str,
    ) -> _Secret:
        now = _now()
        upper = key.upper()
        secret = _Secret(
            id=str(uuid.uuid4()),
            env_id=env.id,
            key=upper,
            key_digest=_digest(upper, env.salt),
            value=value,
            comment=comment,
            tags=tags,
            type=kind,
            path=folder_path,
            folder=self._folder(env, folder_path),
            version=1,
            created_at=now,
            updated_at=now,
        )
        env.secrets[secret.id] = secret
        self._secret_index[secret.id] = secret
        return secret

    def _remove_secret(self, secret: _Secret) -> None:
        self._envs[secret.env_id].secrets.pop(secret.id, None)
        self._secret_index.pop(secret.id, None)
        for owner_and_secret in [k for k in self._overrides if k[1] == secret.id]:
            del self._overrides[owner_and_secret]

    def _upsert_override(
        self, account: _Account, secret: _Secret, value: str, active: bool
    ) -> None:
        now = _now()
        existing = self._overrides.get((account.id, secret.id))
        if existing is None:
            self._overrides[(account.id, secret.id)] = _Override(
                str(uuid.uuid4()), value, active, now, now
            )
        else:
            existing.value = value
            existing.is_active = active
            existing.updated_at = now

    def _add_account(
        self,
        kind: str,
        prefix: str,
        envs: Iterable[str] | None,
        apps: Iterable[str] | None,
    ) -> str:
        if isinstance(envs, str) or isinstance(apps, str):
            raise TypeError("envs and apps take an iterable of names or ids, not one string")
        account = _Account(
            id=str(uuid.uuid4()),
            kind=kind,
            envs=None if envs is None else frozenset(e.lower() for e in envs),
            apps=None if apps is None else frozenset(apps),
        )
        value = secrets.token_hex(32)
        token = ":".join((prefix, value, *(secrets.token_hex(32) for _ in range(3))))
        with self._lock:
            self._tokens[value] = account
        return token


# ---------------------------------------------------------------- module helpers


def _distinct(matches: Iterable[re.Match[str]]) -> list[re.Match[str]]:
    seen: dict[str, re.Match[str]] = {}
    for match in matches:
        seen.setdefault(match.group(0), match)
    return list(seen.values())


def _dedupe(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(str(tag) for tag in tags))


def _digest(key: str, salt: bytes) -> str:
    return hashlib.blake2b(key.encode(), key=salt, digest_size=32).hexdigest()


def _can_access(account: _Account, env: _Environment) -> bool:
    if account.apps is not None and env.app_id not in account.apps:
        return False
    return account.envs is None or env.name.lower() in account.envs


def _can_access_app(account: _Account, app: _App) -> bool:
    return any(_can_access(account, env) for env in app.envs)


def _accepts_json(accept: str | None) -> bool:
    if accept is None:
        return True
    for media_range in accept.split(","):
        media_type = media_range.split(";", 1)[0].strip().lower()
        if media_type in ("*/*", "application/*", "application/json"):
            return True
    return False


def _standard_headers(content_type: str, length: int, allow: str | None) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if allow is not None:
        headers["Allow"] = allow
    headers.update(
        {
            "X-Frame-Options": "DENY",
            "Content-Length": str(length),
            "Vary": "origin",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
    )
    return headers


def _with_extra(
    status: int, body: bytes, allow: str | None, extra: Mapping[str, str] | None
) -> FakeResponse:
    headers = _standard_headers("application/json", len(body), allow)
    if extra:
        # WWW-Authenticate and Retry-After come right after Content-Type, as recorded.
        ordered = {"Content-Type": headers.pop("Content-Type"), **extra}
        headers = {**ordered, **headers}
    return FakeResponse(status, headers, body)


def _json(status: int, payload: Any, allow: str) -> FakeResponse:
    return _with_extra(status, _compact(payload), allow, None)


def _error(
    status: int, message: str, allow: str, extra: Mapping[str, str] | None = None
) -> FakeResponse:
    return _with_extra(status, _compact({"error": message}), allow, extra)


def _spaced_error(status: int, message: str, allow: str) -> FakeResponse:
    # Errors the server builds with Django's JsonResponse keep json.dumps' default spacing.
    return _with_extra(status, _spaced({"error": message}), allow, None)


def _plain_json(status: int, payload: Any) -> FakeResponse:
    return _with_extra(status, _spaced(payload), None, None)


def _html(status: int, body: bytes) -> FakeResponse:
    return FakeResponse(
        status, _standard_headers("text/html; charset=utf-8", len(body), None), body
    )


def _head_only(method: str, response: FakeResponse) -> FakeResponse:
    if method != "HEAD" or not response.body:
        return response
    return FakeResponse(response.status, response.headers, b"", close=response.close)


def _fault_response(fault: _Fault) -> FakeResponse:
    status = fault.status if fault.status is not None else 503
    body = fault.body
    if body is None:
        if status == 500:
            reason = "Internal server error."
        else:
            try:
                reason = HTTPStatus(status).phrase
            except ValueError:
                reason = "Error"
        body = _compact({"error": reason})
    given = fault.headers or {}
    names = {name.lower() for name in given}
    headers: dict[str, str] = {}
    if "content-type" not in names:
        headers["Content-Type"] = "application/json"
    headers.update(given)
    lying = "content-length" in names
    if not lying:
        headers["Content-Length"] = str(len(body))
    elif "connection" not in names:
        # The connection is closed after a response whose length may be a lie: say so, or a
        # keep-alive client could send its next request into the closing socket.
        headers["Connection"] = "close"
    return FakeResponse(status, headers, body, close=lying)


def _parse_body(body: bytes, allow: str) -> dict[str, Any]:
    if not body:
        raise _Reply(_error(400, "Request body is required.", allow))
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Reply(_error(400, "Request body must be valid JSON.", allow)) from None
    if not isinstance(payload, dict):
        raise _Reply(_error(400, "Request body must be a JSON object.", allow))
    return payload


def _invalid_type(kind: Any) -> str:
    return f"Invalid 'type': '{kind}'. Must be one of {list(_SECRET_TYPES)}."


def _override_problem(override: Any) -> str | None:
    if not isinstance(override, dict):
        return "'override' must be a JSON object."
    if not isinstance(override.get("value"), str):
        return "'override.value' must be a string."
    if "isActive" in override and not isinstance(override["isActive"], bool):
        return "'override.isActive' must be a boolean."
    return None


def _clean_tags(raw: Any) -> list[str] | str:
    """The tag names to set, or the error message for a tag name that is too long."""
    if not isinstance(raw, list):
        return []
    names: list[str] = []
    for tag in raw:
        if not isinstance(tag, str) or not tag.strip():
            continue
        if len(tag) > 64:
            return f"Tag name exceeds 64 characters: '{tag[:32]}'…"
        if tag not in names:
            names.append(tag)
    return names


def _app_item(app: _App) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "sseEnabled": app.sse,
        "createdAt": _iso(app.created_at),
        "updatedAt": _iso(app.updated_at),
    }


def _env_item(env: _Environment) -> dict[str, Any]:
    return {
        "id": env.id,
        "name": env.name,
        "envType": env.env_type,
        "index": env.index,
        "createdAt": _iso(env.created_at),
        "updatedAt": _iso(env.updated_at),
    }


def _dynamic_item(dynamic: _DynamicSecret) -> dict[str, Any]:
    return {
        "id": dynamic.id,
        "name": dynamic.name,
        "type": "dynamic",
        "description": dynamic.description,
        "environment": dynamic.env_id,
        "folder": dynamic.folder,
        "path": dynamic.path,
        "defaultTtl": dynamic.default_ttl,
        "maxTtl": dynamic.max_ttl,
        "provider": dynamic.provider,
        "keyMap": [dict(entry) for entry in dynamic.key_map],
        "createdAt": _iso(dynamic.created_at),
        "updatedAt": _iso(dynamic.updated_at),
        "deletedAt": None,
        "lease": None,
    }


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: [^\r\n]*)?")
_HEADER_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _parse_raw_response(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """Parse raw response bytes as an HTTP/1.1 client would, or None if it would fail."""
    head, separator, rest = raw.partition(b"\r\n\r\n")
    if not separator:
        return None
    lines = head.split(b"\r\n")
    status_match = _STATUS_LINE.fullmatch(lines[0])
    if status_match is None:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            return None
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    lengths = {v for k, v in headers if k.lower() == "content-length"}
    if len(lengths) > 1:
        return None
    body = rest
    if lengths:
        declared = lengths.pop()
        if not declared.isdigit() or int(declared) > len(rest):
            return None
        body = rest[: int(declared)]
    return int(status_match.group(1)), headers, body
