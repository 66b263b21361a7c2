"""The public REST API (``/v1/secrets/``, ``/v1/apps/``, ``/v1/environments/``): reads.

Values are served in plaintext with references resolved by the server; apps without SSE are
refused. Writes are in :mod:`._rest_writes`.
"""

from __future__ import annotations

import re
from typing import Any

from . import _references, _rest_writes
from ._auth import Context, RestErrors, authenticate
from ._state import (
    Account,
    App,
    DynamicSecret,
    Environment,
    Secret,
    Store,
    can_access,
    can_access_app,
    iso,
    normalize_path,
)
from ._throttle import Throttle
from ._wire import READ_ONLY_ALLOW, SECRETS_ALLOW, FakeResponse, Reply, error, json_response

SSE_DISABLED = "SSE is not enabled for this App"
SECRETS_METHODS = ("GET", "POST", "PUT", "DELETE")
_ENV_CONTEXT = "Environment context required. Supply `app_id` and `env` as query parameters."

# djangorestframework-camel-case 1.4.2 turns query parameter names into snake_case.
_UNDERSCOREIZE = re.compile(
    r"([a-z0-9]|[A-Z]?(?=[A-Z0-9](?=[a-z0-9]|(?<![A-Z])$)))"
    r"([A-Z]|(?<=[a-z])[0-9](?=[0-9A-Z]|$)|(?<=[A-Z])[0-9](?=[0-9]|$))"
)


def accepts_json(accept: str | None) -> bool:
    """Whether an ``Accept`` header allows a JSON answer."""
    if accept is None:
        return True
    for media_range in accept.split(","):
        media_type = media_range.split(";", 1)[0].strip().lower()
        if media_type in ("*/*", "application/*", "application/json"):
            return True
    return False


def snake_params(query: dict[str, str]) -> dict[str, str]:
    """Query parameter names in snake_case, as the server's camel-case parser gives them."""
    return {_UNDERSCOREIZE.sub(r"\1_\2", k).lower(): v for k, v in query.items()}


def truthy_flag(value: str | None) -> bool:
    """A flag that is on when present and not ``false``."""
    return value is not None and value.lower() != "false"


def throttled(throttle: Throttle, bucket: str, allow: str) -> None:
    """Count a REST request in its account's bucket, or answer 429."""
    refused = throttle.check(bucket)
    if refused is not None:
        raise Reply(error(429, refused[0], allow, refused[1]))


