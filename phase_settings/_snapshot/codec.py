"""The plaintext inside a sealed snapshot: the secret records and ``fetched_at``, as JSON.

Decoding is strict: anything but the exact shape written here is a ``ValueError`` (the store
then treats the file as damaged), so no ``KeyError`` or ``TypeError`` can escape from a file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .._models import Secret, SecretOverride

__all__ = ["decode_payload", "encode_payload"]

_STR_FIELDS = ("id", "key", "value", "comment", "path", "type", "lifecycle")
_OPT_STR_FIELDS = ("environment", "folder")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _override(override: SecretOverride | None) -> dict[str, Any] | None:
    if override is None:
        return None
    return {
        "id": override.id,
        "value": override.value,
        "is_active": override.is_active,
        "created_at": _time(override.created_at),
        "updated_at": _time(override.updated_at),
    }


def encode_payload(secrets: Sequence[Secret], fetched_at: datetime) -> bytes:
    """JSON of every field of every secret, and ``fetched_at`` (aware)."""
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be an aware datetime")
    records = [
        {
            **{name: getattr(s, name) for name in _STR_FIELDS + _OPT_STR_FIELDS},
            "tags": list(s.tags),
            "version": s.version,
            "override": _override(s.override),
            "created_at": _time(s.created_at),
            "updated_at": _time(s.updated_at),
        }
        for s in secrets
    ]
    document = {"fetched_at": fetched_at.isoformat(), "secrets": records}
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode()


def _want(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(f"snapshot payload: {what}")


def _get_str(record: dict[str, Any], name: str) -> str:
    value = record.get(name)
    _want(type(value) is str, f"'{name}' is not a string")
    return str(value)


def _get_opt_str(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    _want(value is None or type(value) is str, f"'{name}' is not a string")
    return value


def _get_time(record: dict[str, Any], name: str, *, aware: bool = False) -> datetime | None:
    value = record.get(name)
    if value is None and not aware:
        return None
    _want(type(value) is str, f"'{name}' is not a time")
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"snapshot payload: '{name}' is not a time") from None
    _want(not aware or parsed.tzinfo is not None, f"'{name}' has no time zone")
    return parsed


def _get_override(raw: object) -> SecretOverride | None:
    if raw is None:
        return None
    _want(type(raw) is dict, "'override' is not an object")
    assert isinstance(raw, dict)
    active = raw.get("is_active")
    _want(type(active) is bool, "'override.is_active' is not a boolean")
    return SecretOverride(
        id=_get_str(raw, "id"),
        value=_get_str(raw, "value"),
        is_active=bool(active),
        created_at=_get_time(raw, "created_at"),
        updated_at=_get_time(raw, "updated_at"),
    )


def _secret(record: object) -> Secret:
    _want(type(record) is dict, "a secret is not an object")
    assert isinstance(record, dict)
    tags = record.get("tags")
    _want(type(tags) is list and all(type(t) is str for t in tags), "'tags' is not a list")
    version = record.get("version")
    _want(type(version) is int, "'version' is not an integer")
    assert isinstance(tags, list) and isinstance(version, int)
    return Secret(
        id=_get_str(record, "id"),
        key=_get_str(record, "key"),
        value=_get_str(record, "value"),
        comment=_get_str(record, "comment"),
        tags=tuple(tags),
        path=_get_str(record, "path"),
        version=version,
        type=_get_str(record, "type"),
        lifecycle=_get_str(record, "lifecycle"),
        override=_get_override(record.get("override")),
        created_at=_get_time(record, "created_at"),
        updated_at=_get_time(record, "updated_at"),
        environment=_get_opt_str(record, "environment"),
        folder=_get_opt_str(record, "folder"),
    )


def decode_payload(data: bytes) -> tuple[tuple[Secret, ...], datetime]:
    """The secrets and ``fetched_at`` of :func:`encode_payload`'s output.

    Raises:
        ValueError: the bytes are not exactly that shape (never echoing a value).
    """
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ValueError("snapshot payload is not JSON") from None
    _want(type(document) is dict, "not an object")
    secrets = document.get("secrets")
    _want(type(secrets) is list, "'secrets' is not a list")
    fetched_at = _get_time(document, "fetched_at", aware=True)
    assert fetched_at is not None
    return tuple(_secret(record) for record in secrets), fetched_at
