"""The Phase context of the command line: which app, environment and folders, and a client.

Resolved like a settings source's configuration: the command-line flags, then the process
environment, a settings class's ``model_config`` (``export --for``), its env files,
``.phase.json`` and the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._client.client import PhaseClient
from .._client.options import ClientOptions
from .._core.retry import Deadline
from .._defaults import DEFAULT_DEADLINE, DEFAULT_TIMEOUT
from .._errors import PhaseConfigError
from .._load.cache import Fetched
from .._models import Secret
from .._settings.config import UNSET, ResolvedConfig, resolve_config

__all__ = ["DEFAULT_DEADLINE", "Context", "flag_arguments", "make_context", "source_overrides"]


def flag_arguments(
    host: str | None, app_id: str | None, env: str | None, path: str | None
) -> dict[str, Any]:
    """The context flags as ``phase_*`` arguments (a flag left out falls through)."""
    return {
        "phase_host": host or UNSET,
        "phase_app_id": app_id or UNSET,
        "phase_env": env or UNSET,
        "phase_path": path or UNSET,
    }


def source_overrides(
    host: str | None, app_id: str | None, env: str | None, path: str | None
) -> dict[str, Any]:
    """The context flags given, as ``PhaseSettingsSource.with_overrides`` arguments."""
    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if app_id:
        overrides["app_id"] = app_id
    if env:
        overrides["env"] = env
    if path:
        text = path.strip()
        parts = [part.strip() for part in text.split(",") if part.strip()]
        overrides["path"] = None if text == "*" else parts[0] if len(parts) == 1 else parts
    return overrides


@dataclass(frozen=True, slots=True)
class Context:
    """A resolved Phase configuration with a token and an app, and the command's deadline."""

    config: ResolvedConfig
    deadline: float

    @property
    def app_id(self) -> str:
        """The app's UUID."""
        assert self.config.app_id is not None
        return self.config.app_id

    @property
    def paths(self) -> list[str | None]:
        """The folders to read, in order (None: every folder)."""
        return list(self.config.paths) if self.config.paths is not None else [None]

    def where(self, paths: Sequence[str | None] | None = None) -> str:
        """``app …, environment '…', /folders`` for messages."""
        shown = self.config.paths if paths is None else paths
        folders = "every folder" if shown is None or None in shown else ", ".join(map(str, shown))
        return f"app {self.app_id}, environment {self.config.env!r}, {folders}"

    def single_path(self, command: str) -> str:
        """The one folder a write goes to."""
        paths = self.config.paths
        if paths is None or len(paths) != 1:
            raise PhaseConfigError(f"{command} needs one folder: pass --path /folder")
        return paths[0]

    def client(self) -> PhaseClient:
        """A new client for this context (a context manager)."""
        options = ClientOptions.from_config(
            self.config,
            timeout=min(DEFAULT_TIMEOUT, self.deadline),
            deadline=self.deadline,
        )
        return PhaseClient.from_options(options)

    def fetch(
        self, client: PhaseClient, *, key: str | None = None, paths: Sequence[str | None]
    ) -> list[tuple[str | None, Fetched]]:
        """The secrets of each folder (of ``key`` only, if given), within one deadline."""
        deadline = Deadline(self.deadline)
        now = datetime.now(UTC)
        fetched = []
        for path in paths:
            secrets: list[Secret] = client.list_secrets(
                self.app_id,
                self.config.env,
                path=path,
                key=key,
                tags=self.config.tags or None,
                deadline=deadline,
            )
            if key is not None:
                secrets = [s for s in secrets if s.key.upper() == key.upper()]
            fetched.append((path, Fetched(tuple(secrets), now, 0.0)))
        return fetched


def make_context(
    arguments: Mapping[str, Any],
    deadline: float | None = None,
    settings_config: Mapping[str, Any] | None = None,
) -> Context:
    """Resolve the context; raises :class:`PhaseConfigError` without a token or an app."""
    config = resolve_config(settings_config or {}, arguments)
    if config.token is None:
        raise PhaseConfigError(
            "No Phase token: set PHASE_SERVICE_TOKEN (or PHASE_TOKEN) to a service account token"
        )
    if not config.app_id:
        raise PhaseConfigError(
            "No Phase app: pass --app-id, set PHASE_APP_ID, or add appId to .phase.json"
        )
    return Context(config, deadline or DEFAULT_DEADLINE)
