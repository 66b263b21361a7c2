"""``PhaseSettingsSource`` and ``PhaseSettings``.

The source subclasses pydantic-settings' ``EnvSettingsSource`` and replaces only *where the
key/value pairs come from*, as pydantic-settings' own AWS and GCP sources do: prefixes,
aliases, nested delimiters, JSON values, case folding and error wrapping behave exactly as for
environment variables. The fetch happens in ``__call__``, so building the sources tuple makes
no request.
"""

from __future__ import annotations

import contextvars
import copy  # A2 shim
import logging
import os
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsError,
)
from pydantic_settings.sources.utils import parse_env_vars

from ._config import UNSET, PhaseSettingsConfigDict, ResolvedConfig, resolve_config
from ._errors import (
    PhaseConfigError,
    PhaseError,
    PhaseUnavailableError,
    fresh,
    scrubbed,
    without_tracebacks,
)
from ._fastenv import FastEnvFields
from ._transport import api_base, auth_header, token_fingerprint

if TYPE_CHECKING:
    from pydantic_settings.sources.utils import InitState

    from ._cache import CacheKey, Fetched, SecretCache
    from ._client import PhaseClient
    from ._models import LoadStatus, Secret
    from ._retry import Deadline

__all__ = ["LoadOptions", "PhaseSettings", "PhaseSettingsSource", "load_options"]

logger = logging.getLogger("phase_settings")

_UNRESOLVED = r"\$\{(?!\{)[^{}]+\}"  # compiled on first use (re caches it)


_EMPTY: Mapping[Any, Any] = MappingProxyType({})

# --- per-load options (set by LiveSettings and aload) --------------------------------------------


class LoadOptions(NamedTuple):
    force: bool = False  # bypass the TTL (LiveSettings.refresh)
    fallback: bool = True  # False: raise instead of serving stale or .env values
    prefetched: Mapping[CacheKey, Fetched] = _EMPTY  # filled by aload
    errors: Mapping[CacheKey, PhaseError] = _EMPTY  # aload's failures


_options: contextvars.ContextVar[LoadOptions | None] = contextvars.ContextVar(
    "phase_settings_load_options", default=None
)
_DEFAULT_OPTIONS = LoadOptions()


@contextmanager
def load_options(**options: Any) -> Iterator[None]:
    """Run the settings loads of this block with other :class:`LoadOptions`."""
    token = _options.set(LoadOptions(**options))
    try:
        yield
    finally:
        _options.reset(token)


class LoadReport:
    """What the last load on this thread did; read by PhaseSettings, LiveSettings and the CLI."""

    __slots__ = ("_source", "app_id", "env", "origins", "settings_cls", "signature", "status")

    def __init__(
        self,
        source: PhaseSettingsSource | None = None,
        app_id: str | None = None,
        env: str | None = None,
        origins: dict[str, str] | None = None,
        signature: tuple[Any, ...] | None = None,
        status: LoadStatus | None = None,
    ):
        self._source = source
        self.settings_cls = source.settings_cls if source is not None else None
        self.app_id = app_id
        self.env = env
        self.origins = origins or {}  # Phase key -> folder
        self.signature = signature  # ids, versions, update times of what was served
        self.status = status or _load_status()

    @property
    def expected_keys(self) -> dict[str, list[str]]:
        """Field name -> the Phase keys that would fill it (computed when asked: errors, CLI)."""
        source = self._source
        if source is None:
            return {}
        return {
            name: [env_name.upper() for _, env_name, _ in source._extract_field_info(f, name)]
            for name, f in source.settings_cls.model_fields.items()
        }


_reports = threading.local()


def last_report() -> LoadReport | None:
    """The report of the last Phase load made on this thread, if any."""
    return getattr(_reports, "report", None)


# --- clients shared across loads, so a reload keeps its connection --------------------------------

_clients: dict[tuple[Any, ...], PhaseClient] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 16


_users: dict[PhaseClient, int] = {}  # loads using each shared client now
_retired: set[PhaseClient] = set()  # evicted while in use: closed by its last user


