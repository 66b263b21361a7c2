"""The sources of a load as pydantic-settings itself assembles them: its default sources (init
kwargs such as ``_env_prefix`` and ``_env_file`` applied) handed to the class's
``settings_customise_sources``. ``LiveSettings``, ``aload`` and the settings check find a
class's Phase sources here, and load the class through exactly these sources
(``_build_sources``), so what they refresh or report is what a load of the class uses.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .dotenv_log import dotenv_warnings_held
from .source import PhaseSettingsSource

__all__ = ["BuiltSources", "build_sources", "phase_sources"]

BuiltSources = tuple[tuple[PydanticBaseSettingsSource, ...], dict[str, Any]]

# The constructor arguments that pydantic-settings' own source assembly takes (``_env_file``,
# ``_env_prefix``…); every other init kwarg is a field value.
_SOURCE_ARGS = frozenset(inspect.signature(BaseSettings._settings_init_sources).parameters) - {
    "_init_kwargs"
}


def build_sources(settings_cls: type[BaseSettings], init_kwargs: Mapping[str, Any]) -> BuiltSources:
    """The sources ``settings_cls(**init_kwargs)`` loads through, and its field values, built by
    pydantic-settings itself: its default sources, init kwargs such as ``_env_prefix`` and
    ``_env_file`` applied, handed to the class's ``settings_customise_sources``, exactly as a
    load builds them. Pass the pair to the class as ``_build_sources`` to load through these very
    sources (building a source makes no request)."""
    given: BuiltSources | None = init_kwargs.get("_build_sources")
    if given is not None:
        return given
    arguments = {k: v for k, v in init_kwargs.items() if k in _SOURCE_ARGS}
    values = {k: v for k, v in init_kwargs.items() if k not in _SOURCE_ARGS}
    with dotenv_warnings_held():  # the env files are read now
        built: BuiltSources = settings_cls._settings_init_sources(**arguments, _init_kwargs=values)
    return built


def phase_sources(built: BuiltSources) -> list[PhaseSettingsSource]:
    """The Phase sources among built sources, in priority order."""
    return [s for s in built[0] if isinstance(s, PhaseSettingsSource)]
