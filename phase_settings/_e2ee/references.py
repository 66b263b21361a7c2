"""Secret references resolved on the client, with the rules the REST API applies on the server.

The end-to-end-encrypted API returns values as written, so ``${KEY}``, ``${/folder/KEY}``,
``${env.KEY}`` and ``${app::env.KEY}`` are resolved here, exactly as the REST API would:

* Three patterns, applied in this order to each value: cross-app, cross-environment, local.
  ``${{…}}`` is never a reference; ``${KEY}`` means the root folder of the same environment
  (not the referencing secret's folder); the key ref splits at its last ``/`` into folder and
  key; an environment name ends at the first ``.``; names match case-insensitively, keys exactly.
* Every occurrence of a reference is replaced (textually); a referenced value is resolved first
  (recursively, in the referenced environment), up to a depth of 25. A reference into a cycle or
  past the depth stays literal, and so does every reference that leads to it.
* A reference to an environment the token cannot read stops the value there: references already
  replaced stay replaced, that one and every later one stay literal. A missing app, environment
  or key leaves only that reference literal.

The resolver does no I/O. It is given what has been fetched and says what else it needs:

    resolver = ReferenceResolver("my-app", "Production")
    resolver.add("my-app", "Production", "/", home_secrets)
    while needed := resolver.needed(home_secrets):      # each (app, env, folder) once
        for fetch in needed:
            resolver.add(fetch.app, fetch.env, fetch.path, fetched_secrets) or resolver.mark(…)
    resolved = resolver.resolve(home_secrets)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import NamedTuple

from .._models import Secret, SecretOverride

__all__ = ["MAX_REFERENCE_DEPTH", "Fetch", "ReferenceResolver", "Unreadable"]

MAX_REFERENCE_DEPTH = 25
_MAX_LOOKUPS = 2_000  # per value: a wide reference graph must not take exponential time
_MAX_RESOLVED_CHARS = 1_000_000

_CROSS_APP = re.compile(r"\$\{(?!\{)([^{}]+?)::([^{}]+?)\.([^{}]+?)\}")
_CROSS_ENV = re.compile(r"\$\{(?!\{)(?![^{}]*::)([^{}.]+?)\.([^{}]+?)\}")
_LOCAL = re.compile(r"\$\{(?!\{)([^{}.]+?)\}")


class Unreadable(Enum):
    """Why a referenced environment has no secrets to offer."""

    MISSING = "missing"  # no such app or environment: only that reference stays literal
    NO_ACCESS = "no_access"  # the token cannot read it: the rest of the value stays literal


class Fetch(NamedTuple):
    """One (app, environment, folder) the resolver needs: names lower-cased, folder normalised."""

    app: str
    env: str
    path: str


def normalize_path(path: str) -> str:
    """A folder path as the server normalises it: ``backend/`` and ``//backend`` are
    ``/backend``; ``/`` stays ``/``."""
    while "//" in path:
        path = path.replace("//", "/")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


def _split_keyref(keyref: str) -> tuple[str, str]:
    slash = keyref.rfind("/")
    if slash == -1:
        return "/", keyref
    return normalize_path(keyref[:slash]), keyref[slash + 1 :]


def _distinct(matches: Iterable[re.Match[str]]) -> list[re.Match[str]]:
    seen: dict[str, re.Match[str]] = {}
    for match in matches:
        seen.setdefault(match.group(0), match)
    return list(seen.values())


@dataclasses.dataclass
class _Env:
    state: Unreadable | None = None
    all_paths: bool = False
    folders: dict[str, dict[str, Secret]] = dataclasses.field(default_factory=dict)


class _Budget:
    __slots__ = ("lookups",)

    def __init__(self) -> None:
        self.lookups = _MAX_LOOKUPS


class ReferenceResolver:
    """Resolves the references of one environment's secrets (the "home" environment).

    Args:
        app: the home app's name.
        env: the home environment's name.
    """

    def __init__(self, app: str, env: str) -> None:
        self._home = (app.lower(), env.lower())
        self._envs: dict[tuple[str, str], _Env] = {}
        self._needed: set[Fetch] | None = None

    # -- what has been fetched ---------------------------------------------------------------

    def add(self, app: str, env: str, path: str | None, secrets: Iterable[Secret]) -> None:
        """Record the secrets fetched from one folder (``path``) of ``app``/``env``, or from
        every folder (``path=None``). The first secret of a (folder, key) wins."""
        entry = self._envs.setdefault((app.lower(), env.lower()), _Env())
        if path is None:
            entry.all_paths = True
        else:
            entry.folders.setdefault(normalize_path(path), {})
        for secret in secrets:
            folder = entry.folders.setdefault(normalize_path(secret.path), {})
            folder.setdefault(secret.key, secret)

    def mark(self, app: str, env: str, state: Unreadable) -> None:
        """Record that ``app``/``env`` has nothing to offer, and why."""
        self._envs.setdefault((app.lower(), env.lower()), _Env()).state = state

    # -- planning and resolving --------------------------------------------------------------

    def needed(self, secrets: Iterable[Secret]) -> set[Fetch]:
        """The folders not fetched yet that resolving ``secrets`` reads. Empty once everything
        is there; call again after adding what it returned (chains reveal further folders)."""
        self._needed = set()
        try:
            for secret in secrets:
                self._resolve_secret(secret)
            return self._needed
        finally:
            self._needed = None

    def resolve(self, secrets: Sequence[Secret]) -> list[Secret]:
        """``secrets`` with references resolved in their values and personal overrides.

        Folders never fetched count as missing, so call :meth:`needed` first.
        """
        return [self._resolve_secret(secret) for secret in secrets]

    def _resolve_secret(self, secret: Secret) -> Secret:
        app, env = self._home
        value = self._resolve(secret.value, app, env, (self._identity(app, env, secret),))
        override = secret.override
        if override is not None and "${" in override.value:
            override = SecretOverride(
                override.id,
                self._resolve(override.value, app, env, ()),
                override.is_active,
                override.created_at,
                override.updated_at,
            )
        if value == secret.value and override is secret.override:
            return secret
        return dataclasses.replace(secret, value=value, override=override)

    @staticmethod
    def _identity(app: str, env: str, secret: Secret) -> str:
        return secret.id or f"{app}\0{env}\0{secret.path}\0{secret.key}"

    def _resolve(self, value: str, app: str, env: str, chain: tuple[str, ...]) -> str:
        return self._resolve_in(value, app, env, chain, _Budget())[0]

    def _resolve_in(
        self, value: str, app: str, env: str, chain: tuple[str, ...], budget: _Budget
    ) -> tuple[str, bool]:
        """``value`` resolved in ``app``/``env``, and whether a reference in it led into a cycle
        or past the depth (such a reference stays literal, as does each leading to it)."""
        if "${" not in value:
            return value, False
        tainted = False

        def substitute(ref: str, target: tuple[str, str], keyref: str) -> None:
            nonlocal value, tainted
            found = self._lookup(target, keyref, chain, budget)
            if found is None:
                return
            text, bad = found
            if bad:
                tainted = True
                return
            replaced = value.replace(ref, text)
            if len(replaced) <= _MAX_RESOLVED_CHARS:
                value = replaced

        for match in _distinct(_CROSS_APP.finditer(value)):
            ref_app, ref_env, keyref = match.groups()
            target = (ref_app.lower(), ref_env.lower())
            state = self._state(target, keyref)
            if state is Unreadable.MISSING:
                continue
            if state is Unreadable.NO_ACCESS:
                return value, tainted
            substitute(match.group(0), target, keyref)
        for match in _distinct(_CROSS_ENV.finditer(value)):
            ref_env, keyref = match.groups()
            target = (app, ref_env.lower())
            state = self._state(target, keyref)
            if state is Unreadable.MISSING:
                continue
            if state is Unreadable.NO_ACCESS:
                return value, tainted
            substitute(match.group(0), target, keyref)
        for match in _distinct(_LOCAL.finditer(value)):
            substitute(match.group(0), (app, env), match.group(1))
        return value, tainted

    def _state(self, target: tuple[str, str], keyref: str) -> Unreadable | None:
        entry = self._envs.get(target)
        if entry is None:  # never fetched: planning asks for it, resolving treats it as missing
            if self._needed is not None:
                self._needed.add(Fetch(*target, _split_keyref(keyref)[0]))
            return Unreadable.MISSING
        return entry.state

    def _lookup(
        self, target: tuple[str, str], keyref: str, chain: tuple[str, ...], budget: _Budget
    ) -> tuple[str, bool] | None:
        path, key = _split_keyref(keyref)
        entry = self._envs.get(target)
        if entry is None or entry.state is not None:
            if entry is None and self._needed is not None:
                self._needed.add(Fetch(*target, path))
            return None
        folder = entry.folders.get(path)
        if folder is None and not entry.all_paths:
            if self._needed is not None:
                self._needed.add(Fetch(*target, path))
            return None
        secret = folder.get(key) if folder is not None else None
        if secret is None:
            return None
        budget.lookups -= 1
        identity = self._identity(*target, secret)
        if identity in chain or len(chain) > MAX_REFERENCE_DEPTH or budget.lookups < 0:
            return "", True
        return self._resolve_in(secret.value, *target, (*chain, identity), budget)