@scrubbed()
def identity(config: ResolvedConfig) -> tuple[str, str]:
    """(API base, token fingerprint) of a configuration; raises PhaseConfigError when either
    the host or the token is unusable (the token is never echoed)."""
    assert config.token is not None
    base = api_base(config.host, allow_http=config.allow_http)
    return base, token_fingerprint(auth_header(config.token, name=_token_name(config)))


@contextmanager
def borrow_client(config: ResolvedConfig) -> Iterator[PhaseClient]:
    """The process's client for this configuration (one connection pool per token and host),
    held for the duration of one load: an eviction never closes a client that a load uses."""
    base, fingerprint = identity(config)
    key = (
        fingerprint,
        base,
        config.verify_ssl,
        config.timeout,
        config.max_attempts,
        config.max_response_bytes,
    )
    to_close: list[PhaseClient] = []
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            from ._client import PhaseClient  # loaded by the first load that has a token

            if len(_clients) >= _MAX_CLIENTS:
                evicted = _clients.pop(next(iter(_clients)))
                if _users.get(evicted):
                    _retired.add(evicted)
                else:
                    to_close.append(evicted)
            client = _clients[key] = PhaseClient(
                config.token,
                config.host,
                timeout=config.timeout,
                deadline=config.deadline,
                max_attempts=config.max_attempts,
                verify_ssl=config.verify_ssl,
                allow_http=config.allow_http,
                max_response_bytes=config.max_response_bytes,
            )
        _users[client] = _users.get(client, 0) + 1
    for old in to_close:
        old.close()
    try:
        yield client
    finally:
        with _clients_lock:
            _users[client] -= 1
            last = _users[client] == 0
            if last:
                del _users[client]
            close = last and client in _retired
            if close:
                _retired.discard(client)
        if close:
            client.close()


def _token_name(config: ResolvedConfig) -> str:
    origin = config.token_origin
    return origin if origin.startswith("PHASE_") else "phase_token"


def _cache() -> SecretCache:
    from ._cache import process_cache  # loaded by the first load, not by declaring settings

    return process_cache


def _load_status(*args: Any) -> LoadStatus:
    from ._models import LoadStatus  # the records load with the first load, not at import

    return LoadStatus(*args)


def _now() -> datetime:
    return datetime.now(UTC)


def warn_unresolved(secrets: Sequence[Secret]) -> None:
    """One WARNING per value that still holds a ``${…}`` reference (the key only)."""
    for secret in secrets:
        if "${" in secret.value and re.search(_UNRESOLVED, secret.value):
            logger.warning(
                "Phase secret %s (path %s) holds a reference that Phase could not resolve",
                secret.key,
                secret.path,
            )


