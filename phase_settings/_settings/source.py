"""``PhaseSettingsSource`` and ``PhaseSettings``.

The source subclasses pydantic-settings' ``EnvSettingsSource`` and replaces only *where the
key/value pairs come from*, as pydantic-settings' own AWS and GCP sources do: prefixes,
aliases, nested delimiters, JSON values, case folding and error wrapping are pydantic-settings'
own code. The fetch happens in ``__call__``, so building the sources tuple makes no request.
``PhaseSettings`` adds this source to pydantic-settings' own env, dotenv and secrets sources and
changes nothing else.
"""

from __future__ import annotations

import copy
import operator
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)
from pydantic_settings.sources import ENV_FILE_SENTINEL
from pydantic_settings.sources.utils import parse_env_vars

from .._defaults import SETTINGS
from .._errors import PhaseError, without_tracebacks
from .._load.scope import current_load_scope, load_scope
from .config import UNSET, PhaseSettingsConfigDict, ResolvedConfig, resolve_config
from .dotenv_log import dotenv_warnings_held
from .validation import explain_missing, masked

if TYPE_CHECKING:
    from pydantic_settings.sources.utils import InitState

    from .._client.client import PhaseClient
    from .._load.result import LoadOptions, LoadResult

__all__ = ["PhaseSettings", "PhaseSettingsSource"]

# keyword -> phase_* key: one keyword per row of the table (``app_id`` -> ``phase_app_id``)
_PHASE_ARGS = {setting.argument: name for name, setting in SETTINGS.items()}
# The field-mapping settings shared with EnvSettingsSource (None: the settings class's config).
ENV_ARGS = (
    "case_sensitive",
    "env_prefix",
    "env_prefix_target",
    "env_nested_delimiter",
    "env_nested_max_split",
    "env_ignore_empty",
    "env_parse_none_str",
    "env_parse_enums",
)


