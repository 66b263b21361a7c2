"""The six operations of Phase's REST API as plans (see :mod:`._protocol`): what to send and
how to read the reply, written once for the sync and async clients.

This is the per-mode request/reply layer: the REST (server-side encryption) mode needs one
request per operation; another mode provides the same operations with its own plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._core.protocol import Plan, Request
from .._errors import PhaseConfigError
from .._models import (
    PhaseApp,
    PhaseEnvironment,
    Secret,
    parse_apps,
    parse_environments,
    parse_secrets,
)

__all__ = ["RestApi"]

_SECRETS = "/v1/secrets/"


def secret_params(
    app_id: str,
    env: str,
    path: str | None = "/",
    key: str | None = None,
    tags: Sequence[str] | str | None = None,
) -> dict[str, str]:
    if not app_id or not isinstance(app_id, str):
        raise PhaseConfigError("app_id is required: the UUID of a Phase app")
    if not env or not isinstance(env, str):
        raise PhaseConfigError("env is required: the name of a Phase environment")
    params = {"app_id": app_id, "env": env}
    if path is not None:
        params["path"] = path
    if key is not None:
        params["key"] = key
    if tags:
        params["tags"] = tags if isinstance(tags, str) else ",".join(tags)
    return params


def secrets_body(secrets: Iterable[Mapping[str, Any]], *, need_id: bool) -> dict[str, Any]:
    items = []
    for secret in secrets:
        if not isinstance(secret, Mapping):
            raise PhaseConfigError("each secret must be a mapping such as {'key': …}")
        item = dict(secret)
        if need_id and not item.get("id"):
            raise PhaseConfigError("each secret to update needs the 'id' Phase gave it")
        if not need_id and not item.get("key"):
            raise PhaseConfigError("each secret to create needs a non-empty 'key'")
        override = item.get("override")
        if isinstance(override, Mapping) and "is_active" in override:
            override = dict(override)
            override["isActive"] = override.pop("is_active")
            item["override"] = override
        if "tags" in item and not isinstance(item["tags"], list):
            item["tags"] = list(item["tags"])
        items.append(item)
    return {"secrets": items}


class RestApi:
    """The REST API with server-side encryption: one request per operation."""

    mode = "sse"

    def list_secrets(
        self,
        app_id: str,
        env: str,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> Plan[list[Secret]]:
        params = secret_params(app_id, env, path, key, tags)
        return parse_secrets((yield Request("GET", _SECRETS, params)))

    def create_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        body = secrets_body(secrets, need_id=False)
        if not body["secrets"]:
            return []
        params = secret_params(app_id, env, None)
        return parse_secrets((yield Request("POST", _SECRETS, params, body)))

    def update_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        body = secrets_body(secrets, need_id=True)
        if not body["secrets"]:
            return []
        params = secret_params(app_id, env, None)
        return parse_secrets((yield Request("PUT", _SECRETS, params, body)))

    def delete_secrets(self, app_id: str, env: str, ids: Iterable[str]) -> Plan[int]:
        id_list = [str(i) for i in ids]
        if not id_list:
            return 0
        params = secret_params(app_id, env, None)
        yield Request("DELETE", _SECRETS, params, {"secrets": id_list})
        return len(id_list)

    def list_apps(self) -> Plan[list[PhaseApp]]:
        return parse_apps((yield Request("GET", "/v1/apps/")))

    def list_environments(self, app_id: str) -> Plan[list[PhaseEnvironment]]:
        return parse_environments((yield Request("GET", "/v1/environments/", {"app_id": app_id})))