@scrubbed()
def merge_secrets(
    fetched: Sequence[tuple[str | None, Fetched]], *, use_overrides: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """The key/value pairs of a load, and the folder each key came from.

    Several folders are merged in order (later wins). One "every folder" fetch holding a key in
    two folders is ambiguous: a :class:`PhaseConfigError` names both paths.
    """
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for requested, entry in fetched:
        seen: dict[str, str] = {}
        for secret in entry.secrets:
            if requested is None and secret.key in seen and seen[secret.key] != secret.path:
                raise PhaseConfigError(
                    f"Phase key {secret.key} is in two folders, {seen[secret.key]} and "
                    f"{secret.path}: set phase_path (PHASE_PATH) to the folders to load, in order"
                )
            seen[secret.key] = secret.path
            values[secret.key] = secret.effective_value if use_overrides else secret.value
            origins[secret.key] = secret.path
    return values, origins


def signature_of(fetched: Sequence[tuple[str | None, Fetched]]) -> tuple[Any, ...]:
    """Identity of what a load served: equal signatures mean equal values."""
    return tuple(
        (path, tuple((s.id, s.key, s.version, s.updated_at, s.override) for s in entry.secrets))
        for path, entry in fetched
    )


class _ShimResult(NamedTuple):  # A2 shim: helper A's LoadResult replaces it
    values: dict[str, str]
    origins: dict[str, str]
    status: LoadStatus


class PhaseSettingsSource(FastEnvFields):
    """Settings source that reads the secrets of one Phase app and environment.

    Arguments left out fall through to the process environment, ``model_config``
    (``phase_*`` keys), the env file(s), ``.phase.json`` and defaults (DESIGN §3).

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
            use_overrides, max_response_bytes: the other ``phase_*`` settings.
        case_sensitive, env_prefix, env_nested_delimiter, env_nested_max_split,
            env_ignore_empty, env_parse_none_str, env_parse_enums: as for
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
        case_sensitive: bool | None = None,
        env_prefix: str | None = None,
        env_nested_delimiter: str | None = None,
        env_nested_max_split: int | None = None,
        env_ignore_empty: bool | None = None,
        env_parse_none_str: str | None = None,
        env_parse_enums: bool | None = None,
        _init_state: InitState | None = None,
    ) -> None:
        self._arguments: dict[str, Any] = {
            "phase_app_id": app_id,
            "phase_env": env,
            "phase_path": path,
            "phase_tags": tags,
            "phase_token": token,
            "phase_host": host,
            "phase_verify_ssl": verify_ssl,
            "phase_allow_http": allow_http,
            "phase_timeout": timeout,
            "phase_deadline": deadline,
            "phase_max_attempts": max_attempts,
            "phase_cache_ttl": cache_ttl,
            "phase_fallback": fallback,
            "phase_required": required,
            "phase_use_overrides": use_overrides,
            "phase_max_response_bytes": max_response_bytes,
        }
        self._client = client
        self.report = LoadReport()
        super().__init__(
            settings_cls,
            case_sensitive=case_sensitive,
            env_prefix=env_prefix,
            env_nested_delimiter=env_nested_delimiter,
            env_nested_max_split=env_nested_max_split,
            env_ignore_empty=env_ignore_empty,
            env_parse_none_str=env_parse_none_str,
            env_parse_enums=env_parse_enums,
            _init_state=_init_state,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # EnvSettingsSource calls this from __init__; the fetch waits for __call__.
        return {}

    def __call__(self) -> dict[str, Any]:
        values = self.load_values()
        # BEGIN A2 shim (the lead takes helper A's `result`/`with_overrides` at merge)
        self._a2_result = _ShimResult(
            values, dict(self.report.origins), _cache().status(self.settings_cls)
        )
        # END A2 shim
        self.env_vars = parse_env_vars(
            values, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )
        return super().__call__()

    # BEGIN A2 shim: minimal `result` and `with_overrides` (helper A provides the real ones)
    @property
    def result(self) -> _ShimResult | None:
        """The outcome of this instance's last call, or None before it."""
        return getattr(self, "_a2_result", None)

    def with_overrides(self, **kwargs: Any) -> PhaseSettingsSource:
        """A copy with constructor arguments (app_id, env, path, tags, token, host) replaced."""
        clone = copy.copy(self)
        clone._arguments = {**self._arguments, **{f"phase_{k}": v for k, v in kwargs.items()}}
        clone.__dict__.pop("_a2_result", None)
        return clone

    # END A2 shim

    def __repr__(self) -> str:
        shown = {
            k.removeprefix("phase_"): v
            for k, v in self._arguments.items()
            if v is not UNSET and k in ("phase_app_id", "phase_env", "phase_path", "phase_host")
        }
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"{type(self).__name__}({args})"

    # -- the load -------------------------------------------------------------------------------

    def resolve(self) -> ResolvedConfig:
        """The ``phase_*`` settings this source would load with now."""
        return resolve_config(self.settings_cls.model_config, self._arguments)

    @contextmanager
    def client_for(self, config: ResolvedConfig) -> Iterator[PhaseClient]:
        """The injected client, else a borrowed shared one, for one load."""
        if self._client is not None:
            yield self._client
        else:
            with borrow_client(config) as client:
                yield client

    def enabled(self, config: ResolvedConfig) -> bool:
        """False when no token is configured (local development); raises if one is required."""
        if self._client is not None or config.token is not None:
            if not config.app_id:
                raise PhaseConfigError(
                    "A Phase token is set but no app id: set phase_app_id in model_config, "
                    "PHASE_APP_ID in the environment, or appId in .phase.json"
                )
            return True
        if config.required:
            raise PhaseConfigError(
                f"{self.settings_cls.__name__} requires Phase (phase_required=True) but no token "
                "is set: set PHASE_SERVICE_TOKEN"
            )
        if self.settings_cls not in _announced:
            _announced.add(self.settings_cls)
            logger.info(
                "No Phase token (PHASE_SERVICE_TOKEN): Phase disabled for %s; using environment "
                "variables and .env",
                self.settings_cls.__name__,
            )
        return False

    def cache_keys(self, config: ResolvedConfig) -> list[CacheKey]:
        if self._client is not None:
            base, fingerprint = self._client.base_url, self._client.token_fingerprint
        else:
            base, fingerprint = identity(config)
        assert config.app_id is not None
        from ._cache import CacheKey

        return [
            CacheKey(base, config.app_id, config.env, path, config.tags, fingerprint)
            for path in (config.paths if config.paths is not None else (None,))
        ]

    def fetch_entries(
        self, config: ResolvedConfig, options: LoadOptions
    ) -> tuple[list[tuple[CacheKey, Fetched]], bool]:
        """The entries of every path of this load, and whether all came from the cache."""
        from ._retry import Deadline

        deadline = Deadline(config.deadline)
        fetched: list[tuple[CacheKey, Fetched]] = []
        all_cached = True
        for key in self.cache_keys(config):
            if key in options.errors:
                raise fresh(options.errors[key])
            entry = options.prefetched.get(key)
            if entry is not None:
                all_cached = False
            else:
                entry, cached = _cache().fetch(
                    key,
                    _fetcher(self, config, key, deadline),
                    ttl=config.cache_ttl,
                    deadline=deadline,
                    force=options.force,
                )
                all_cached = all_cached and cached
            fetched.append((key, entry))
        return fetched, all_cached

    def failure_status(self, exc: PhaseError) -> LoadStatus:
        """The status after a failed load: stale since the first failure, the error named."""
        previous = _cache().status(self.settings_cls)
        stale_since = previous.stale_since or _now()
        error = f"{type(exc).__name__}: {exc}"
        return _load_status(previous.source, previous.fetched_at, stale_since, error)

    def load_values(self) -> dict[str, str]:
        """Fetch (or take from the cache) the key/value pairs for this load."""
        config = self.resolve()
        if not self.enabled(config):
            _cache().set_status(self.settings_cls, _load_status())
            return {}
        options = _options.get() or _DEFAULT_OPTIONS
        try:
            entries, all_cached = self.fetch_entries(config, options)
        except PhaseError as exc:
            failed = self.failure_status(exc)
            if not isinstance(exc, PhaseUnavailableError) or not options.fallback:
                _cache().set_status(self.settings_cls, failed)
                raise
            return self._fall_back(config, exc, failed)
        fetched = [(key.path, entry) for key, entry in entries]
        values, origins = merge_secrets(fetched, use_overrides=config.use_overrides)
        status = _load_status(
            "cache" if all_cached else "phase", min(entry.fetched_at for _, entry in fetched)
        )
        _cache().set_status(self.settings_cls, status)
        self._record(config, origins, signature_of(fetched), status)
        return values

    def _fall_back(
        self, config: ResolvedConfig, exc: PhaseUnavailableError, failed: LoadStatus
    ) -> dict[str, str]:
        cause = f"{type(exc).__name__}: {exc}"
        if config.fallback != "raise":
            last_good = [(k.path, _cache().last_good(k)) for k in self.cache_keys(config)]
            if all(entry is not None for _, entry in last_good):
                fetched = [(path, entry) for path, entry in last_good if entry is not None]
                values, origins = merge_secrets(fetched, use_overrides=config.use_overrides)
                fetched_at = min(entry.fetched_at for _, entry in fetched)
                logger.warning(
                    "Phase is unavailable (%s); serving the last good values of %s, fetched at %s",
                    cause,
                    self.settings_cls.__name__,
                    fetched_at.isoformat(timespec="seconds"),
                )
                status = _load_status("stale", fetched_at, failed.stale_since, failed.last_error)
                _cache().set_status(self.settings_cls, status)
                self._record(config, origins, signature_of(fetched), status)
                return values
        if config.fallback == "dotenv":
            existing = [p for p in config.env_files if p.is_file()]
            if existing:
                logger.warning(
                    "Phase is unavailable (%s); %s falls back to %s",
                    cause,
                    self.settings_cls.__name__,
                    ", ".join(str(p) for p in existing),
                )
                status = _load_status("dotenv", None, failed.stale_since, failed.last_error)
                _cache().set_status(self.settings_cls, status)
                self._record(config, {}, None, status)
                return {}
        _cache().set_status(self.settings_cls, failed)
        raise exc

    def _record(
        self,
        config: ResolvedConfig,
        origins: dict[str, str],
        signature: tuple[Any, ...] | None,
        status: LoadStatus,
    ) -> None:
        self.report = LoadReport(self, config.app_id, config.env, origins, signature, status)
        _reports.report = self.report


_announced: weakref.WeakSet[type] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _clients_lock
    _clients_lock = threading.Lock()  # a parent thread may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _fetcher(
    source: PhaseSettingsSource, config: ResolvedConfig, key: CacheKey, deadline: Deadline
) -> Any:
    def fetch() -> list[Secret]:
        with source.client_for(config) as client:
            secrets = client.list_secrets(
                key.app_id, key.env, path=key.path, tags=key.tags or None, deadline=deadline
            )
        warn_unresolved(secrets)
        return secrets

    return fetch


