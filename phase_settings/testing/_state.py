"""The fake's state: apps, environments, secrets, personal overrides and accounts.

One :class:`Store` holds everything behind one re-entrant lock. Apps without SSE hold only
what the real server stores for them: ciphertext made with the environment's keys, and the
key digests clients computed. SSE apps hold plaintext (the real server can decrypt them) and
are encrypted on the way out of the E2EE API.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import _crypto

DEFAULT_ENVIRONMENTS = ("Development", "Staging", "Production")
SECRET_TYPES = ("config", "sealed", "secret")
ENV_TYPES = {"development": "dev", "staging": "staging", "production": "prod"}


def normalize_path(path: str) -> str:
    """Normalise a folder path the way the server does (``normalize_path_string``).

    Args:
        path: A folder path such as ``backend/``, ``/backend`` or ``//backend/``.

    Returns:
        The normalised path: ``/`` stays ``/``; repeated slashes are collapsed, a leading slash
        is added and a trailing slash removed, so all three examples give ``/backend``.
    """
    if path == "/":
        return path
    while "//" in path:
        path = path.replace("//", "/")
    if not path.startswith("/"):
        path = "/" + path
    if path.endswith("/") and path != "/":
        path = path[:-1]
    return path


def iso(moment: datetime) -> str:
    """A timestamp as the server renders it (``…Z``)."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


@dataclass
class Environment:
    id: str
    app_id: str
    name: str
    env_type: str
    index: int
    seed: bytes = field(repr=False)
    salt_hex: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
    secrets: dict[str, Secret] = field(default_factory=dict)
    dynamic: dict[str, DynamicSecret] = field(default_factory=dict)
    keys: tuple[bytes, bytes] | None = field(default=None, repr=False)

    def keypair(self) -> tuple[bytes, bytes]:
        """The environment's ``(public, private)`` X25519 keys, derived once from its seed."""
        if self.keys is None:
            self.keys = _crypto.seed_keypair(self.seed)
        return self.keys

    def seal(self, text: str) -> str:
        """``text`` encrypted for this environment; an empty text stays empty."""
        return _crypto.encrypt(text, self.keypair()[0]) if text else ""

    def unseal(self, text: str) -> str:
        """A ``ph:v1`` text of this environment decrypted; empty stays empty."""
        return _crypto.decrypt(text, self.keypair()[1], self.keypair()[0]) if text else ""


@dataclass
class App:
    id: str
    name: str
    description: str | None
    sse: bool
    created_at: datetime
    updated_at: datetime
    envs: list[Environment] = field(default_factory=list)

    def env_named(self, name: str) -> Environment | None:
        wanted = name.lower()
        return next((env for env in self.envs if env.name.lower() == wanted), None)


@dataclass
class Secret:
    """A stored secret. On an app without SSE, key, value and comment are ciphertext."""

    id: str
    env_id: str
    key: str
    key_digest: str
    value: str
    comment: str
    tags: list[str]
    type: str
    path: str
    folder: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    # Ciphertext served on the E2EE API for plaintext kept by an SSE app, by plaintext.
    sealed: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class DynamicSecret:
    id: str
    env_id: str
    name: str
    description: str
    path: str
    folder: str | None
    provider: str
    default_ttl: int
    max_ttl: int
    key_map: list[dict[str, str]]
    created_at: datetime
    updated_at: datetime


@dataclass
class Override:
    id: str
    value: str
    is_active: bool
    created_at: datetime
    updated_at: datetime
    sealed: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class EnvKey:
    """An account's ``EnvironmentKey`` row: the env seed and salt wrapped for its key."""

    id: str
    wrapped_seed: str
    wrapped_salt: str
    created_at: datetime


@dataclass
class Account:
    """A principal with one token. Its X25519 private key is ``share0 ⊕ share1``."""

    id: str
    kind: str
    envs: frozenset[str] | None
    apps: frozenset[str] | None
    public_key: bytes = field(repr=False)
    share1: bytes = field(repr=False)
    wrap_key: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    revoked: bool = False
    wrapped_share: str | None = field(default=None, repr=False)
    env_keys: dict[str, EnvKey] = field(default_factory=dict, repr=False)


def can_access(account: Account, env: Environment) -> bool:
    """Whether the account holds keys for (and so may read) the environment."""
    if account.apps is not None and env.app_id not in account.apps:
        return False
    return account.envs is None or env.name.lower() in account.envs


def can_access_app(account: Account, app: App) -> bool:
    """Whether the account may read some environment of the app."""
    return any(can_access(account, env) for env in app.envs)


