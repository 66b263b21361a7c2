"""The end-to-end-encrypted API as plain data: requests to send, replies to read (no I/O).

Phase's own CLI and SDKs use this API (``{host}/service/secrets/tokens/`` and
``{host}/service/secrets/``) for apps whose secrets the server cannot read. A load is:

1. :func:`tokens_request`, then :func:`parse_tokens` of its reply: the apps and environments the
   token may read, and the account key (unwrapped with the token's key parts).
2. :meth:`TokenAccess.environment` picks the environment (exact, case-insensitive name) and
   :meth:`TokenAccess.env_keys` opens its keys, once per environment.
3. :func:`list_request` per folder, then :func:`parse_secrets` decrypts the reply into the same
   :class:`~phase_settings.Secret` records the REST API gives (references still unresolved).

Writes are :func:`create_request`, :func:`update_request` and :func:`delete_request`; their replies
are empty, so the caller reads the environment again to return the records. Status codes map with
:func:`error_for_status`, which knows where this API answers differently from REST.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ._e2ee_cipher import CipherError
from ._e2ee_keys import AccountKeys, EnvKeys, TokenKeys
from ._errors import (
    PhaseAuthError,
    PhaseConfigError,
    PhaseConflictError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseRequestError,
    PhaseResponseError,
    PhaseServerError,
    sanitize_server_text,
)
from ._models import Secret, SecretOverride, _bad, _time

__all__ = [
    "CLOUD_E2EE_HOST",
    "AppEntry",
    "EnvEntry",
    "Request",
    "TokenAccess",
    "create_request",
    "delete_request",
    "e2ee_host",
    "error_for_status",
    "list_request",
    "parse_secrets",
    "parse_tokens",
    "tokens_request",
    "update_request",
]

CLOUD_E2EE_HOST = "https://console.phase.dev"
_CLOUD_API = "https://api.phase.dev"
_SERVICE_PUBLIC = "/service/public"
TOKENS_PATH = "/service/secrets/tokens/"
SECRETS_PATH = "/service/secrets/"


class Request(NamedTuple):
    """One HTTP request to send: ``json`` is the body to encode, or None for no body."""

    method: str
    url: str
    headers: dict[str, str]
    json: Any = None

    def __repr__(self) -> str:  # headers hold the token
        return f"Request({self.method} {self.url})"


def e2ee_host(api_base: str) -> str:
    """Where the E2EE API lives for a REST API base: Phase Cloud's at the console host, a
    self-hosted console's at its host (the REST base without ``/service/public``)."""
    base = api_base.rstrip("/")
    if base == _CLOUD_API:
        return CLOUD_E2EE_HOST
    if base.endswith(_SERVICE_PUBLIC):
        return base[: -len(_SERVICE_PUBLIC)]
    return base


def tokens_request(host: str, authorization: str) -> Request:
    """``GET /service/secrets/tokens/``: the token's apps, environments and key share."""
    return Request("GET", host + TOKENS_PATH, {"Authorization": authorization})


def list_request(
    host: str,
    authorization: str,
    env_id: str,
    *,
    path: str | None = "/",
    tags: Sequence[str] = (),
    key_digest: str | None = None,
) -> Request:
    """``GET /service/secrets/`` of one environment: one folder (``path``, exact), or every
    folder (``None``); only secrets carrying any of ``tags``; only one key (``key_digest``)."""
    headers = {"Authorization": authorization, "Environment": env_id}
    if path is not None:
        headers["Path"] = path
    if tags:
        headers["Tags"] = ",".join(tags)
    if key_digest is not None:
        headers["KeyDigest"] = key_digest
    return Request("GET", host + SECRETS_PATH, headers)


def _write_headers(authorization: str, env_id: str) -> dict[str, str]:
    return {
        "Authorization": authorization,
        "Environment": env_id,
        "Content-Type": "application/json",
    }


def _text(item: Mapping[str, Any], name: str, default: str = "") -> str:
    value = item.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise PhaseConfigError(f"'{name}' of a secret to write must be a string")
    return value


