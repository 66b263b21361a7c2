"""Replies of the end-to-end-encrypted API: the tokens reply and the secrets list, decrypted.

:func:`parse_tokens` reads what a token may see and unwraps its account key;
:class:`TokenAccess` picks apps and environments (exact, case-insensitive names, as the REST API
does; a miss lists what the token can read) and opens each environment's keys once;
:func:`parse_secrets` decrypts a secrets list into the same :class:`~phase_settings.Secret`
records as REST (references still as written: see ``_references``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .._errors import PhaseNotFoundError, PhaseResponseError
from .._models import PhaseApp, PhaseEnvironment, Secret, SecretOverride, _bad, _time
from .cipher import CipherError
from .keys import AccountKeys, EnvKeys, TokenKeys

__all__ = ["AppEntry", "EnvEntry", "TokenAccess", "parse_secrets", "parse_tokens"]


class EnvEntry:
    """One environment the token holds a key for (its wrapped keys are never shown)."""

    __slots__ = (
        "app_id",
        "app_name",
        "id",
        "identity_key",
        "name",
        "record",
        "wrapped_salt",
        "wrapped_seed",
    )

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
        index = environment.get("index", 0)
        env_type = environment.get("env_type")
        self.record = PhaseEnvironment(
            id=self.id,
            name=self.name,
            env_type=env_type if isinstance(env_type, str) else "custom",
            index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
            created_at=_time(environment, "created_at"),
            updated_at=_time(environment, "updated_at"),
        )

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

    def list_apps(self) -> list[PhaseApp]:
        """The apps the token can read, as ``list_apps`` returns them over REST (``sse_enabled``
        from the reply's ``encryption``; no description or dates: this API gives none)."""
        return [PhaseApp(a.id, a.name, None, a.encryption == "SSE") for a in self.apps]

    def list_environments(self, app_id: str) -> list[PhaseEnvironment]:
        """The environments of ``app_id`` the token can read, in the order served.

        Raises:
            PhaseNotFoundError: the token cannot read the app.
        """
        return [env.record for env in self.app(app_id).environments]

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
        apps.append(
            AppEntry(
                app_id, name, encryption if isinstance(encryption, str) else "E2E", tuple(envs)
            )
        )
    return TokenAccess(token.unwrap(share), tuple(apps))


# --- the secrets reply ------------------------------------------------------------------------


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
    for name in (
        "id",
        "key",
        "value",
        "comment",
        "path",
        "type",
        "lifecycle",
        "environment",
        "folder",
    ):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise _bad(f"'{name}' is not a string")
    if not raw.get("key") or not isinstance(raw.get("value"), str):
        raise _bad("a secret has no 'key' and 'value' strings")
    key = _decrypt(env, raw["key"], f"the key of secret {secret_id!r}")
    # An empty field is served as is (the server encrypts an SSE app's empty value as "").
    value = _decrypt(env, raw["value"], f"the value of {key}") if raw["value"] else ""
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
        id=raw["id"] if isinstance(raw.get("id"), str) else "",
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
