"""The six operations of Phase's REST API as plans (see :mod:`.._core.protocol`): what to send
and how to read the reply, written once for the sync and async clients.

This is the per-mode request/reply layer: the REST (server-side encryption) mode needs one
request per operation; the end-to-end-encrypted API provides the same operations (the
:class:`~.._core.api.SecretsApi` protocol) with its own plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._core.protocol import Plan, Request
from .._core.requests import secret_params, secrets_body
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


class RestApi:
    """The REST API with server-side encryption: one request per operation (a
    :class:`~.._core.api.SecretsApi`)."""

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