def _tags(item: Mapping[str, Any]) -> list[str]:
    tags = item.get("tags") or ()
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise PhaseConfigError("'tags' of a secret to write must be a list of strings")
    return list(tags)


def _encrypted_override(env: EnvKeys, raw: object) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise PhaseConfigError("'override' of a secret to write must be a mapping")
    active = raw.get("is_active", raw.get("isActive", True))
    if not isinstance(active, bool):
        raise PhaseConfigError("'override.is_active' must be a boolean")
    return {"value": env.encrypt(_text(raw, "value")), "isActive": active}


def _encrypted_item(env: EnvKeys, item: Mapping[str, Any], key: str) -> dict[str, Any]:
    comment = _text(item, "comment")
    encrypted: dict[str, Any] = {
        "key": env.encrypt(key),
        "keyDigest": env.digest(key),
        "value": env.encrypt(_text(item, "value")),
        "comment": env.encrypt(comment) if comment else "",
    }
    if item.get("type") is not None:
        encrypted["type"] = _text(item, "type")
    override = _encrypted_override(env, item.get("override"))
    if override is not None:
        encrypted["override"] = override
    return encrypted


def create_request(
    host: str, authorization: str, env: EnvKeys, secrets: Iterable[Mapping[str, Any]]
) -> Request | None:
    """``POST /service/secrets/`` creating ``secrets`` (mappings with ``key``, ``value`` and
    optionally ``comment``, ``path``, ``tags``, ``type``, ``override``), each field encrypted
    for ``env``; the key is upper-cased, as the REST API stores it. None when there is nothing
    to create."""
    items = []
    for item in secrets:
        key = _text(item, "key").strip().upper()
        if not key:
            raise PhaseConfigError("each secret to create needs a non-empty 'key'")
        encrypted = _encrypted_item(env, item, key)
        encrypted["path"] = _text(item, "path", "/") or "/"
        encrypted["tags"] = _tags(item)
        items.append(encrypted)
    if not items:
        return None
    headers = _write_headers(authorization, env.env_id)
    return Request("POST", host + SECRETS_PATH, headers, {"secrets": items})


def update_request(
    host: str,
    authorization: str,
    env: EnvKeys,
    secrets: Iterable[Mapping[str, Any]],
    current: Mapping[str, Secret],
) -> Request | None:
    """``PUT /service/secrets/`` updating ``secrets`` by ``id``; omitted fields keep their
    current values. ``current`` is the environment's secrets by id, as just read: this API
    clears the tags left out and would move a secret of another environment here, so every
    item is sent in full and an id not in ``current`` is refused as the REST API does.

    Raises:
        PhaseNotFoundError: an id is not a secret of this environment (nothing is sent).
    """
    items = []
    unknown = []
    for item in secrets:
        secret_id = _text(item, "id")
        existing = current.get(secret_id)
        if existing is None:
            unknown.append(secret_id)
            continue
        key = _text(item, "key", existing.key).strip().upper() or existing.key
        merged = {
            "value": item.get("value", existing.value),
            "comment": item.get("comment", existing.comment),
            "type": item.get("type", existing.type),
            "override": item.get("override"),
        }
        encrypted = _encrypted_item(env, merged, key)
        encrypted["id"] = secret_id
        encrypted["path"] = _text(item, "path", existing.path) or "/"
        encrypted["tags"] = _tags(item) if "tags" in item else list(existing.tags)
        items.append(encrypted)
    if unknown:
        raise PhaseNotFoundError(
            f"Secret not found in environment {env.env_name!r}: {', '.join(unknown)}", status=None
        )
    if not items:
        return None
    headers = _write_headers(authorization, env.env_id)
    return Request("PUT", host + SECRETS_PATH, headers, {"secrets": items})


