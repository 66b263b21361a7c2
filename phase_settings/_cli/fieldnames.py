"""The variable names a settings class's env source reads for each field.

Computed from the class's public configuration (``env_prefix``, ``case_sensitive``,
``env_nested_delimiter``) and each field's aliases, the way pydantic-settings maps environment
variables: a validation alias (or each string of ``AliasChoices``, or the first element of an
``AliasPath``) is used as is; without one (or with ``populate_by_name``) the prefixed field
name is. Phase keys follow the same mapping, so the settings check and ``export --for`` use it to
tell which Phase keys a field reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import AliasChoices, AliasPath
from pydantic.fields import FieldInfo

__all__ = ["FieldNames", "field_names"]


class FieldNames:
    """The env names of every field of a settings class, and matching of keys against them."""

    def __init__(self, settings_cls: type[Any]):
        config = settings_cls.model_config
        self.case_sensitive = bool(config.get("case_sensitive", False))
        self.delimiter: str = config.get("env_nested_delimiter") or ""
        prefix: str = config.get("env_prefix") or ""
        by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
        self.names: dict[str, list[str]] = {
            name: _names(name, info, prefix, by_name)
            for name, info in settings_cls.model_fields.items()
        }

    def _fold(self, text: str) -> str:
        return text if self.case_sensitive else text.lower()

    def matches(self, field: str, key: str) -> bool:
        """True when the env or Phase ``key`` feeds ``field`` (whole or one nested part)."""
        folded = self._fold(key)
        for name in self.names.get(field, []):
            wanted = self._fold(name)
            if folded == wanted:
                return True
            if self.delimiter and folded.startswith(wanted + self._fold(self.delimiter)):
                return True
        return False

    def fields_of(self, key: str) -> list[str]:
        """The fields that ``key`` feeds."""
        return [field for field in self.names if self.matches(field, key)]

    def used(self, keys: Iterable[str]) -> set[str]:
        """The keys of ``keys`` that feed some field."""
        return {key for key in keys if self.fields_of(key)}


def _names(name: str, info: FieldInfo, prefix: str, by_name: bool) -> list[str]:
    names: list[str] = []
    alias: Any = info.validation_alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str):
                names.append(choice)
            elif isinstance(choice, AliasPath) and isinstance(choice.path[0], str):
                names.append(choice.path[0])
    elif isinstance(alias, AliasPath):
        if isinstance(alias.path[0], str):
            names.append(alias.path[0])
    elif isinstance(alias, str):
        names.append(alias)
    if not alias or by_name:
        names.append(prefix + name)
    return names


def field_names(settings_cls: type[Any]) -> FieldNames:
    """The :class:`FieldNames` of ``settings_cls``."""
    return FieldNames(settings_cls)
