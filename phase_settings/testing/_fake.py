"""``FakePhase``: an in-memory Phase server that answers like the real one.

It serves both of Phase's APIs, following the recordings of a real v2.73.2 server: the public
REST API (server-side encryption; the server resolves references) and the end-to-end-encrypted
API of Phase's own CLI and SDKs (``/service/secrets/tokens/`` and ``/service/secrets/``;
ciphertext only). An app added with ``sse=False`` holds only ciphertext made with its
environments' keys, and every token minted here carries key parts that really decrypt.

This module holds the test-facing state API; answering requests is :mod:`._endpoint`'s job.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from . import _crypto
from ._accounts import Accounts
from ._rest import stored_fields
from ._seed import seed_fake
from ._serving import RecordedRequest
from ._state import (
    DEFAULT_ENVIRONMENTS,
    SECRET_TYPES,
    App,
    DynamicSecret,
    iso,
    normalize_path,
    now,
)
from ._wire import FakeResponse

__all__ = ["FakePhase", "FakeResponse", "RecordedRequest", "normalize_path"]

_iso = iso  # the server's timestamp format, importable from here by tests


class FakePhase(Accounts):
    """An in-memory Phase server for tests: real HTTP on loopback, or an httpx transport.

    Thread-safe: tests may change the state while a server thread answers requests.

    Example:
        ```python
        fake = FakePhase()
        app_id = fake.add_app("demo")
        fake.set_secret(app_id, "development", "DB_HOST", "db")
        token = fake.add_service_account(envs=("development",))
        with fake.serve() as url:  # PHASE_HOST=url
            ...
        ```

    Args:
        legacy_auth: Behave like a server before v2.69.0: every 401 becomes a 403 without
            ``WWW-Authenticate``, a missing ``app_id``/``env`` gives ``Missing app_id
            parameter``/``Missing env parameter``, a malformed Authorization header gives a
            500 HTML page, a path without its trailing slash is redirected (301), the
            ``/v1/apps/`` and ``/v1/environments/`` routes do not exist, and DELETE answers
            ``Secret does not exist`` and always says "secrets".
        clock: The monotonic clock used for the throttle window and request timestamps.
    """

    # ------------------------------------------------------------------ apps

    def add_app(
        self,
        name: str,
        sse: bool = True,
        environments: Iterable[str] = DEFAULT_ENVIRONMENTS,
        *,
        app_id: str | None = None,
        description: str | None = None,
    ) -> str:
        """Create an app with its environments (each with its own seed and salt).

        Args:
            name: The app's name (cross-app references find it case-insensitively).
            sse: Whether server-side encryption is on. Without it the REST API refuses the
                app, and the fake stores only ciphertext for it (served on the E2EE API).
            environments: Environment names, in index order. ``Development``, ``Staging``
                and ``Production`` get the types ``dev``, ``staging`` and ``prod``; any other
                name is ``custom``.
            app_id: The app's id; a random UUID when None.
            description: The app's description, as listed by ``/v1/apps/``.

        Returns:
            The app id.

        Raises:
            ValueError: The id is taken, or two environments share a name.
        """
        env_names = [str(env) for env in environments]
        lowered = [env.lower() for env in env_names]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"duplicate environment names in {env_names!r}")
        at = now()
        new_id = app_id or str(uuid.uuid4())
        with self._lock:
            if new_id in self._store.apps:
                raise ValueError(f"an app with id {new_id!r} exists already")
            app = App(new_id, name, description, sse, at, at)
            for index, env_name in enumerate(env_names):
                app.envs.append(self._store.new_environment(new_id, env_name, index, at))
            self._store.apps[new_id] = app
        return new_id

    def app_id(self, name: str) -> str:
        """The id of the first app with this name (case-insensitive).

        Raises:
            KeyError: No app has that name.
        """
        with self._lock:
            for app in self._store.apps.values():
                if app.name.lower() == name.lower():
                    return app.id
        raise KeyError(name)

    def env_id(self, app_id: str, env: str) -> str:
        """The id of an app's environment (what the ``Environment`` header carries).

        Args:
            app_id: The app's id.
            env: The environment's name, case-insensitive.

        Raises:
            KeyError: No such app or environment.
        """
        with self._lock:
            return self._store.env(app_id, env).id

    def set_sse(self, app_id: str, enabled: bool) -> None:
        """Turn server-side encryption on or off (stored values are converted).

        Raises:
            KeyError: No such app.
        """
        with self._lock:
            app = self._store.app(app_id)
            self._store.set_encryption(app, enabled)
            app.updated_at = now()

    # --------------------------------------------------------------- secrets

    def set_secret(
        self,
        app_id: str,
        env: str,
        key: str,
        value: str,
        path: str = "/",
        tags: Iterable[str] = (),
        comment: str = "",
        type: str = "secret",
    ) -> str:
        """Create a secret, or update the one with this key at this path.

        An update bumps ``version`` by one and sets ``updatedAt``, as a PUT does. On an app
        without SSE, key, value and comment are stored encrypted for the environment (with
        the digest of the upper-cased key), as a client would write them.

        Args:
            app_id: The app's id.
            env: The environment's name, matched case-insensitively.
            key: The key; stored upper-cased, as the server does.
            value: The raw value; references in it are resolved when REST reads it.
            path: The folder, normalised like the server (``backend/`` is ``/backend``).
            tags: Tag names; they replace the secret's tags on an update.
            comment: The comment.
            type: ``"secret"``, ``"sealed"`` or ``"config"``.

        Returns:
            The secret's id.

        Raises:
            KeyError: No such app or environment.
            ValueError: An empty key or an unknown type.
        """
        if not key:
            raise ValueError("key must not be empty")
        if type not in SECRET_TYPES:
            raise ValueError(f"type must be one of {list(SECRET_TYPES)}, got {type!r}")
        names = list(dict.fromkeys(str(tag) for tag in tags))
        with self._lock:
            environment = self._store.env(app_id, env)
            folder_path = normalize_path(path)
            upper = key.upper()
            existing = self._store.find_secret(environment, folder_path, upper)
            stored = functools.partial(self._store.stored, environment)
            if existing is not None:
                existing.value = stored(value)
                existing.comment = stored(comment)
                existing.tags = names
                existing.type = type
                existing.version += 1
                existing.updated_at = now()
                return existing.id
            digest = _crypto.digest(upper, environment.salt_hex)
            return self._store.create_secret(
                environment,
                stored(upper),
                stored(value),
                folder_path,
                stored(comment),
                names,
                type,
                key_digest=digest,
            ).id

    def delete_secret(self, app_id: str, env: str, key: str, path: str = "/") -> None:
        """Delete a secret and the personal overrides of it.

        Raises:
            KeyError: No such app, environment or secret.
        """
        with self._lock:
            environment = self._store.env(app_id, env)
            secret = self._store.find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                raise KeyError(key)
            self._store.remove_secret(secret)

    def get_secret(self, app_id: str, env: str, key: str, path: str = "/") -> dict[str, Any] | None:
        """The stored record of a secret, for assertions.

        Args:
            app_id: The app's id.
            env: The environment's name.
            key: The key, matched case-insensitively.
            path: The folder.

        Returns:
            A dict shaped like a REST item (camelCase, without ``override``) holding what the
            server stores: the raw value with its references unresolved, or on an app without
            SSE the ciphertexts of key, value and comment. None when there is no such secret.

        Raises:
            KeyError: No such app or environment.
        """
        with self._lock:
            environment = self._store.env(app_id, env)
            secret = self._store.find_secret(environment, normalize_path(path), key.upper())
            if secret is None:
                return None
            return {
                "id": secret.id,
                "key": secret.key,
                "value": secret.value,
                "comment": secret.comment,
                "tags": list(secret.tags),
                **stored_fields(secret),
            }

    def add_dynamic_secret(
        self,
        app_id: str,
        env: str,
        name: str,
        *,
        path: str = "/",
        key_names: Iterable[str] = ("USERNAME", "PASSWORD"),
        provider: str = "aws",
        description: str = "",
    ) -> str:
        """Add a dynamic secret; GET lists it only when asked with ``dynamic=true``.

        Args:
            app_id: The app's id.
            env: The environment's name.
            name: The dynamic secret's name.
            path: Its folder.
            key_names: The keys of its key map (they also clash with new static keys).
            provider: The provider name.
            description: Its description.

        Returns:
            The dynamic secret's id.

        Raises:
            KeyError: No such app or environment.
        """
        at = now()
        with self._lock:
            environment = self._store.env(app_id, env)
            folder_path = normalize_path(path)
            key_map = [
                {
                    "id": str(uuid.uuid4()),
                    "keyName": key_name.upper(),
                    "keyDigest": _crypto.digest(key_name.upper(), environment.salt_hex),
                }
                for key_name in key_names
            ]
            dynamic = DynamicSecret(
                id=str(uuid.uuid4()),
                env_id=environment.id,
                name=name,
                description=description,
                path=folder_path,
                folder=self._store.folder(environment, folder_path),
                provider=provider,
                default_ttl=3600,
                max_ttl=86400,
                key_map=key_map,
                created_at=at,
                updated_at=at,
            )
            environment.dynamic[dynamic.id] = dynamic
            return dynamic.id

    # ------------------------------------------------------------ seeding

    @classmethod
    def from_seed(cls, data: Mapping[str, Any], *, legacy_auth: bool = False) -> FakePhase:
        """Build a fake from seed data (the JSON of ``phase-settings serve-fake --seed``).

        The shape is ``{"apps": [{"name": "demo", "sse": true, "id": "<optional uuid>",
        "environments": {"Development": {"/": {"KEY": "value"}, "/backend": {"K": "v"}}}}]}``.
        The environments listed are the app's (Development, Staging and Production when none
        are). A value is a string, or an object ``{"value": "...", "comment": "...",
        "tags": [...], "type": "config"}``; numbers, booleans and lists are stored as JSON.

        Args:
            data: The parsed seed.
            legacy_auth: As for the constructor.

        Returns:
            A new, not yet serving, FakePhase.

        Raises:
            ValueError: The seed does not have that shape.
        """
        fake = cls(legacy_auth=legacy_auth)
        seed_fake(fake, data)
        return fake

    def _seed_secret(self, app_id: str, env: str, folder: str, key: str, spec: Any) -> None:
        comment, tags, kind = "", [], "secret"
        if isinstance(spec, Mapping):
            value = spec.get("value", "")
            comment = str(spec.get("comment", ""))
            tags = [str(tag) for tag in spec.get("tags", [])]
            kind = str(spec.get("type", "secret"))
        else:
            value = spec
        if not isinstance(value, str):
            value = json.dumps(value)
        self.set_secret(app_id, env, key, value, path=folder, tags=tags, comment=comment, type=kind)

    # ------------------------------------------------------------ internals
