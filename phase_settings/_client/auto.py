"""``"auto"`` mode: REST first, and the end-to-end-encrypted API for an app the REST API refuses
for want of SSE. Routing between the two APIs is the client's decision; neither API knows of
the other. The E2EE modules (and PyNaCl) are imported only on the first SSE-disabled answer
or for an app already switched, so a process that reads only SSE apps never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .._core.api import SecretsApi
from .._core.protocol import Plan
from .._core.switch import ApiSwitch
from .._errors import PhaseSSEDisabledError
from .._models import PhaseApp, PhaseEnvironment, Secret
from .._rest.api import RestApi
from .options import ClientOptions

__all__ = ["AutoApi", "api_for"]

T = TypeVar("T")
Operation = Callable[[SecretsApi], Plan[T]]  # one operation, on whichever API is chosen


def _e2ee_api(options: ClientOptions) -> SecretsApi:
    from .._e2ee.plans import E2EEApi  # the E2EE modules: only for an app without SSE

    return E2EEApi(options)


class AutoApi:
    """REST first; an app that the REST API refuses for want of SSE is read over the
    end-to-end-encrypted API from then on, by every client holding the same switch."""

    mode = "auto"

    def __init__(self, options: ClientOptions, switch: ApiSwitch) -> None:
        self._options = options
        self._base = options.base_url
        self._switch = switch
        self._has_keys = options.credentials.has_key_parts
        self._rest = RestApi()
        self._e2ee: SecretsApi | None = None

    def _e2ee_plan(self, operation: Operation[T]) -> Plan[T]:
        if self._e2ee is None:
            self._e2ee = _e2ee_api(self._options)
        return operation(self._e2ee)

    def _routed(self, app_id: str, operation: Operation[T]) -> Plan[T]:
        if not self._switch.is_e2ee(self._base, app_id):
            try:
                return (yield from operation(self._rest))
            except PhaseSSEDisabledError:
                if not self._has_keys:  # the console's REST form: no key parts to decrypt
                    raise
                self._switch.mark_e2ee(self._base, app_id)
        return (yield from self._e2ee_plan(operation))

    def list_secrets(
        self,
        app_id: str,
        env: str,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> Plan[list[Secret]]:
        return self._routed(app_id, lambda api: api.list_secrets(app_id, env, path, key, tags))

    def create_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        items = list(secrets)  # both plans may need them
        return self._routed(app_id, lambda api: api.create_secrets(app_id, env, items))

    def update_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        items = list(secrets)
        return self._routed(app_id, lambda api: api.update_secrets(app_id, env, items))

    def delete_secrets(self, app_id: str, env: str, ids: Iterable[str]) -> Plan[int]:
        id_list = list(ids)
        return self._routed(app_id, lambda api: api.delete_secrets(app_id, env, id_list))

    def list_apps(self) -> Plan[list[PhaseApp]]:
        return self._rest.list_apps()  # the REST API lists apps with and without SSE

    def list_environments(self, app_id: str) -> Plan[list[PhaseEnvironment]]:
        return self._routed(app_id, lambda api: api.list_environments(app_id))


def api_for(options: ClientOptions, switch: ApiSwitch) -> SecretsApi:
    """The API of ``options.mode``; ``switch`` is what ``"auto"`` mode learns into."""
    if options.mode == "e2ee":
        return _e2ee_api(options)
    if options.mode == "sse":
        return RestApi()
    return AutoApi(options, switch)
