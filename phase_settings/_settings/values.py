"""Settings values as frameworks want them, and as a report may show them.

Used by the Django and Flask integrations and by the settings check; it imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Secret, SecretBytes, SecretStr
from pydantic_core import to_jsonable_python

__all__ = ["MASK", "is_secret", "masked", "plain_value", "settings_to_config"]

MASK = "****"


def is_secret(value: Any) -> bool:
    """True for ``SecretStr``, ``SecretBytes`` and ``Secret[...]`` values."""
    return isinstance(value, SecretStr | SecretBytes | Secret)


def plain_value(value: Any) -> Any:
    """A field value as frameworks expect it: secrets unwrapped, nested models as dicts.

    ``SecretStr``/``SecretBytes``/``Secret`` become their secret value, models become
    ``model_dump()`` dicts, and mappings, lists, tuples and sets are walked.
    """
    if is_secret(value):
        return plain_value(value.get_secret_value())
    if isinstance(value, BaseModel):
        return plain_value(value.model_dump())
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_value(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(plain_value(v) for v in value)
    return value


def settings_to_config(settings: BaseModel) -> dict[str, Any]:
    """The fields of a settings instance as ``UPPER_CASE`` names with plain values.

    Args:
        settings: a settings instance (any pydantic model).

    Returns:
        ``{FIELD_NAME: value}`` with secrets unwrapped and nested models as dicts.
    """
    return {
        name.upper(): plain_value(getattr(settings, name)) for name in type(settings).model_fields
    }


def masked(value: Any) -> Any:
    """A JSON-able rendering of ``value`` in which every secret type reads ``****``."""
    if is_secret(value):
        return MASK
    if isinstance(value, BaseModel):
        return {name: masked(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Mapping):
        return {str(k): masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v) for v in value]
    return to_jsonable_python(value, fallback=lambda v: f"<{type(v).__name__}>")
