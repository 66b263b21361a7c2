"""Per-class memo of pydantic-settings' field metadata, and a field pass that skips fields no
key can fill.

pydantic-settings recomputes each field's environment names and "is it complex" on every load,
for every source (about seven times per field per source). For one settings class and one
source configuration the answers never change, so they are computed once; and a field none of
whose names (or ``name + nested delimiter`` heads) appears among the loaded keys cannot get a
value, so the per-field machinery is not run for it. Everything else is pydantic-settings' own
code: the fast pass calls the same methods, in the same order, with the same error wrapping.
"""

from __future__ import annotations

import weakref
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource, SettingsError
from pydantic_settings.sources.types import EnvNoneType

from ._errors import scrubbed

__all__ = ["FastEnvFields"]

_Memo = dict[tuple[Any, ...], tuple[Any, Any]]
_memos: weakref.WeakKeyDictionary[type, _Memo] = weakref.WeakKeyDictionary()


def _memo(settings_cls: type) -> _Memo:
    memo = _memos.get(settings_cls)
    if memo is None:
        memo = _memos[settings_cls] = {}
    return memo


class FastEnvFields(EnvSettingsSource):
    """``EnvSettingsSource`` with memoised field metadata and a pass over relevant fields only."""

    def _field_memo(self) -> _Memo:
        # Field names depend on these settings of the source; one memo per combination.
        memo: _Memo | None = self.__dict__.get("_phase_field_memo")
        if memo is None:
            outer = _memo(self.settings_cls)
            key = ("info", self.case_sensitive, self.env_prefix, self.env_prefix_target)
            memo = outer.get(key, (None, None))[1]
            if memo is None:
                memo = {}
                outer[key] = (None, memo)
            self.__dict__["_phase_field_memo"] = memo
        return memo

    def _extract_field_info(
        self, field: FieldInfo, field_name: str, model_config: Any = None
    ) -> list[tuple[str, str, bool]]:
        memo = self._field_memo()
        key = (id(field), field_name, id(model_config))
        hit = memo.get(key)
        if hit is not None and hit[0] is field:
            result: list[tuple[str, str, bool]] = hit[1]
            return result
        result = super()._extract_field_info(field, field_name, model_config)
        memo[key] = (field, result)  # holding the field keeps its id from being reused
        return result

    def _field_is_complex(self, field: FieldInfo) -> tuple[bool, bool]:
        memo = _memo(self.settings_cls)
        key = ("complex", id(field))
        hit = memo.get(key)
        if hit is not None and hit[0] is field:
            result: tuple[bool, bool] = hit[1]
            return result
        result = super()._field_is_complex(field)
        memo[key] = (field, result)
        return result

    def _may_have_value(self, field: FieldInfo, field_name: str, heads: set[str]) -> bool:
        delimiter = self.env_nested_delimiter
        for _, env_name, _ in self._extract_field_info(field, field_name):
            if env_name in self.env_vars or env_name in heads:
                return True
            if delimiter and delimiter in env_name:
                return True  # a head split at the first delimiter cannot match: do the full pass
        return False

    @scrubbed(SettingsError)
    def __call__(self) -> dict[str, Any]:
        delimiter = self.env_nested_delimiter
        heads = (
            {name.split(delimiter, 1)[0] for name in self.env_vars if delimiter in name}
            if delimiter
            else set()
        )
        data: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            if not self._may_have_value(field, field_name, heads):
                continue
            # From here on: PydanticBaseEnvSettingsSource.__call__, unchanged.
            try:
                field_value, field_key, value_is_complex = self._get_resolved_field_value(
                    field, field_name
                )
            except Exception as e:
                raise SettingsError(
                    f'error getting value for field "{field_name}" from source '
                    f'"{self.__class__.__name__}"'
                ) from e
            try:
                field_value = self.prepare_field_value(
                    field_name, field, field_value, value_is_complex
                )
            except ValueError as e:
                raise SettingsError(
                    f'error parsing value for field "{field_name}" from source '
                    f'"{self.__class__.__name__}"'
                ) from e
            if field_value is not None:
                if self.env_parse_none_str is not None:
                    if isinstance(field_value, dict):
                        field_value = self._replace_env_none_type_values(field_value)
                    elif isinstance(field_value, EnvNoneType):
                        field_value = None
                if not self.case_sensitive and isinstance(field_value, dict):
                    data[field_key] = self._replace_field_names_case_insensitively(
                        field, field_value
                    )
                else:
                    data[field_key] = field_value
        return data
