"""The one table of the ``phase_*`` settings: names, environment variables, defaults, types.

Everything that lists the settings is built from :data:`SETTINGS` or checked against it: the
``PhaseSettingsConfigDict`` keys and ``ResolvedConfig`` fields (declared for type checkers; a
test keeps them equal to the table), ``PhaseSettingsSource``'s keyword arguments, the defaults
of ``ClientOptions``, ``PhaseClient`` and ``AsyncPhaseClient``, the command-line flags that
mirror a setting, and the README's configuration table (a test compares it with the table).

Only the standard library and :mod:`._errors` are imported: a client reads its defaults here
without importing pydantic-settings or python-dotenv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._errors import PhaseConfigError

__all__ = [
    "DEFAULTS",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_SNAPSHOT_MAX_AGE",
    "DEFAULT_TIMEOUT",
    "ENV_NAMES",
    "FALLBACKS",
    "MODES",
    "PHASE_CLOUD",
    "SETTINGS",
    "Fallback",
    "Mode",
    "Setting",
    "from_environ",
    "parse_mode",
]

PHASE_CLOUD = "https://api.phase.dev"  # the API base when no host is set

Mode = Literal["auto", "sse", "e2ee"]
Fallback = Literal["dotenv", "stale", "raise"]
MODES: tuple[str, ...] = ("auto", "sse", "e2ee")
FALLBACKS: tuple[str, ...] = ("dotenv", "stale", "raise")


@dataclass(frozen=True, slots=True)
class Setting:
    """One ``phase_*`` setting.

    Attributes:
        name: the ``model_config`` key, e.g. ``phase_app_id``.
        env: the environment variables that set it, first wins (also read from env files).
        default: the value when nothing sets it.
        type: its type as ``PhaseSettingsConfigDict`` declares it.
        doc: what it does, in a line (the README's notes).
        unit: ``"s"`` (seconds) or ``"bytes"`` for numbers; how the docs show the default.
        choices: the values a ``Literal`` setting accepts.
        shown: how the docs show the default when the value alone does not say it.
    """

    name: str
    env: tuple[str, ...]
    default: Any
    type: str
    doc: str
    unit: str = ""
    choices: tuple[str, ...] = ()
    shown: str | None = None

    @property
    def argument(self) -> str:
        """The keyword of ``PhaseSettingsSource`` (and ``ClientOptions``): ``app_id``."""
        return self.name.removeprefix("phase_")

    @property
    def flag(self) -> str:
        """The command-line flag of the setting, where one mirrors it: ``--app-id``."""
        return "--" + self.argument.replace("_", "-")


_ROWS = (
    Setting(
        "phase_token",
        ("PHASE_SERVICE_TOKEN", "PHASE_TOKEN"),
        None,
        "str | SecretStr | None",
        "a `SecretStr` everywhere",
    ),
    Setting(
        "phase_host",
        ("PHASE_HOST",),
        None,
        "str | None",
        "self-hosted: the console URL; `/service/public` is appended",
        shown=f"`{PHASE_CLOUD}`",
    ),
    Setting(
        "phase_app_id",
        ("PHASE_APP_ID",),
        None,
        "str | None",
        "required once a token is set",
        shown="`.phase.json` `appId`",
    ),
    Setting(
        "phase_env",
        ("PHASE_ENV",),
        "Development",
        "str | None",
        "case-insensitive",
        shown="`.phase.json` `defaultEnv`, else `Development`",
    ),
    Setting(
        "phase_path",
        ("PHASE_PATH",),
        "/",
        "PathSetting",
        "a folder; `/a,/b`: folders merged in order (later wins); `None` or `*`: every folder",
    ),
    Setting(
        "phase_tags",
        ("PHASE_TAGS",),
        None,
        "str | Sequence[str] | None",
        "only secrets with any of these tags",
    ),
    Setting(
        "phase_verify_ssl",
        ("PHASE_VERIFY_SSL",),
        True,
        "bool | str",
        "`false`, or a CA bundle path",
    ),
    Setting(
        "phase_allow_http",
        ("PHASE_ALLOW_HTTP",),
        False,
        "bool",
        "plain `http://` is refused off loopback without it",
    ),
    Setting("phase_timeout", (), 10.0, "float", "per request", unit="s"),
    Setting("phase_deadline", (), 15.0, "float", "the whole load, never exceeded", unit="s"),
    Setting("phase_max_attempts", (), 3, "int", "attempts per request"),
    Setting("phase_cache_ttl", (), 300.0, "float", "0 disables the cache", unit="s"),
    Setting(
        "phase_fallback",
        (),
        "dotenv",
        "Fallback",
        '`"dotenv"`, `"stale"` or `"raise"`',
        choices=FALLBACKS,
    ),
    Setting("phase_required", (), False, "bool", "no token is then an error"),
    Setting("phase_use_overrides", (), True, "bool", "apply active personal overrides"),
    Setting(
        "phase_max_response_bytes",
        (),
        32 * 1024 * 1024,
        "int",
        "a larger reply is refused before parsing",
        unit="bytes",
    ),
    Setting(
        "phase_snapshot_dir",
        ("PHASE_SNAPSHOT_DIR",),
        None,
        "str | os.PathLike[str] | None",
        'a folder for the encrypted on-disk snapshot (see "Surviving a Phase outage")',
        shown="none (off)",
    ),
    Setting(
        "phase_snapshot_max_age",
        (),
        7 * 24 * 3600.0,
        "float",
        "an older snapshot is never served",
        unit="s",
    ),
    Setting(
        "phase_mode",
        ("PHASE_MODE",),
        "auto",
        "Mode",
        '`"auto"`: REST, and the end-to-end-encrypted API for an app without SSE; `"sse"`: '
        'REST only; `"e2ee"`: the end-to-end-encrypted API only (below)',
        choices=MODES,
    ),
)

SETTINGS: Mapping[str, Setting] = {row.name: row for row in _ROWS}
# key -> environment names, first wins
ENV_NAMES: Mapping[str, tuple[str, ...]] = {k: s.env for k, s in SETTINGS.items() if s.env}
DEFAULTS: Mapping[str, Any] = {k: s.default for k, s in SETTINGS.items()}

DEFAULT_TIMEOUT: float = DEFAULTS["phase_timeout"]
DEFAULT_DEADLINE: float = DEFAULTS["phase_deadline"]
DEFAULT_MAX_ATTEMPTS: int = DEFAULTS["phase_max_attempts"]
DEFAULT_MAX_RESPONSE_BYTES: int = DEFAULTS["phase_max_response_bytes"]
DEFAULT_SNAPSHOT_MAX_AGE: float = DEFAULTS["phase_snapshot_max_age"]


def from_environ(name: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(variable, value) of the first of the setting's environment variables that is set and
    not empty; None when none is."""
    for variable in SETTINGS[name].env:
        value = environ.get(variable)
        if value:
            return variable, value
    return None


def parse_mode(value: Any, origin: str = "phase_mode") -> Mode:
    """``phase_mode`` / ``PHASE_MODE``: ``auto``, ``sse`` or ``e2ee`` (case-insensitive).

    Raises:
        PhaseConfigError: any other value.
    """
    if not isinstance(value, str) or value.strip().lower() not in MODES:
        raise PhaseConfigError(
            f"{origin} must be 'auto' (REST, and the end-to-end-encrypted API for an app "
            "without SSE), 'sse' (REST only) or 'e2ee' (the end-to-end-encrypted API only)"
        )
    mode = value.strip().lower()
    return "sse" if mode == "sse" else "e2ee" if mode == "e2ee" else "auto"
