"""The end-to-end-encrypted API as plain data: requests to send, replies to read (no I/O).

Phase's own CLI and SDKs use this API (``{host}/service/secrets/tokens/`` and
``{host}/service/secrets/``) for apps whose secrets the server cannot read. A load is:

1. :func:`tokens_request`, then ``_e2ee_replies.parse_tokens`` of its reply: the apps and
   environments the token may read, and the account key (unwrapped with the token's key parts).
2. ``TokenAccess.environment`` picks the environment (exact, case-insensitive name) and
   ``TokenAccess.env_keys`` opens its keys, once per environment.
3. :func:`list_request` per folder, then ``_e2ee_replies.parse_secrets`` decrypts the reply into
   the same :class:`~phase_settings.Secret` records the REST API gives (references unresolved).

Writes are :func:`create_request`, :func:`update_request` and :func:`delete_request`; their replies
are empty, so the caller reads the environment again to return the records. Status codes map with
:func:`error_for_status`, which knows where this API answers differently from REST.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from .._errors import (
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
from .._models import Secret
from .keys import EnvKeys

__all__ = [
    "CLOUD_E2EE_HOST",
    "RULES",
    "E2EERules",
    "Request",
    "create_request",
    "delete_request",
    "e2ee_host",
    "error_for_status",
    "list_request",
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
        # A new key is upper-cased as on create; the current one is kept exactly as stored.
        key = _text(item, "key").strip().upper() if item.get("key") else existing.key
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


# --- status codes -------------------------------------------------------------------------


def error_for_status(
    status: int,
    body: bytes,
    *,
    endpoint: str,
    method: str = "GET",
    retry_after: float | None = None,
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
            f"Phase rate limit reached on {where} ({scope}){hint}",
            error=text,
            retry_after=retry_after,
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
        return PhaseRequestError(
            f"Phase rejected the request ({status})", status=status, error=text
        ), False
    if 500 <= status < 600:
        write = method.upper() in ("POST", "PUT", "DELETE")
        return PhaseServerError(
            f"Phase had a server error ({status})" + (" (a write; not retried)" if write else ""),
            status=status,
            error=text,
        ), not write
    return PhaseResponseError(
        f"Phase answered with an unexpected status ({status})", status=status
    ), False


class E2EERules:
    """This API's status rules for one endpoint, handed to the protocol core with each request
    (the core's ``ReplyRules``): errors by :func:`error_for_status`, failures named by host."""

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"E2EERules({self.endpoint})"

    def error(
        self, status: int, body: bytes, *, method: str, retry_after: float | None
    ) -> tuple[PhaseError, bool]:
        """See :func:`error_for_status`."""
        return error_for_status(
            status, body, endpoint=self.endpoint, method=method, retry_after=retry_after
        )

    def host(self, url: str) -> str:
        """The console host of a request (Phase Cloud's E2EE API is not at the REST base)."""
        return url.split("/service/", 1)[0]


RULES = {"tokens": E2EERules("tokens"), "secrets": E2EERules("secrets")}
