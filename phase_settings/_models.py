"""Records returned by the client, and the shape checks that turn Phase's JSON into them.

Every check raises :class:`PhaseResponseError` naming the field, never echoing a value, so a
reply that is not Phase's contract can never escape as a ``KeyError`` or ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from ._errors import PhaseResponseError

__all__ = [
    "LoadStatus",
    "PhaseApp",
    "PhaseEnvironment",
    "Secret",
    "SecretOverride",
    "parse_apps",
    "parse_environments",
    "parse_secrets",
    "shown",
    "utf8_encodable",
]

MASK = "****"


def utf8_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON admits lone surrogates; UTF-8 does not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(text: str) -> str:
    """A key or name as messages show it: itself, or with backslash escapes (``ascii()``) when
    it is not valid UTF-8, so that a warning naming it cannot itself fail in a UTF-8 handler."""
    return text if utf8_encodable(text) else ascii(text)


class SecretOverride(NamedTuple):
    """A personal override of a secret (user tokens only)."""

    id: str
    value: str
    is_active: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __repr__(self) -> str:
        return f"SecretOverride(id={self.id!r}, value={MASK!r}, is_active={self.is_active!r})"


@dataclass(frozen=True, slots=True)
class Secret:
    """One secret as Phase serves it (references already resolved by the server).

    ``repr`` masks the value; read ``value`` or ``effective_value`` explicitly.
    """

    id: str
    key: str
    value: str
    comment: str = ""
    tags: tuple[str, ...] = ()
    path: str = "/"
    version: int = 1
    type: str = "secret"
    lifecycle: str = "static"
    override: SecretOverride | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    environment: str | None = None
    folder: str | None = None

    @property
    def effective_value(self) -> str:
        """The active personal override's value, else the shared value (as the Phase CLI)."""
        if self.override is not None and self.override.is_active:
            return self.override.value
        return self.value

    def __repr__(self) -> str:
        return (
            f"Secret(id={self.id!r}, key={self.key!r}, value={MASK!r}, path={self.path!r}, "
            f"version={self.version!r}, type={self.type!r}, tags={self.tags!r})"
        )


class PhaseApp(NamedTuple):
    """An app listed by ``GET /v1/apps/``."""

    id: str
    name: str
    description: str | None = None
    sse_enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PhaseEnvironment:
    """An environment listed by ``GET /v1/environments/``."""

    id: str
    name: str
    env_type: str = "custom"
    index: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


LoadSource = Literal["phase", "cache", "snapshot", "stale", "dotenv", "none"]


@dataclass(frozen=True, slots=True)
class LoadStatus:
    """How the last load of a settings class went.

    Attributes:
        source: ``"phase"`` (fetched now), ``"cache"`` (fresh cached values), ``"stale"`` (last
            good values served during an outage), ``"dotenv"`` (the env file served instead), or
            ``"none"`` (Phase not used, or the class never loaded).
        fetched_at: when the values in use were fetched from Phase (aware UTC), or None.
        stale_since: the first failure since the last success (aware UTC), or None.
        last_error: ``"TypeName: message"`` of the last failure (never a value), or None.
    """

    source: LoadSource = "none"
    fetched_at: datetime | None = None
    stale_since: datetime | None = None
    last_error: str | None = None


# --- shape checks ------------------------------------------------------------------------------


def _bad(what: str) -> PhaseResponseError:
    return PhaseResponseError(
        f"Phase's reply is not in the expected shape: {what}. Is PHASE_HOST a Phase API?"
    )


def _str(item: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = item.get(name, default)
    if not isinstance(value, str):
        raise _bad(f"'{name}' is not a string")
    return value


def _opt_str(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise _bad(f"'{name}' is not a string")
    return value


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    value = item.get(name)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _int(item: Mapping[str, Any], name: str, default: int) -> int:
    value = item.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{name}' is not an integer")
    return value


def _override(raw: object) -> SecretOverride | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _bad("'override' is not an object")
    active = raw.get("isActive", False)
    if not isinstance(active, bool):
        raise _bad("'override.isActive' is not a boolean")
    return SecretOverride(
        id=_str(raw, "id", default=""),
        value=_str(raw, "value"),
        is_active=active,
        created_at=_time(raw, "createdAt"),
        updated_at=_time(raw, "updatedAt"),
    )


def _secret(raw: object) -> Secret | None:
    # The hot loop of a load (one call per secret): checks are inlined on purpose.
    if type(raw) is not dict:
        raise _bad("an item of the secrets list is not an object")
    get = raw.get
    kind = get("type")
    if kind == "dynamic":
        return None  # dynamic secrets have another shape and no static value
    key = get("key")
    if type(key) is not str or not key:
        raise _bad("a secret has no 'key' string")
    value = get("value")
    if type(value) is not str:
        raise _bad("'value' is not a string")
    tags = get("tags")
    if tags:
        if type(tags) is not list or not all(type(t) is str for t in tags):
            raise _bad("'tags' is not a list of strings")
        tags = tuple(tags)
    else:
        tags = ()
    version = get("version", 1)
    if type(version) is not int:
        raise _bad("'version' is not an integer")
    override = get("override")
    for name in ("id", "comment", "path", "lifecycle", "environment", "folder"):
        field_value = get(name)
        if field_value is not None and type(field_value) is not str:
            raise _bad(f"'{name}' is not a string")
    if kind is not None and type(kind) is not str:
        raise _bad("'type' is not a string")
    return Secret(
        get("id") or "",
        key,
        value,
        get("comment") or "",
        tags,
        get("path") or "/",
        version,
        kind or "secret",
        get("lifecycle") or "static",
        None if override is None else _override(override),
        _time(raw, "createdAt"),
        _time(raw, "updatedAt"),
        get("environment"),
        get("folder"),
    )


def parse_secrets(payload: object) -> list[Secret]:
    """Secrets from the JSON array of ``/v1/secrets/``; dynamic items are skipped."""
    if not isinstance(payload, list):
        raise _bad("expected a JSON array of secrets")
    return [s for s in map(_secret, payload) if s is not None]


def _data(payload: object) -> list[Any]:
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise _bad("expected an object with a 'data' array")
    items: list[Any] = payload["data"]
    if not all(isinstance(item, dict) for item in items):
        raise _bad("an item of 'data' is not an object")
    return items


def parse_apps(payload: object) -> list[PhaseApp]:
    """Apps from ``GET /v1/apps/``."""
    apps = []
    for item in _data(payload):
        sse = item.get("sseEnabled", True)
        apps.append(
            PhaseApp(
                id=_str(item, "id"),
                name=_str(item, "name"),
                description=_opt_str(item, "description"),
                sse_enabled=sse if isinstance(sse, bool) else True,
                created_at=_time(item, "createdAt"),
                updated_at=_time(item, "updatedAt"),
            )
        )
    return apps


def parse_environments(payload: object) -> list[PhaseEnvironment]:
    """Environments from ``GET /v1/environments/``."""
    return [
        PhaseEnvironment(
            id=_str(item, "id"),
            name=_str(item, "name"),
            env_type=_opt_str(item, "envType") or "custom",
            index=_int(item, "index", 0),
            created_at=_time(item, "createdAt"),
            updated_at=_time(item, "updatedAt"),
        )
        for item in _data(payload)
    ]
