"""The E2EE API's ``/service/secrets/``: ciphertext in, ciphertext out.

The server never decrypts and never resolves a reference here: it filters by the ``KeyDigest``,
``Path`` and ``Tags`` headers, attaches the caller's personal override and stores what clients
send. Errors follow the live recordings: the view's own answers are Django ``JsonResponse``
bodies (spaced JSON), a malformed batch item is a 500, batches are not atomic, and ids of PUT
and DELETE are not scoped to the ``Environment`` header. An SSE app is served here too: its
plaintext is encrypted for the environment's key on the way out, and what clients write is
decrypted with it (as the real server, holding the keys of SSE apps, can).
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import _crypto
from ._auth import Context, authenticate
from ._rest import SECRETS_METHODS, accepts_json, snake_params, truthy_flag
from ._rest_writes import clean_tags
from ._state import Environment, Override, Secret, Store, iso, normalize_path, now
from ._throttle import Throttle
from ._wire import SECRETS_WIRE, SERVER_ERROR, FakeResponse, Reply

_ENV_CONTEXT = "Environment context required. Supply `app_id` and `env` as query parameters."
_CAMEL = re.compile(r"_([a-z])")
_WIRE = SECRETS_WIRE


class _Malformed(Exception):
    """A batch item the real view fails on with an unhandled exception (a 500)."""


def _server_error() -> Reply:
    return Reply(_WIRE.spaced_error(500, SERVER_ERROR))


class E2eeApi:
    """The E2EE secrets view over one store."""

    def __init__(self, store: Store, throttle: Throttle) -> None:
        self.store = store
        self.throttle = throttle

    def view(
        self, method: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> FakeResponse:
        """Answer a request to ``/service/secrets/``."""
        if not accepts_json(headers.get("accept")):
            return _WIRE.error(406, "Could not satisfy the request Accept header.")
        # Django reads request headers case-insensitively with "_" equal to "-".
        headers = {name.replace("_", "-"): value for name, value in headers.items()}
        context = authenticate(self.store, headers, snake_params(query), None, _WIRE)
        refused = self.throttle.check(context.account.id)
        if refused is not None:
            return _WIRE.error(429, refused[0], refused[1])
        if method not in SECRETS_METHODS:
            return _WIRE.error(403, f"Unsupported HTTP method: {method}")
        env = context.env
        if env is None:
            return _WIRE.error(403, _ENV_CONTEXT)
        if method == "GET":
            return self._list(context, env, headers)
        entries = _batch(body)
        try:
            if method == "POST":
                # The duplicate check looks at stored rows only, for the whole batch at once:
                # two items with the same key in one batch are both created.
                for entry in entries:
                    key_digest = _fields(entry, ("keyDigest",))[0]
                    path = _path(entry.get("path", "/"))
                    if self.store.digest_clashes(env, path, key_digest, exclude=None):
                        raise Reply(_WIRE.spaced_error(409, "Duplicate secret found"))
            for entry in entries:
                if method == "POST":
                    self._create(context, env, entry)
                elif method == "PUT":
                    self._update(context, env, entry)
                elif isinstance(entry, str) and entry in self.store.secret_index:
                    self.store.remove_secret(self.store.secret_index[entry])
                elif not isinstance(entry, str | int | float | bool | None):
                    raise _Malformed
        except _Malformed:
            raise _server_error() from None
        return _WIRE.empty()

    # ------------------------------------------------------------------ GET

    def _list(self, context: Context, env: Environment, headers: dict[str, str]) -> FakeResponse:
        lease_ttl = headers.get("lease-ttl")
        if lease_ttl:
            try:
                int(lease_ttl)
            except ValueError:
                return _WIRE.error(400, "lease_ttl must be a valid integer (seconds)")
        key_digest = headers.get("keydigest")
        path = headers.get("path")
        folder_path = normalize_path(path) if path else None
        tags = headers.get("tags")
        wanted_tags = tags.split(",") if tags else None
        items: list[dict[str, Any]] = []
        for secret in env.secrets.values():
            if key_digest and secret.key_digest != key_digest:
                continue
            if folder_path is not None and secret.path != folder_path:
                continue
            repeat = 1
            if wanted_tags is not None:
                # tags__name__in without .distinct(): one row per matching tag.
                repeat = sum(1 for tag in secret.tags if tag in wanted_tags)
            items.extend([self._item(context, env, secret)] * repeat)
        if truthy_flag(headers.get("dynamic")) or truthy_flag(headers.get("include-dynamic")):
            for dynamic in env.dynamic.values():
                if folder_path is None or dynamic.path == folder_path:
                    items.append(
                        {
                            "id": dynamic.id,
                            "name": dynamic.name,
                            "type": "dynamic",
                            "description": dynamic.description,
                            "environment": dynamic.env_id,
                            "folder": dynamic.folder,
                            "path": dynamic.path,
                            "default_ttl": dynamic.default_ttl,
                            "max_ttl": dynamic.max_ttl,
                            "provider": dynamic.provider,
                            "key_map": [
                                {
                                    "id": entry["id"],
                                    "key_name": env.seal(entry["keyName"]),
                                    "key_digest": entry["keyDigest"],
                                }
                                for entry in dynamic.key_map
                            ],
                            "created_at": iso(dynamic.created_at),
                            "updated_at": iso(dynamic.updated_at),
                            "deleted_at": None,
                            "lease": None,
                        }
                    )
        if (headers.get("x-use-camel-case") or "").lower() == "true":
            return _WIRE.json(200, _camel(items))
        return _WIRE.json(200, items)

    def _item(self, context: Context, env: Environment, secret: Secret) -> dict[str, Any]:
        override = None
        account = context.account
        if account.kind == "User":
            stored = self.store.overrides.get((account.id, secret.id))
            if stored is not None:
                override = {
                    "id": stored.id,
                    "value": self._outgoing(env, stored.value, stored),
                    "is_active": stored.is_active,
                    "created_at": iso(stored.created_at),
                    "updated_at": iso(stored.updated_at),
                }
        return {
            "id": secret.id,
            "key": self._outgoing(env, secret.key, secret),
            "value": self._outgoing(env, secret.value, secret),
            "comment": self._outgoing(env, secret.comment, secret),
            "tags": list(secret.tags),
            "override": override,
            "type": secret.type,
            "lifecycle": "static",
            "path": secret.path,
            "key_digest": secret.key_digest,
            "version": secret.version,
            "created_at": iso(secret.created_at),
            "updated_at": iso(secret.updated_at),
            "environment": secret.env_id,
            "folder": secret.folder,
        }

    def _outgoing(self, env: Environment, text: str, holder: Secret | Override) -> str:
        """What the E2EE API shows of a stored field: SSE plaintext is encrypted (once)."""
        if not self.store.is_sse(env) or not text:
            return text
        sealed = holder.sealed.get(text)
        if sealed is None:
            sealed = holder.sealed[text] = env.seal(text)
        return sealed

    def _incoming(self, env: Environment, text: str, holder: Secret | Override) -> str:
        """What to store of a client's ciphertext: as sent, or decrypted on an SSE app."""
        if not self.store.is_sse(env) or not text:
            return text
        try:
            plain = env.unseal(text)
        except _crypto.CryptoError:
            return text
        holder.sealed[plain] = text
        return plain

    # ------------------------------------------------------------------ writes

    def _create(self, context: Context, env: Environment, entry: Any) -> None:
        fields = _fields(entry, ("key", "keyDigest", "value", "comment"))
        path = _path(entry.get("path", "/"))
        key, key_digest, value, comment = fields
        override = entry.get("override")
        _check_ciphertexts(key, value, comment, _override_value(override, context))
        tags = _tags(entry.get("tags"))
        secret = self.store.create_secret(
            env,
            key,
            value,
            path,
            comment,
            tags,
            str(entry.get("type", "secret")),
            key_digest=key_digest,
        )
        secret.key = self._incoming(env, key, secret)
        secret.value = self._incoming(env, value, secret)
        secret.comment = self._incoming(env, comment, secret)
        if override is not None and context.account.kind == "User":
            self.store.upsert_override(context.account, secret, override["value"], True)
            stored = self.store.overrides[(context.account.id, secret.id)]
            stored.value = self._incoming(env, stored.value, stored)

    def _update(self, context: Context, env: Environment, entry: Any) -> None:
        if not isinstance(entry, dict) or "id" not in entry:
            raise _Malformed
        secret = self.store.secret_index.get(entry["id"]) if isinstance(entry["id"], str) else None
        if secret is None:
            raise _Malformed
        key_digest = secret.key_digest
        if "key" in entry:
            key_digest = _fields(entry, ("keyDigest",))[0]
            _fields(entry, ("key",))
        path = _path(entry["path"]) if "path" in entry else secret.path
        if self.store.digest_clashes(env, path, key_digest, exclude=secret.id):
            raise Reply(_WIRE.spaced_error(409, "Duplicate secret found"))
        override = entry.get("override")
        if override is not None and context.account.kind == "User":
            if not isinstance(override, dict) or "value" not in override:
                raise _Malformed
            if "isActive" not in override:
                raise _Malformed
        texts = [entry.get(name, "") for name in ("key", "value", "comment")]
        if not all(isinstance(text, str) for text in texts):
            raise _Malformed
        _check_ciphertexts(*texts, _override_value(override, context))
        kind = str(entry.get("type", secret.type))
        if secret.type == "sealed" and kind != "sealed":
            message = "Sealed secrets cannot be unsealed. Delete and recreate the secret instead."
            raise Reply(_WIRE.spaced_error(400, message))
        tags = _tags(entry.get("tags"))
        self.store.move_secret(secret, env)
        if "key" in entry:
            secret.key = self._incoming(env, entry["key"], secret)
            secret.key_digest = key_digest
        if "value" in entry and secret.type != "sealed":
            secret.value = self._incoming(env, entry["value"], secret)
        if "comment" in entry:
            secret.comment = self._incoming(env, entry["comment"], secret)
        secret.path = path
        secret.folder = self.store.folder(env, path)
        secret.type = kind
        secret.tags = tags
        secret.version += 1
        secret.updated_at = now()
        if override is not None and context.account.kind == "User":
            self.store.upsert_override(
                context.account, secret, override["value"], bool(override["isActive"])
            )
            stored = self.store.overrides[(context.account.id, secret.id)]
            stored.value = self._incoming(env, stored.value, stored)


