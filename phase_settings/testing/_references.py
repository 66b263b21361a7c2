"""Server-side reference resolution, as the REST API does it (never on the E2EE API).

``${KEY}``, ``${/folder/KEY}``, ``${env.KEY}`` and ``${app::env.KEY}`` are replaced by the
referenced value, itself resolved, to a depth of 25. A reference that leads into a cycle or past
the depth stays literal, and so does every reference that leads to it; one the reader may not
read, or whose target is missing, stays literal too. ``${{…}}`` is never a reference. A
cross-app reference only reaches an app with SSE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ._state import Account, Environment, Store, can_access, normalize_path

MAX_REFERENCE_DEPTH = 25
# Bounds on one value's resolution, so that a pathological graph (every key referencing every
# other, or values doubling at each level) can never hang the fake.
_MAX_REFERENCE_LOOKUPS = 2_000
_MAX_RESOLVED_CHARS = 1_000_000

_CROSS_APP_REF = re.compile(r"\$\{(?!\{)([^{}]+?)::([^{}]+?)\.([^{}]+?)\}")
_CROSS_ENV_REF = re.compile(r"\$\{(?!\{)(?![^{}]*::)([^{}.]+?)\.([^{}]+?)\}")
_LOCAL_REF = re.compile(r"\$\{(?!\{)([^{}.]+?)\}")


@dataclass
class _Budget:
    lookups: int = _MAX_REFERENCE_LOOKUPS


def resolve(
    store: Store,
    value: str,
    env: Environment,
    reader: Account | None,
    chain: tuple[str, ...],
) -> str:
    """``value`` with its references resolved in ``env``.

    Args:
        store: The fake's state.
        value: The raw value.
        env: The environment the value belongs to.
        reader: The account whose access limits cross-environment references (None: no limit).
        chain: Ids of the secrets being resolved (the value's own first), to stop cycles.
    """
    return _resolve_in(store, value, env, reader, chain, _Budget())[0]


def decompose_keyref(keyref: str) -> tuple[str, str]:
    """``(folder, key)`` of a reference body without environment or app."""
    slash = keyref.rfind("/")
    if slash == -1:
        return "/", keyref
    return normalize_path(keyref[:slash]), keyref[slash + 1 :]


def _resolve_in(
    store: Store,
    value: str,
    env: Environment,
    reader: Account | None,
    chain: tuple[str, ...],
    budget: _Budget,
) -> tuple[str, bool]:
    """The value and whether a reference led into a cycle or past the depth limit."""
    if "${" not in value:
        return value, False
    tainted = False
    app = store.apps[env.app_id]

    def substitute(ref: str, target: Environment, keyref: str) -> None:
        nonlocal value, tainted
        found = _lookup(store, target, keyref, reader, chain, budget)
        if found is None:
            return
        text, bad = found
        if bad:
            tainted = True
            return
        replaced = value.replace(ref, text)
        if len(replaced) <= _MAX_RESOLVED_CHARS:
            value = replaced

    # Each distinct reference once: str.replace changes all its occurrences anyway.
    for match in _distinct(_CROSS_APP_REF.finditer(value)):
        app_name, env_name, keyref = match.groups()
        named = [a for a in store.apps.values() if a.name.lower() == app_name.lower()]
        if len(named) != 1 or not named[0].sse:
            continue
        target = named[0].env_named(env_name)
        if target is None:
            continue
        if reader is not None and not can_access(reader, target):
            return value, tainted
        substitute(match.group(0), target, keyref)
    for match in _distinct(_CROSS_ENV_REF.finditer(value)):
        env_name, keyref = match.groups()
        target = app.env_named(env_name)
        if target is None:
            continue
        if reader is not None and not can_access(reader, target):
            return value, tainted
        substitute(match.group(0), target, keyref)
    for match in _distinct(_LOCAL_REF.finditer(value)):
        substitute(match.group(0), env, match.group(1))
    return value, tainted


def _lookup(
    store: Store,
    env: Environment,
    keyref: str,
    reader: Account | None,
    chain: tuple[str, ...],
    budget: _Budget,
) -> tuple[str, bool] | None:
    folder_path, key_name = decompose_keyref(keyref)
    # The server digests the key name as written: ${db_host} finds nothing.
    secret = store.find_secret(env, folder_path, key_name)
    if secret is None:
        return None
    budget.lookups -= 1
    if secret.id in chain or len(chain) > MAX_REFERENCE_DEPTH or budget.lookups < 0:
        return "", True
    return _resolve_in(store, secret.value, env, reader, (*chain, secret.id), budget)


def _distinct(matches: Iterable[re.Match[str]]) -> list[re.Match[str]]:
    seen: dict[str, re.Match[str]] = {}
    for match in matches:
        seen.setdefault(match.group(0), match)
    return list(seen.values())
