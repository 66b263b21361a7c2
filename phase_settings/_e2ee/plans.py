"""The six client operations over the end-to-end-encrypted API: plans of the protocol core
(see :mod:`.._core.protocol`), written once for the sync and async clients and run under the
same retry and deadline rules as REST.

Each call reads what it needs and decrypts on the client: the tokens request (the token's
apps, environments and wrapped key share), then one secrets request per folder, and one per
other environment that references need. The token's key parts and the keys they open live in
the call's own objects and are gone when it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .._core.credentials import Credentials
from .._core.deadline import current_deadline
from .._core.protocol import Plan, Request, SecretValue
from .._core.requests import secret_params, secrets_body
from .._errors import PhaseError, PhaseResponseError
from .._models import PhaseApp, PhaseEnvironment, Secret
from .api import RULES, create_request, delete_request, e2ee_host, tokens_request, update_request
from .api import Request as E2EERequest
from .keys import EnvKeys, TokenKeys
from .load import E2EELoad
from .references import normalize_path
from .replies import TokenAccess, parse_tokens

__all__ = ["E2EEApi", "E2EEOptions"]

_MAX_BATCHES = 100  # a load needs 2 + one per reference round (at most 30): a bound, not a limit


def _request(request: E2EERequest, endpoint: str) -> Request:
    return Request(
        request.method,
        "",
        None,
        request.json,
        url=request.url,
        headers=request.headers,
        rules=RULES[endpoint],
    )


def _drive(load: E2EELoad) -> Plan[None]:
    """Send what ``load`` asks for until it is complete; each failure goes back to the load,
    which keeps a reference it may not read literal and re-raises anything else."""
    for _ in range(_MAX_BATCHES):
        batch = load.pending()
        if not batch:
            return
        for item in batch:
            try:
                payload = yield _request(item.request, item.endpoint)
            except PhaseError as error:
                load.failed(item, error)
            else:
                load.feed(item, payload)
    raise PhaseResponseError("Phase's replies never completed the load (too many rounds)")


def _tags(tags: Sequence[str] | str | None) -> tuple[str, ...]:
    if not tags:
        return ()
    items = tags.split(",") if isinstance(tags, str) else tags
    return tuple(tag.strip() for tag in items if tag.strip())


class E2EEOptions(Protocol):
    """What this API reads of a client's options (``ClientOptions`` has all of it)."""

    @property
    def base_url(self) -> str: ...
    @property
    def authorization(self) -> SecretValue: ...
    @property
    def credentials(self) -> Credentials: ...
    @property
    def token_fingerprint(self) -> str: ...


class E2EEApi:
    """The end-to-end-encrypted API: decryption and references on the client (a
    :class:`~.._core.api.SecretsApi`)."""

    mode = "e2ee"

    def __init__(self, options: E2EEOptions) -> None:
        self._options = options
        self._host = e2ee_host(options.base_url)

    def _token(self) -> TokenKeys:
        return TokenKeys.from_parts(self._options.credentials.key_parts())

    def _authorization(self) -> str:
        return self._options.authorization.get_secret_value()

    def _load(
        self,
        app_id: str,
        env: str,
        paths: Sequence[str | None],
        tags: Sequence[str] = (),
        access: TokenAccess | None = None,
        *,
        resolve: bool = True,
    ) -> E2EELoad:
        secret_params(app_id, env)  # the same checks, and messages, as REST
        return E2EELoad(
            host=self._host,
            authorization=self._authorization(),
            token=self._token(),
            app_id=app_id,
            env=env,
            paths=paths,
            tags=tags,
            access=access,
            resolve=resolve,
        )

    def _write(self, request: E2EERequest | None) -> Plan[bool]:
        if request is None:
            return False
        yield _request(request, "secrets")
        return True

    def _keys(self, load: E2EELoad) -> EnvKeys:
        keys = load.env_keys
        assert keys is not None  # set once the tokens reply is read
        return keys

    def list_secrets(
        self,
        app_id: str,
        env: str,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> Plan[list[Secret]]:
        # One key reply per load: the folders of a load (the same deadline) share it.
        scope = current_deadline()
        shared_key = ("e2ee-access", self._host, self._options.token_fingerprint)
        access = scope.shared.get(shared_key) if scope is not None else None
        load = self._load(
            app_id, env, (path,), _tags(tags), access if isinstance(access, TokenAccess) else None
        )
        yield from _drive(load)
        if scope is not None and load.access is not None:
            scope.shared[shared_key] = load.access
        secrets = load.result()[0]
        if key:
            wanted = key.upper()  # as the REST API matches ``key``
            secrets = [secret for secret in secrets if secret.key == wanted]
        return secrets

    def _reread(self, app_id: str, env: str, load: E2EELoad) -> Plan[list[Secret]]:
        again = self._load(app_id, env, (None,), access=load.access)
        yield from _drive(again)
        return again.result()[0]

    def create_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        items = secrets_body(secrets, need_id=False)["secrets"]
        if not items:
            return []
        # The tokens request only: the environment's keys.
        load = self._load(app_id, env, (), resolve=False)
        yield from _drive(load)
        request = create_request(self._host, self._authorization(), self._keys(load), items)
        if not (yield from self._write(request)):
            return []
        # The reply is empty: read the environment again for the records Phase made.
        wanted = {
            (normalize_path(str(item.get("path") or "/")), str(item["key"]).strip().upper())
            for item in items
        }
        stored = yield from self._reread(app_id, env, load)
        return [secret for secret in stored if (secret.path, secret.key) in wanted]

    def _current(self, app_id: str, env: str) -> Plan[tuple[E2EELoad, dict[str, Secret]]]:
        load = self._load(app_id, env, (None,), resolve=False)
        yield from _drive(load)
        # As stored: a resolved value is never written back in place of its reference.
        return load, {secret.id: secret for secret in load.unresolved()[0]}

    def update_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        items = secrets_body(secrets, need_id=True)["secrets"]
        if not items:
            return []
        load, current = yield from self._current(app_id, env)
        keys = self._keys(load)
        request = update_request(self._host, self._authorization(), keys, items, current)
        if not (yield from self._write(request)):
            return []
        ids = {str(item["id"]) for item in items}
        stored = yield from self._reread(app_id, env, load)
        return [secret for secret in stored if secret.id in ids]

    def delete_secrets(self, app_id: str, env: str, ids: Iterable[str]) -> Plan[int]:
        id_list = [str(i) for i in ids]
        if not id_list:
            return 0
        load, current = yield from self._current(app_id, env)
        keys = self._keys(load)
        yield from self._write(
            delete_request(self._host, self._authorization(), keys, id_list, current)
        )
        return len(id_list)

    def _access(self) -> Plan[TokenAccess]:
        token = self._token()
        payload = yield _request(tokens_request(self._host, self._authorization()), "tokens")
        return parse_tokens(payload, token)

    def list_apps(self) -> Plan[list[PhaseApp]]:
        return (yield from self._access()).list_apps()

    def list_environments(self, app_id: str) -> Plan[list[PhaseEnvironment]]:
        return (yield from self._access()).list_environments(app_id)