def _batch(body: bytes) -> list[Any]:
    """The ``secrets`` list of a write, or the view's answer to a bad body."""
    if not body:
        raise Reply(_WIRE.spaced_error(400, "Request body is required."))
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Reply(_WIRE.spaced_error(400, "Request body must be valid JSON.")) from None
    if not isinstance(payload, dict):
        raise Reply(_WIRE.spaced_error(400, "Request body must be a JSON object."))
    entries = payload.get("secrets")
    if isinstance(entries, str | dict) and not entries:
        return []
    if not isinstance(entries, list):
        raise _server_error()
    return entries


def _fields(entry: Any, names: tuple[str, ...]) -> list[str]:
    if not isinstance(entry, dict) or any(not isinstance(entry.get(n), str) for n in names):
        raise _Malformed
    return [entry[name] for name in names]


def _path(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Malformed
    return normalize_path(raw)


def _tags(raw: Any) -> list[str]:
    tags = clean_tags(raw)
    if isinstance(tags, str):
        raise Reply(_WIRE.spaced_error(400, tags))
    return tags


def _override_value(override: Any, context: Context) -> str:
    if override is None or context.account.kind != "User":
        return ""
    if not isinstance(override, dict) or not isinstance(override.get("value"), str):
        raise _Malformed
    value: str = override["value"]
    return value


def _check_ciphertexts(*texts: str) -> None:
    for text in texts:
        if text and not _crypto.CIPHERTEXT.match(text):
            raise Reply(_WIRE.spaced_error(400, "Invalid ciphertext format"))


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CAMEL.sub(lambda m: m.group(1).upper(), k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value
