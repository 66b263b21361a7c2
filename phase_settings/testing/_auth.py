"""Routing and authentication: which view a path names, and who is asking for what.

Both APIs authenticate alike (``PhaseTokenAuthentication``): the ``Authorization`` header, then
the environment from ``Secret-Id``, the ``Environment`` header or ``?app_id=&env=``, then the
caller's access to it. Only the wording of the answers differs between the APIs, so the
checks here take an :class:`Errors` that builds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from . import _wire
from ._state import Account, App, Environment, Store, can_access, can_access_app
from ._wire import FakeResponse, Reply

TOKEN_TYPES = ("User", "Service", "ServiceAccount")
_NOT_PROVIDED = "Authentication credentials were not provided."
_INVALID_TOKEN = "Invalid token"
TOKEN_GONE = "Token expired or deleted"
_SERVICE_TOKEN_CONTEXT = "Service tokens require an environment context"
_APP_DETAIL = re.compile(r"/v1/apps/([^/]+)/")


def route(path: str, legacy: bool) -> tuple[str, str | None] | None:
    """The view a (percent-decoded) path names, with the app id of a detail URL.

    The server strips an optional ``/service`` prefix; trailing slashes are required.
    """
    if path.startswith("/service/"):
        path = path[len("/service") :]
    if path == "/health/":
        return "health", None
    if path == "/secrets/":
        return "e2ee_secrets", None
    if path == "/secrets/tokens/":
        return "e2ee_tokens", None
    if path.startswith("/public/"):
        path = path[len("/public") :]
    if path == "/":
        return "root", None
    if path == "/v1/secrets/":
        return "secrets", None
    if legacy:
        return None
    if path == "/v1/apps/":
        return "apps", None
    if path == "/v1/environments/":
        return "environments", None
    match = _APP_DETAIL.fullmatch(path)
    if match:
        return "app", match.group(1)
    return None


def bearer(authorization: str) -> tuple[str, str] | None:
    """``(type word, token value)`` of a well-formed ``Bearer <Type> <value>`` header."""
    parts = authorization.split(" ")
    if (
        len(parts) < 3
        or parts[0].lower() != "bearer"
        or not parts[1]
        or not parts[2]
        or parts[1] not in TOKEN_TYPES
    ):
        return None
    return parts[1], parts[2]


class Errors(Protocol):
    """How one API words the answers of authentication."""

    def error(self, status: int, message: str) -> FakeResponse: ...

    def unauthenticated(self, message: str) -> Reply: ...


@dataclass(frozen=True)
class RestErrors:
    """The public REST API's answers (``legacy``: a server before v2.69.0)."""

    allow: str
    legacy: bool = False

    def error(self, status: int, message: str) -> FakeResponse:
        return _wire.error(status, message, self.allow)

    def unauthenticated(self, message: str) -> Reply:
        if self.legacy:
            return Reply(_wire.error(403, message, self.allow))
        return Reply(_wire.error(401, message, self.allow, {"WWW-Authenticate": "Bearer"}))


@dataclass
class Context:
    """Who is asking (the account) and about which app and environment."""

    account: Account
    app: App | None
    env: Environment | None


def account_of(store: Store, authorization: str) -> Account | None:
    """The live account a well-formed header names (None: unknown, revoked, wrong type)."""
    parsed = bearer(authorization)
    if parsed is None:
        return None
    account = store.tokens.get(parsed[1])
    if account is None or account.revoked or account.kind != parsed[0]:
        return None
    return account


def authenticate(
    store: Store,
    headers: dict[str, str],
    params: dict[str, str],
    detail_app_id: str | None,
    errors: Errors,
    legacy: bool = False,
) -> Context:
    """Check the token, find the environment in context, and the caller's access to it.

    Raises:
        Reply: The answer when any check fails.
    """
    authorization = headers.get("authorization", "")
    if not authorization:
        raise errors.unauthenticated(_NOT_PROVIDED)
    if legacy and len(authorization.split(" ")) < 3:
        # Old servers indexed the split header blindly: an IndexError, a 500 page.
        raise Reply(_wire.html(500, _wire.SERVER_ERROR_HTML))
    if bearer(authorization) is None:
        raise errors.unauthenticated(_INVALID_TOKEN)
    account = account_of(store, authorization)
    if account is None:
        raise errors.unauthenticated(TOKEN_GONE)
    app, env = _context(store, headers, params, detail_app_id, errors, legacy)
    kind = account.kind
    if env is not None:
        if not can_access(account, env):
            if kind == "User":
                raise Reply(errors.error(403, "User cannot access this environment"))
            if kind == "ServiceAccount":
                raise errors.unauthenticated("Service account cannot access this environment")
            raise errors.unauthenticated("Service token cannot access this environment")
    elif app is not None:
        if kind == "Service":
            raise errors.unauthenticated(_SERVICE_TOKEN_CONTEXT)
        if not can_access_app(account, app):
            if kind == "User":
                raise Reply(errors.error(403, "User cannot access this app"))
            raise errors.unauthenticated("Service account cannot access this app")
    elif kind == "Service":
        raise errors.unauthenticated(_SERVICE_TOKEN_CONTEXT)
    return Context(account, app, env)


def _context(
    store: Store,
    headers: dict[str, str],
    params: dict[str, str],
    detail_app_id: str | None,
    errors: Errors,
    legacy: bool,
) -> tuple[App | None, Environment | None]:
    secret_id = None if detail_app_id else (headers.get("secret-id") or params.get("secret_id"))
    if secret_id:
        env = store.env_of_secret(secret_id)
        if env is None:
            raise Reply(errors.error(404, "Secret not found"))
        return store.apps[env.app_id], env
    if headers.get("environment") and not detail_app_id:
        env = store.envs.get(headers["environment"])
        if env is None:
            raise errors.unauthenticated("Environment not found")
        return store.apps[env.app_id], env
    app_id = detail_app_id or params.get("app_id")
    env_name = None if detail_app_id else params.get("env")
    if legacy and not app_id:
        raise Reply(errors.error(403, "Missing app_id parameter"))
    if legacy and not env_name:
        raise Reply(errors.error(403, "Missing env parameter"))
    if not app_id:
        return None, None
    app = store.apps.get(app_id)
    if app is None:
        raise Reply(errors.error(404, f"App with ID {app_id} not found"))
    if not env_name:
        return app, None
    found = app.env_named(env_name)
    if found is None:
        raise Reply(errors.error(404, f"Environment '{env_name}' not found in App {app_id}"))
    return app, found
