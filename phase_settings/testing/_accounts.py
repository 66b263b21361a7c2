"""The accounts of the fake: service accounts, legacy service tokens, users and overrides.

Every token minted here carries real key parts, as the console and the server mint them: the
account's X25519 public key, the first XOR share of its private key and the key that wraps the
second share, which the tokens endpoint hands out.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable

from . import _crypto
from ._endpoint import Endpoint
from ._state import Account, normalize_path


def _token_segment(token: str) -> str:
    """The 64-hex value the server sees, from any accepted token spelling."""
    token = token.strip()
    if token.startswith(("pss_service:", "pss_user:")):
        parts = token.split(":")
        if len(parts) > 2:
            return parts[2]
    if " " in token:
        return token.rsplit(" ", 1)[-1]
    return token


class Accounts(Endpoint):
    """Creating and revoking tokens, and users' personal overrides."""

    # -------------------------------------------------------------- accounts

    def add_service_account(
        self, envs: Iterable[str] | None = ("development",), apps: Iterable[str] | None = None
    ) -> str:
        """Create a service account with one token.

        Args:
            envs: Environment names it can read, case-insensitive, in every app it can see;
                None means every environment (of apps added later too).
            apps: The app ids it can see; None means every app.

        Returns:
            A token ``pss_service:v2:<token>:<pub>:<share0>:<wrapKey>`` (64 hex each) whose
            key parts open the key share and the environment keys the tokens endpoint sends.
        """
        return self._add_account("ServiceAccount", "pss_service:v2", envs, apps)

    def add_service_token(self, app_id: str, envs: Iterable[str] | None = ("development",)) -> str:
        """Create a legacy, app-scoped Service token.

        Args:
            app_id: The only app it can read.
            envs: Environment names it holds keys for; None means all of the app's.

        Returns:
            A token ``pss_service:v1:<64 hex>:…`` (sent as ``Bearer Service <64 hex>``).

        Raises:
            KeyError: No such app.
        """
        with self._lock:
            self._store.app(app_id)
        return self._add_account("Service", "pss_service:v1", envs, (app_id,))

    def add_user(self, envs: Iterable[str] | None = None, apps: Iterable[str] | None = None) -> str:
        """Create an organisation member with a personal access token.

        Args:
            envs: Environment names the user can read; None (the default) means all.
            apps: App ids the user can see; None means all.

        Returns:
            A token ``pss_user:v1:<token>:<pub>:<share0>:<wrapKey>`` (64 hex each).
        """
        return self._add_account("User", "pss_user:v1", envs, apps)

    def revoke(self, token: str) -> None:
        """Delete a token: afterwards it gets 401 ``Token expired or deleted``.

        Args:
            token: The token as returned (``pss_…``), or its 64-hex segment.

        Raises:
            KeyError: The token is unknown.
        """
        with self._lock:
            account = self._store.tokens.get(_token_segment(token))
            if account is None:
                raise KeyError("unknown token")
            account.revoked = True

    def set_override(
        self,
        user: str,
        app_id: str,
        env: str,
        key: str,
        value: str,
        active: bool = True,
        path: str = "/",
    ) -> None:
        """Set a user's personal override of a secret (created or replaced).

        Args:
            user: The user's token, as returned by :meth:`add_user`.
            app_id: The app's id.
            env: The environment's name.
            key: The secret's key.
            value: The override value (REST resolves references in it; on an app without
                SSE it is stored encrypted).
            active: Whether the override is active.
            path: The secret's folder.

        Raises:
            KeyError: Unknown token, app, environment or secret.
            ValueError: The token is not a user token.
        """
        with self._lock:
            account = self._store.tokens.get(_token_segment(user))
            if account is None:
                raise KeyError("unknown token")
            if account.kind != "User":
                raise ValueError("personal overrides belong to user tokens")
            environment = self._store.env(app_id, env)
            secret = self._store.find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                raise KeyError(key)
            stored = self._store.stored(environment, value)
            self._store.upsert_override(account, secret, stored, active)

    def _add_account(
        self,
        kind: str,
        prefix: str,
        envs: Iterable[str] | None,
        apps: Iterable[str] | None,
    ) -> str:
        if isinstance(envs, str) or isinstance(apps, str):
            raise TypeError("envs and apps take an iterable of names or ids, not one string")
        private_key, public_key, share0, wrap_key = _crypto.mint_account()
        account = Account(
            id=str(uuid.uuid4()),
            kind=kind,
            envs=None if envs is None else frozenset(e.lower() for e in envs),
            apps=None if apps is None else frozenset(apps),
            public_key=public_key,
            share1=_crypto.xor(private_key, share0),
            wrap_key=wrap_key,
            private_key=private_key,
        )
        value = secrets.token_hex(32)
        parts = (prefix, value, public_key.hex(), share0.hex(), wrap_key.hex())
        with self._lock:
            self._store.tokens[value] = account
        return ":".join(parts)