class PhaseSettingsSource(EnvSettingsSource):
    """Settings source that reads the secrets of one Phase app and environment.

    Arguments left out fall through to the process environment, ``model_config``
    (``phase_*`` keys), the env file(s), ``.phase.json`` and defaults.

    Args:
        settings_cls: the settings class.
        app_id: the Phase app's UUID (``PHASE_APP_ID``).
        env: the environment's name (``PHASE_ENV``; default ``Development``).
        path: a folder, a list of folders merged in order, or None for every folder.
        tags: only secrets with any of these tags.
        token: a Phase token (``PHASE_SERVICE_TOKEN``).
        host: the Phase host (``PHASE_HOST``).
        client: a :class:`PhaseClient` to use (tests, custom transports); its token and host
            then win.
        verify_ssl, allow_http, timeout, deadline, max_attempts, cache_ttl, fallback, required,
            use_overrides, max_response_bytes, snapshot_dir, snapshot_max_age, mode: the other
            ``phase_*`` settings (one keyword per setting, without its ``phase_`` prefix).
        env_file, env_file_encoding: where the ``PHASE_*`` configuration keys of an env file
            are read (default: the settings class's ``env_file``).
        case_sensitive, env_prefix, env_prefix_target, env_nested_delimiter,
            env_nested_max_split, env_ignore_empty, env_parse_none_str, env_parse_enums: as for
            ``EnvSettingsSource`` (default: the settings class's config).
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        *,
        app_id: str | None = UNSET,
        env: str | None = UNSET,
        path: str | Sequence[str] | None = UNSET,
        tags: str | Sequence[str] | None = UNSET,
        token: str | SecretStr | None = UNSET,
        host: str | None = UNSET,
        client: PhaseClient | None = None,
        verify_ssl: bool | str = UNSET,
        allow_http: bool = UNSET,
        timeout: float = UNSET,
        deadline: float = UNSET,
        max_attempts: int = UNSET,
        cache_ttl: float = UNSET,
        fallback: str = UNSET,
        required: bool = UNSET,
        use_overrides: bool = UNSET,
        max_response_bytes: int = UNSET,
        snapshot_dir: str | os.PathLike[str] | None = UNSET,
        snapshot_max_age: float = UNSET,
        mode: str = UNSET,
        env_file: Any = ENV_FILE_SENTINEL,
        env_file_encoding: str | None = None,
        case_sensitive: bool | None = None,
        env_prefix: str | None = None,
        env_prefix_target: Any = None,
        env_nested_delimiter: str | None = None,
        env_nested_max_split: int | None = None,
        env_ignore_empty: bool | None = None,
        env_parse_none_str: str | None = None,
        env_parse_enums: bool | None = None,
        _init_state: InitState | None = None,
    ) -> None:
        given = dict(locals())
        self._given = {k: given[k] for k in (*_PHASE_ARGS, *ENV_ARGS)}
        self._given.update(client=client, env_file=env_file, env_file_encoding=env_file_encoding)
        self._init_state_arg = _init_state
        self._client = client
        self._env_file = env_file
        self._env_file_encoding = env_file_encoding
        self._result: LoadResult | None = None
        super().__init__(
            settings_cls,
            case_sensitive=case_sensitive,
            env_prefix=env_prefix,
            env_prefix_target=env_prefix_target,
            env_nested_delimiter=env_nested_delimiter,
            env_nested_max_split=env_nested_max_split,
            env_ignore_empty=env_ignore_empty,
            env_parse_none_str=env_parse_none_str,
            env_parse_enums=env_parse_enums,
            _init_state=_init_state,
        )

    @property
    def result(self) -> LoadResult | None:
        """What the last call of this source served: ``.values`` (Phase key -> value),
        ``.origins`` (Phase key -> folder), ``.signature`` and ``.status`` (a ``LoadStatus``);
        None before the first call."""
        return self._result

    @property
    def client(self) -> PhaseClient | None:
        """The injected client, or None (a pooled one per token and host is used)."""
        return self._client

    def with_overrides(self, **overrides: Any) -> PhaseSettingsSource:
        """A new source like this one with some constructor arguments replaced, e.g.
        ``source.with_overrides(app_id=…, env="staging", path="/backend")``. Any keyword of the
        constructor is accepted; an unknown one is a ``TypeError``."""
        arguments = {**self._given, **overrides}
        return type(self)(self.settings_cls, _init_state=self._init_state_arg, **arguments)

    def resolve(self) -> ResolvedConfig:
        """The ``phase_*`` settings this source would load with now."""
        config: Any = self.settings_cls.model_config
        if self._env_file is not ENV_FILE_SENTINEL or self._env_file_encoding is not None:
            config = dict(config)
            if self._env_file is not ENV_FILE_SENTINEL:
                config["env_file"] = self._env_file
            if self._env_file_encoding is not None:
                config["env_file_encoding"] = self._env_file_encoding
        arguments = {phase: self._given[arg] for arg, phase in _PHASE_ARGS.items()}
        return resolve_config(config, arguments)

    def load(self) -> LoadResult:
        """Fetch (or take from the cache) this source's key/value pairs, without mapping them
        to fields; the result is also kept as :attr:`result`."""
        from .._load.scope import current_options

        return self._load(current_options())

    def _load(self, options: LoadOptions) -> LoadResult:
        from .._load.loader import load
        from .._load.runtime import runtime

        self._result = load(
            self.resolve(),
            options,
            runtime,
            settings_cls=self.settings_cls,
            client=self._client,
        )
        return self._result

    async def load_async(self, options: LoadOptions) -> LoadResult:
        """The async twin of :meth:`load` with explicit options (``aload``, ``arefresh``)."""
        import anyio.to_thread

        from .._load.loader import load_async
        from .._load.runtime import runtime

        config = await anyio.to_thread.run_sync(self.resolve)
        self._result = await load_async(
            config, options, runtime, settings_cls=self.settings_cls, client=self._client
        )
        return self._result

    def __call__(self) -> dict[str, Any]:
        scope = current_load_scope()
        if scope is None:
            result = self.load()
        else:
            scope.sources.append(self)
            result = self._load(scope.options)
        self.env_vars = parse_env_vars(
            result.values, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )
        if not self.env_vars:
            # No key can fill a field: what EnvSettingsSource returns for an empty environment,
            # without its pass over every field (the environment source made that pass already,
            # so pydantic-settings' warnings about incomplete fields are not lost).
            return {}
        if type(self) is not PhaseSettingsSource:
            return super().__call__()  # a subclass may map values its own way: no memo
        from .._load.runtime import runtime

        # The field pass is a function of the key/value pairs, this source's mapping settings
        # and the class's fields: while Phase serves the same pairs, its output is reused (as
        # a deep copy: no load shares a mutable value with another).
        key = (frozenset(self.env_vars.items()), *(getattr(self, n) for n in ENV_ARGS))
        fields = tuple(self.settings_cls.model_fields.values())
        memo = runtime.decoded(self.settings_cls)
        hit = memo.get(key)
        if (
            hit is not None
            and len(hit[0]) == len(fields)
            and all(map(operator.is_, hit[0], fields))
        ):
            cached: dict[str, Any] = _fresh(hit[1])
            return cached
        data = super().__call__()
        memo.put(key, (fields, _fresh(data)))
        return data

    def __repr__(self) -> str:
        shown = {
            k: self._given[k]
            for k in ("app_id", "env", "path", "host")
            if self._given[k] is not UNSET
        }
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"


_IMMUTABLE = (str, int, float, bool, type(None))


def _fresh(value: Any) -> Any:
    """A copy of ``value`` sharing nothing mutable with it (decoded JSON: dicts, lists)."""
    if isinstance(value, _IMMUTABLE):
        return value
    if type(value) is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if type(value) is list:
        return [_fresh(v) for v in value]
    return copy.deepcopy(value)


def _phase_source_for(
    settings_cls: type[BaseSettings],
    env_settings: PydanticBaseSettingsSource,
    dotenv_settings: PydanticBaseSettingsSource,
) -> PhaseSettingsSource:
    """The Phase source mapping keys exactly as ``env_settings`` does (so the init kwargs
    ``_env_prefix``, ``_case_sensitive``… apply to it), reading ``PHASE_*`` configuration from
    the env files of ``dotenv_settings`` (so ``_env_file`` applies)."""
    mapping: dict[str, Any] = {}
    if isinstance(env_settings, EnvSettingsSource):
        mapping = {name: getattr(env_settings, name, None) for name in ENV_ARGS}
    if isinstance(dotenv_settings, DotEnvSettingsSource):
        mapping["env_file"] = dotenv_settings.env_file
        mapping["env_file_encoding"] = dotenv_settings.env_file_encoding
    # Shares the stock sources' per-load state, so pydantic-settings warns about an incomplete
    # field once per load, as it does without Phase.
    state = getattr(env_settings, "_init_state", None)
    return PhaseSettingsSource(settings_cls, _init_state=state, **mapping)


def _without_phase_keys(source: PydanticBaseSettingsSource) -> PydanticBaseSettingsSource:
    """The dotenv source with the ``PHASE_*`` configuration keys removed from what it read:
    they configure the Phase source, they are not fields (no ``extra_forbidden`` error that
    would echo a token). Keys that fill a field are kept."""
    if not isinstance(source, DotEnvSettingsSource):
        return source
    if not any(key[:6].lower() == "phase_" for key in source.env_vars):
        return source
    fields = {name.lower() for name in source.settings_cls.model_fields}
    for info in source.settings_cls.model_fields.values():
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                fields.add(alias.lower())
            elif isinstance(alias, AliasChoices):
                fields.update(c.lower() for c in alias.choices if isinstance(c, str))
    drop = [
        key
        for key in source.env_vars
        if key.lower().startswith("phase_") and key.lower() not in fields
    ]
    if drop:
        source.env_vars = {k: v for k, v in source.env_vars.items() if k not in drop}
    return source


class PhaseSettings(BaseSettings):
    """``BaseSettings`` whose fields are also filled from Phase.

    Sources, by priority: init kwargs > environment variables > **Phase** > dotenv > secrets
    dir > defaults; the others are pydantic-settings' own. Override
    ``settings_customise_sources`` to reorder them; the Phase source is
    :class:`PhaseSettingsSource`. Defaults differ from ``BaseSettings`` in
    ``env_nested_delimiter="__"`` and ``hide_input_in_errors=True``; ``PHASE_*`` keys of the
    env file configure the source; a ``ValidationError`` never holds a value from Phase.
    """

    model_config = PhaseSettingsConfigDict(
        env_nested_delimiter="__",
        hide_input_in_errors=True,
    )

    def __init__(self, **values: Any) -> None:
        with load_scope() as scope, dotenv_warnings_held():
            try:
                super().__init__(**values)
                scope.validated()  # the snapshot is written now, with what the class accepted
                return
            except (ValidationError, SettingsError, PhaseError) as exc:
                error = exc
        # Raised again from a frame without the init kwargs, with a fresh traceback: error
        # trackers that record local variables never see a secret (pydantic's own frames hold
        # the input by design; `hide_input_in_errors` keeps it out of the message).
        del values
        called = scope.sources
        results = [s.result for s in called if s.result is not None]
        if isinstance(error, ValidationError):
            error = masked(error, [r.values for r in results], type(self).model_config)
            explain_missing(error, called)
        raise without_tracebacks(error)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _phase_source_for(settings_cls, env_settings, dotenv_settings),
            _without_phase_keys(dotenv_settings),
            file_secret_settings,
        )