def delete_request(
    host: str, authorization: str, env: EnvKeys, ids: Iterable[str], current: Mapping[str, Secret]
) -> Request | None:
    """``DELETE /service/secrets/`` of ``ids``. This API deletes an id of any environment, so
    ids not in ``current`` (the environment's secrets by id) are refused, the whole batch, as
    the REST API does.

    Raises:
        PhaseNotFoundError: an id is not a secret of this environment (nothing is sent).
    """
    id_list = [str(i) for i in ids]
    unknown = [i for i in id_list if i not in current]
    if unknown:
        raise PhaseNotFoundError(
            f"Secret(s) not found in environment {env.env_name!r}: {', '.join(unknown)}"
        )
    if not id_list:
        return None
    headers = _write_headers(authorization, env.env_id)
    return Request("DELETE", host + SECRETS_PATH, headers, {"secrets": id_list})


# --- the tokens reply ---------------------------------------------------------------------------


class EnvEntry:
    """One environment the token holds a key for (its wrapped keys are never shown)."""

    __slots__ = ("app_id", "app_name", "id", "identity_key", "name", "wrapped_salt", "wrapped_seed")

    def __init__(self, app_id: str, app_name: str, raw: Mapping[str, Any]) -> None:
        environment = raw.get("environment")
        if not isinstance(environment, dict):
            raise _bad("an environment key has no 'environment' object")
        self.app_id = app_id
        self.app_name = app_name
        self.id = _str(environment, "id")
        self.name = _str(environment, "name")
        self.identity_key = _str(raw, "identity_key")
        self.wrapped_seed = _str(raw, "wrapped_seed")
        self.wrapped_salt = _str(raw, "wrapped_salt")

    def __repr__(self) -> str:
        return f"EnvEntry(app={self.app_name!r}, name={self.name!r}, id={self.id!r})"


class AppEntry(NamedTuple):
    """One app the token can read: ``encryption`` is ``"E2E"`` or ``"SSE"``."""

    id: str
    name: str
    encryption: str
    environments: tuple[EnvEntry, ...]


def _str(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str):
        raise _bad(f"'{name}' is not a string")
    return value


class TokenAccess:
    """What one tokens reply grants: the apps and environments, and the account key.

    Environment keys are opened on first use and kept here, so a load opens each environment
    it needs once; drop this object to drop them.
    """

    __slots__ = ("_account", "_opened", "apps")

    def __init__(self, account: AccountKeys, apps: tuple[AppEntry, ...]) -> None:
        self._account = account
        self._opened: dict[str, EnvKeys] = {}
        self.apps = apps

    def app(self, app_id: str) -> AppEntry:
        """The app with this id.

        Raises:
            PhaseNotFoundError: the token cannot read it; the message lists what it can read.
        """
        for app in self.apps:
            if app.id == app_id:
                return app
        seen = ", ".join(f"{a.name} ({a.id})" for a in self.apps) or "none"
        raise PhaseNotFoundError(
            f"The token has no access to app {app_id!r} over the end-to-end-encrypted API; "
            f"apps it can read: {seen}"
        )

    def app_named(self, name: str) -> AppEntry | None:
        """The one app whose name matches ``name`` case-insensitively, else None (no match,
        or two apps of that name)."""
        found = [app for app in self.apps if app.name.lower() == name.lower()]
        return found[0] if len(found) == 1 else None

    def environment(self, app: AppEntry, name: str) -> EnvEntry:
        """The environment of ``app`` named ``name`` (exact, case-insensitive).

        Raises:
            PhaseNotFoundError: no such environment the token can read; the message lists the
                environment names it can.
        """
        found = self.find_environment(app, name)
        if found is not None:
            return found
        seen = ", ".join(env.name for env in app.environments) or "none"
        raise PhaseNotFoundError(
            f"The token has no access to an environment named {name!r} in app {app.name!r}; "
            f"environments it can read: {seen}"
        )

    @staticmethod
    def find_environment(app: AppEntry, name: str) -> EnvEntry | None:
        """Like :meth:`environment`, None instead of raising."""
        wanted = name.lower()
        return next((env for env in app.environments if env.name.lower() == wanted), None)

    def env_keys(self, entry: EnvEntry) -> EnvKeys:
        """The keys of ``entry``, opened once.

        Raises:
            PhaseResponseError: the wrapped keys do not open, or the public key Phase supplied
                is not the one the seed derives.
        """
        keys = self._opened.get(entry.id)
        if keys is None:
            keys = self._account.open_env(
                env_id=entry.id,
                env_name=entry.name,
                app_name=entry.app_name,
                identity_key=entry.identity_key,
                wrapped_seed=entry.wrapped_seed,
                wrapped_salt=entry.wrapped_salt,
            )
            self._opened[entry.id] = keys
        return keys

    def __repr__(self) -> str:
        return f"TokenAccess(apps={[a.name for a in self.apps]!r})"

    def __reduce__(self) -> Any:
        raise TypeError("TokenAccess holds key material and cannot be pickled")


