"""The E2EE API's ``GET /service/secrets/tokens/``: identity, key share and environment keys.

The view has no token authentication of its own, so it is throttled per client IP (every
principal on loopback shares one bucket), a missing header is a 500 and a bad token a 403.
The account's key share is wrapped with its token's wrap key, and each environment's seed and
salt are wrapped for the account's public key, once per (account, environment) as the server
stores them.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import _crypto
from ._auth import TOKEN_GONE, account_of
from ._state import Account, Environment, EnvKey, Store, can_access, iso, now
from ._throttle import Throttle
from ._wire import SERVER_ERROR, TOKENS_WIRE, FakeResponse

# The bucket of the tokens endpoint: DRF keys anonymous requests by client IP.
TOKENS_BUCKET = "anon_127.0.0.1"


def tokens_view(
    store: Store, throttle: Throttle, method: str, headers: dict[str, str]
) -> FakeResponse:
    """Answer a request to ``/service/secrets/tokens/``."""
    wire = TOKENS_WIRE
    refused = throttle.check(TOKENS_BUCKET)
    if refused is not None:
        return wire.error(429, refused[0], refused[1])
    if method not in ("GET", "HEAD"):
        return wire.error(405, f'Method "{method}" not allowed.')
    authorization = headers.get("authorization")
    if authorization is None:
        return wire.spaced_error(500, SERVER_ERROR)
    account = account_of(store, authorization)
    if account is None:
        return wire.spaced_error(403, TOKEN_GONE)
    return wire.json(200, tokens_payload(store, account))


def tokens_payload(store: Store, account: Account) -> dict[str, Any]:
    """The tokens response of one account, keys in the order the server sends them."""
    if account.wrapped_share is None:
        account.wrapped_share = _crypto.wrap_share(account.share1, account.wrap_key)
    payload: dict[str, Any] = {"wrapped_key_share": account.wrapped_share}
    if account.kind == "User":
        payload.update(user_id=account.id, offline_enabled=False)
    elif account.kind == "ServiceAccount":
        payload.update(account_id=account.id, offline_enabled=False)
    payload["organisation"] = {"id": store.org_id, "name": store.org_name}
    apps: list[dict[str, Any]] = []
    for app in store.apps.values():
        keys = [_env_key(account, env) for env in app.envs if can_access(account, env)]
        if not keys:
            continue
        encryption = "SSE" if app.sse and account.kind != "Service" else "E2E"
        apps.append(
            {"id": app.id, "name": app.name, "encryption": encryption, "environment_keys": keys}
        )
    payload["apps"] = apps
    return payload


def _env_key(account: Account, env: Environment) -> dict[str, Any]:
    row = account.env_keys.get(env.id)
    if row is None:
        row = EnvKey(
            id=str(uuid.uuid4()),
            wrapped_seed=_crypto.encrypt(env.seed.hex(), account.public_key),
            wrapped_salt=_crypto.encrypt(env.salt_hex, account.public_key),
            created_at=now(),
        )
        account.env_keys[env.id] = row
    return {
        "id": row.id,
        "environment": {
            "id": env.id,
            "name": env.name,
            "env_type": env.env_type,
            "index": env.index,
            "created_at": iso(env.created_at),
            "updated_at": iso(env.updated_at),
        },
        "paths": None,
        "identity_key": env.keypair()[0].hex(),
        "wrapped_seed": row.wrapped_seed,
        "wrapped_salt": row.wrapped_salt,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.created_at),
        "deleted_at": None,
        "user": account.id if account.kind == "User" else None,
        "service_account": account.id if account.kind == "ServiceAccount" else None,
    }