class Store:
    """All the fake's data, and the operations every view shares."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.org_id = str(uuid.uuid4())
        self.org_name = "phase-settings-fake"
        self.apps: dict[str, App] = {}
        self.envs: dict[str, Environment] = {}
        self.secret_index: dict[str, Secret] = {}
        self.folders: dict[tuple[str, str], str] = {}
        self.overrides: dict[tuple[str, str], Override] = {}
        self.tokens: dict[str, Account] = {}

    def new_environment(self, app_id: str, name: str, index: int, at: datetime) -> Environment:
        """A new environment with fresh seed and salt, registered in the store."""
        env = Environment(
            id=str(uuid.uuid4()),
            app_id=app_id,
            name=name,
            env_type=ENV_TYPES.get(name.lower(), "custom"),
            index=index,
            seed=secrets.token_bytes(32),
            salt_hex=secrets.token_hex(32),
            created_at=at,
            updated_at=at,
        )
        self.envs[env.id] = env
        return env

    def app(self, app_id: str) -> App:
        app = self.apps.get(app_id)
        if app is None:
            raise KeyError(f"no app with id {app_id!r}")
        return app

    def env(self, app_id: str, env: str) -> Environment:
        environment = self.app(app_id).env_named(env)
        if environment is None:
            raise KeyError(f"app {app_id!r} has no environment {env!r}")
        return environment

    def is_sse(self, env: Environment) -> bool:
        return self.apps[env.app_id].sse

    def stored(self, env: Environment, text: str) -> str:
        """How a plaintext field is kept in ``env``: as is, or encrypted on an app without SSE."""
        return text if self.is_sse(env) else env.seal(text)

    def env_of_secret(self, secret_id: str) -> Environment | None:
        secret = self.secret_index.get(secret_id)
        if secret is not None:
            return self.envs[secret.env_id]
        return next((env for env in self.envs.values() if secret_id in env.dynamic), None)

    def find_secret(self, env: Environment, folder_path: str, key: str) -> Secret | None:
        """The secret with this key in this folder: by name on SSE apps, else by digest."""
        if self.is_sse(env):
            return next(
                (s for s in env.secrets.values() if s.path == folder_path and s.key == key), None
            )
        wanted = _crypto.digest(key, env.salt_hex)
        return next(
            (s for s in env.secrets.values() if s.path == folder_path and s.key_digest == wanted),
            None,
        )

    def clashes(self, env: Environment, folder_path: str, key: str, *, exclude: str | None) -> bool:
        """Whether a secret other than ``exclude`` (or a dynamic key) has this key here."""
        for secret in env.secrets.values():
            if secret.id != exclude and secret.path == folder_path and secret.key == key:
                return True
        for dynamic in env.dynamic.values():
            if dynamic.path == folder_path and any(e["keyName"] == key for e in dynamic.key_map):
                return True
        return False

    def digest_clashes(
        self, env: Environment, folder_path: str, key_digest: str, *, exclude: str | None
    ) -> bool:
        """The E2EE API's duplicate check: the same (path, key digest) in the environment."""
        for secret in env.secrets.values():
            if secret.id != exclude and (secret.path, secret.key_digest) == (
                folder_path,
                key_digest,
            ):
                return True
        for dynamic in env.dynamic.values():
            digests = {entry["keyDigest"] for entry in dynamic.key_map}
            if dynamic.path == folder_path and key_digest in digests:
                return True
        return False

    def folder(self, env: Environment, folder_path: str) -> str | None:
        if folder_path == "/":
            return None
        return self.folders.setdefault((env.id, folder_path), str(uuid.uuid4()))

    def create_secret(
        self,
        env: Environment,
        key: str,
        value: str,
        folder_path: str,
        comment: str,
        tags: list[str],
        kind: str,
        *,
        key_digest: str | None = None,
    ) -> Secret:
        """Store a secret as given; without ``key_digest`` the key is upper-cased and digested."""
        at = now()
        if key_digest is None:
            key = key.upper()
            key_digest = _crypto.digest(key, env.salt_hex)
        secret = Secret(
            id=str(uuid.uuid4()),
            env_id=env.id,
            key=key,
            key_digest=key_digest,
            value=value,
            comment=comment,
            tags=tags,
            type=kind,
            path=folder_path,
            folder=self.folder(env, folder_path),
            version=1,
            created_at=at,
            updated_at=at,
        )
        env.secrets[secret.id] = secret
        self.secret_index[secret.id] = secret
        return secret

    def move_secret(self, secret: Secret, env: Environment) -> None:
        """Put a secret into another environment (what an E2EE PUT does with any id)."""
        if secret.env_id == env.id:
            return
        self.envs[secret.env_id].secrets.pop(secret.id, None)
        secret.env_id = env.id
        env.secrets[secret.id] = secret

    def remove_secret(self, secret: Secret) -> None:
        self.envs[secret.env_id].secrets.pop(secret.id, None)
        self.secret_index.pop(secret.id, None)
        for owner_and_secret in [k for k in self.overrides if k[1] == secret.id]:
            del self.overrides[owner_and_secret]

    def upsert_override(self, account: Account, secret: Secret, value: str, active: bool) -> None:
        at = now()
        existing = self.overrides.get((account.id, secret.id))
        if existing is None:
            self.overrides[(account.id, secret.id)] = Override(
                str(uuid.uuid4()), value, active, at, at
            )
        else:
            existing.value = value
            existing.is_active = active
            existing.updated_at = at

    def set_encryption(self, app: App, sse: bool) -> None:
        """Switch an app's mode, converting what it stores (plaintext ⇄ ciphertext)."""
        if app.sse == sse:
            return
        for env in app.envs:
            for secret in env.secrets.values():
                convert = env.unseal if sse else env.seal
                secret.key, secret.value, secret.comment = (
                    convert(secret.key),
                    convert(secret.value),
                    convert(secret.comment),
                )
                secret.sealed.clear()
                for (_owner, secret_id), override in self.overrides.items():
                    if secret_id == secret.id:
                        override.value = convert(override.value)
                        override.sealed.clear()
        app.sse = sse