def parse_tokens(payload: object, token: TokenKeys) -> TokenAccess:
    """Read the tokens reply and unwrap the account key with the token's key parts.

    Raises:
        PhaseResponseError: the reply is not in the contract's shape.
        PhaseAuthError: the token's key parts do not open the key share.
    """
    if not isinstance(payload, dict):
        raise _bad("the tokens reply is not a JSON object")
    share = payload.get("wrapped_key_share")
    raw_apps = payload.get("apps")
    if not isinstance(share, str) or not isinstance(raw_apps, list):
        raise _bad("the tokens reply has no 'wrapped_key_share' string and 'apps' list")
    apps = []
    for raw in raw_apps:
        if not isinstance(raw, dict) or not isinstance(raw.get("environment_keys"), list):
            raise _bad("an app of the tokens reply has no 'environment_keys' list")
        app_id, name = _str(raw, "id"), _str(raw, "name")
        envs = []
        for key in raw["environment_keys"]:
            if not isinstance(key, dict):
                raise _bad("an environment key is not an object")
            envs.append(EnvEntry(app_id, name, key))
        encryption = raw.get("encryption")
        apps.append(AppEntry(app_id, name, encryption if isinstance(encryption, str) else "E2E", tuple(envs)))
    return TokenAccess(token.unwrap(share), tuple(apps))


# --- the secrets reply ----------------------------------------------------------------------------


def _field(raw: Mapping[str, Any], snake: str, camel: str) -> Any:
    return raw[snake] if snake in raw else raw.get(camel)


def _decrypt(env: EnvKeys, text: str, what: str) -> str:
    try:
        return env.decrypt(text)
    except CipherError as exc:
        raise PhaseResponseError(
            f"Phase's reply for environment {env.env_name!r} holds {what} that does not "
            f"decrypt with the environment's key ({exc}); it was altered or encrypted for "
            "another key"
        ) from None