class RestApi:
    """The REST views over one store."""

    def __init__(self, store: Store, throttle: Throttle, legacy: bool) -> None:
        self.store = store
        self.throttle = throttle
        self.legacy = legacy

    def view(
        self,
        name: str,
        detail_id: str | None,
        method: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> FakeResponse:
        """Answer a request to one of the authenticated REST routes."""
        allow = SECRETS_ALLOW if name == "secrets" else READ_ONLY_ALLOW
        if not accepts_json(headers.get("accept")):
            return error(406, "Could not satisfy the request Accept header.", allow)
        params = snake_params(query)
        errors = RestErrors(allow, self.legacy)
        context = authenticate(self.store, headers, params, detail_id, errors, self.legacy)
        throttled(self.throttle, context.account.id, allow)
        if name == "secrets":
            return self._secrets_view(method, context, params, body)
        if method == "OPTIONS":
            return json_response(
                200, {"name": name.title(), "renders": ["application/json"]}, allow
            )
        if method not in ("GET", "HEAD"):
            return error(405, f'Method "{method}" not allowed.', allow)
        if name == "apps":
            apps = [
                app
                for app in reversed(self.store.apps.values())
                if can_access_app(context.account, app)
            ]
            apps.sort(key=lambda app: app.created_at, reverse=True)
            return json_response(200, {"data": [app_item(app) for app in apps]}, allow)
        if name == "app":
            if context.app is None:  # not reached: the detail URL always names an app
                return error(404, f"App with ID {detail_id} not found", allow)
            if not context.app.sse:
                return error(403, SSE_DISABLED + ".", allow)
            return json_response(200, app_item(context.app), allow)
        # environments
        if context.app is None:
            return error(403, "Could not resolve app from request.", allow)
        if not context.app.sse:
            return error(403, SSE_DISABLED + ".", allow)
        visible = [env for env in context.app.envs if can_access(context.account, env)]
        return json_response(200, {"data": [_env_item(env) for env in visible]}, allow)

    def _secrets_view(
        self, method: str, context: Context, params: dict[str, str], body: bytes
    ) -> FakeResponse:
        allow = SECRETS_ALLOW
        if method not in SECRETS_METHODS:
            return error(403, f"Unsupported HTTP method: {method}", allow)
        env = context.env
        if env is None:
            return error(403, _ENV_CONTEXT, allow)
        if not self.store.apps[env.app_id].sse:
            return error(400, SSE_DISABLED, allow)
        if method == "GET":
            return self._list_secrets(context, env, params)

        def item(secret: Secret) -> dict[str, Any]:
            return self.secret_item(secret, env, context.account, check_access=False)

        writes = _rest_writes.RestWrites(self.store, context, env, item, self.legacy)
        payload = _rest_writes.parse_body(body)
        if method == "POST":
            return writes.create(payload)
        if method == "PUT":
            return writes.update(payload)
        return writes.delete(payload)

    def _list_secrets(
        self, context: Context, env: Environment, params: dict[str, str]
    ) -> FakeResponse:
        lease_ttl = params.get("lease_ttl")
        if lease_ttl:
            try:
                int(lease_ttl)
            except ValueError:
                return error(400, "lease_ttl must be a valid integer (seconds)", SECRETS_ALLOW)
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
                item = self.secret_item(secret, env, context.account, check_access=True)
                items.extend([item] * repeat)
        if truthy_flag(params.get("dynamic")) or truthy_flag(params.get("include_dynamic")):
            for dynamic in env.dynamic.values():
                if folder_path is None or dynamic.path == folder_path:
                    items.append(_dynamic_item(dynamic))
        return json_response(200, items, SECRETS_ALLOW)

    def secret_item(
        self, secret: Secret, env: Environment, account: Account, *, check_access: bool
    ) -> dict[str, Any]:
        """A secret as the REST API lists it: camelCase, value resolved."""
        reader = account if check_access else None
        override = None
        if account.kind == "User":
            stored = self.store.overrides.get((account.id, secret.id))
            if stored is not None:
                override = {
                    "id": stored.id,
                    "value": _references.resolve(self.store, stored.value, env, reader, ()),
                    "isActive": stored.is_active,
                    "createdAt": iso(stored.created_at),
                    "updatedAt": iso(stored.updated_at),
                }
        value = _references.resolve(self.store, secret.value, env, reader, (secret.id,))
        return {
            "id": secret.id,
            "key": secret.key,
            "value": value,
            "comment": secret.comment,
            "tags": list(secret.tags),
            "override": override,
            **stored_fields(secret),
        }


def stored_fields(secret: Secret) -> dict[str, Any]:
    """The camelCase fields of a secret after ``override``, as both the API and tests see them."""
    return {
        "type": secret.type,
        "lifecycle": "static",
        "path": secret.path,
        "keyDigest": secret.key_digest,
        "version": secret.version,
        "createdAt": iso(secret.created_at),
        "updatedAt": iso(secret.updated_at),
        "environment": secret.env_id,
        "folder": secret.folder,
    }


def app_item(app: App) -> dict[str, Any]:
    """An app as ``/v1/apps/`` lists it."""
    return {
        "id": app.id,
        "name": app.name,
        "description": app.description,
        "sseEnabled": app.sse,
        "createdAt": iso(app.created_at),
        "updatedAt": iso(app.updated_at),
    }


def _env_item(env: Environment) -> dict[str, Any]:
    return {
        "id": env.id,
        "name": env.name,
        "envType": env.env_type,
        "index": env.index,
        "createdAt": iso(env.created_at),
        "updatedAt": iso(env.updated_at),
    }


def _dynamic_item(dynamic: DynamicSecret) -> dict[str, Any]:
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
        "createdAt": iso(dynamic.created_at),
        "updatedAt": iso(dynamic.updated_at),
        "deletedAt": None,
        "lease": None,
    }