class _FastEnvSource(FastEnvFields):
    """The environment source of :class:`PhaseSettings`, with memoised field metadata."""


class _PhaseAwareDotEnvSource(DotEnvSettingsSource, FastEnvFields):
    """The dotenv source without the ``PHASE_*`` configuration keys: they configure the Phase
    source, they are not fields (no ``extra_forbidden`` error that would echo a token)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        fields = {name.lower() for name in self.settings_cls.model_fields}
        return {
            k: v
            for k, v in data.items()
            if not (k.lower().startswith("phase_") and k.lower() not in fields)
        }


def _upgrade(
    source: PydanticBaseSettingsSource, stock: type, faster: type[PydanticBaseSettingsSource]
) -> PydanticBaseSettingsSource:
    """The same source as ``faster``: its state is reused (environment and env files were
    read once already); a source the user customised is left alone."""
    if type(source) is not stock:
        return source
    upgraded = faster.__new__(faster)
    upgraded.__dict__.update(source.__dict__)
    return upgraded


class PhaseSettings(BaseSettings):
    """``BaseSettings`` whose fields are also filled from Phase.

    Sources, by priority: init kwargs > environment variables > **Phase** > dotenv > secrets
    dir > defaults. Override ``settings_customise_sources`` to reorder them; the Phase source
    is :class:`PhaseSettingsSource`. Defaults differ from ``BaseSettings`` in
    ``env_nested_delimiter="__"`` and ``hide_input_in_errors=True`` (a ``ValidationError``
    never prints a secret), and ``PHASE_*`` keys of the env file configure the source.
    """

    model_config = PhaseSettingsConfigDict(
        env_nested_delimiter="__",
        hide_input_in_errors=True,
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
            return
        except (ValidationError, SettingsError, PhaseError) as exc:
            error = exc
        # Raised again from a frame without the init kwargs, with a fresh traceback: error
        # trackers that record local variables never see a secret (pydantic's own frames hold
        # the input by design; `hide_input_in_errors` keeps it out of the message).
        del values
        if isinstance(error, ValidationError):
            _explain_missing(error, type(self))
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
            _upgrade(env_settings, EnvSettingsSource, _FastEnvSource),
            PhaseSettingsSource(settings_cls),
            _upgrade(dotenv_settings, DotEnvSettingsSource, _PhaseAwareDotEnvSource),
            file_secret_settings,
        )


def _explain_missing(exc: ValidationError, settings_cls: type) -> None:
    """Add a note naming the Phase keys, app and env behind each missing field (no values)."""
    report = last_report()
    if report is None or report.settings_cls is not settings_cls or report.app_id is None:
        return
    missing = [
        str(err["loc"][0]) for err in exc.errors() if err["type"] == "missing" and err["loc"]
    ]
    for name in missing:
        keys = report.expected_keys.get(name)
        if keys:
            exc.add_note(
                f"{name}: expected Phase key {' or '.join(keys)} in app {report.app_id}, "
                f"environment {report.env!r} (or an environment variable / .env entry)"
            )