def _secret(raw: object, env: EnvKeys) -> Secret | None:
    if not isinstance(raw, dict):
        raise _bad("an item of the secrets list is not an object")
    if raw.get("type") == "dynamic":
        return None
    secret_id = raw.get("id") or ""
    for name in ("id", "key", "value", "comment", "path", "type", "lifecycle", "environment", "folder"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise _bad(f"'{name}' is not a string")
    if not raw.get("key") or not isinstance(raw.get("value"), str):
        raise _bad("a secret has no 'key' and 'value' strings")
    key = _decrypt(env, raw["key"], f"the key of secret {secret_id!r}")
    value = _decrypt(env, raw["value"], f"the value of {key}")
    comment = raw.get("comment") or ""
    if comment:
        comment = _decrypt(env, comment, f"the comment of {key}")
    tags = raw.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad("'tags' is not a list of strings")
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _bad("'version' is not an integer")
    return Secret(
        secret_id,
        key,
        value,
        comment,
        tuple(tags),
        raw.get("path") or "/",
        version,
        raw.get("type") or "secret",
        raw.get("lifecycle") or "static",
        _override(raw.get("override"), env, key),
        _time(raw, "created_at") or _time(raw, "createdAt"),
        _time(raw, "updated_at") or _time(raw, "updatedAt"),
        raw.get("environment"),
        raw.get("folder"),
    )


def _override(raw: object, env: EnvKeys, key: str) -> SecretOverride | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
        raise _bad("'override' is not an object with a 'value' string")
    active = _field(raw, "is_active", "isActive")
    if not isinstance(active, bool):
        raise _bad("'override.is_active' is not a boolean")
    value = raw["value"]
    return SecretOverride(
        id=raw.get("id") if isinstance(raw.get("id"), str) else "",
        value=_decrypt(env, value, f"the personal override of {key}") if value else "",
        is_active=active,
        created_at=_time(raw, "created_at") or _time(raw, "createdAt"),
        updated_at=_time(raw, "updated_at") or _time(raw, "updatedAt"),
    )


def parse_secrets(payload: object, env: EnvKeys) -> list[Secret]:
    """Decrypt a ``GET /service/secrets/`` reply into :class:`Secret` records (dynamic items
    skipped; references left as written).

    Raises:
        PhaseResponseError: not the contract's shape, or a field fails authentication; the
            message names the secret's key (the secret's id when the key itself fails), never
            a value.
    """
    if not isinstance(payload, list):
        raise _bad("expected a JSON array of secrets")
    return [s for s in (_secret(item, env) for item in payload) if s is not None]


# --- status codes -------------------------------------------------------------------------------------


def error_for_status(
    status: int, body: bytes, *, endpoint: str, method: str = "GET", retry_after: float | None = None
) -> tuple[PhaseError, bool]:
    """The error for a non-2xx reply of this API and whether it may be retried.

    ``endpoint`` is ``"tokens"`` or ``"secrets"``. Differences from REST: the tokens endpoint
    answers 403 to a bad token (401 on the secrets endpoint), both answer 401 or 403 when the
    account has no key for the environment, and a 500 in reply to a write can be the server's
    answer to a bad body, so it is not retried.
    """
    text = None
    try:
        payload = json.loads(body) if body else None
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        text = sanitize_server_text(payload.get("error"))
    where = "the tokens endpoint" if endpoint == "tokens" else "the secrets endpoint"
    if status == 429:
        hint = f" (Retry-After: {retry_after:g} s)" if retry_after is not None else ""
        scope = "per client IP" if endpoint == "tokens" else "per account"
        return PhaseRateLimitError(
            f"Phase rate limit reached on {where} ({scope}){hint}", error=text, retry_after=retry_after
        ), True
    if status in (401, 403):
        if endpoint == "tokens":
            message = (
                f"Phase refused the token ({status}): it is unknown, expired or deleted; check "
                "PHASE_SERVICE_TOKEN"
            )
        else:
            message = (
                f"Phase refused the token ({status}): it is invalid, expired, or its account "
                "holds no key for this environment"
            )
        return PhaseAuthError(message, status=status, error=text), False
    if status == 404:
        if text is None:
            return PhaseResponseError(
                f"Got 404 without Phase's JSON error body from {where}: the host does not look "
                "like a Phase console",
                status=status,
            ), False
        return PhaseNotFoundError("Phase could not find it", status=status, error=text), False
    if status == 409:
        return PhaseConflictError(
            "Phase reported a conflict (a secret with this key exists at this path?)",
            status=status,
            error=text,
        ), False
    if 400 <= status < 500:
        return PhaseRequestError(f"Phase rejected the request ({status})", status=status, error=text), False
    if 500 <= status < 600:
        write = method.upper() in ("POST", "PUT", "DELETE")
        return PhaseServerError(
            f"Phase had a server error ({status})" + (" (a write; not retried)" if write else ""),
            status=status,
            error=text,
        ), not write
    return PhaseResponseError(f"Phase answered with an unexpected status ({status})", status=status), False
