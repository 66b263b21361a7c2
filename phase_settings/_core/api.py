"""The six operations of a Phase API, declared once.

Each API (REST, end-to-end-encrypted, and the client's ``"auto"`` routing between them)
implements :class:`SecretsApi`: every operation returns a :data:`~._core.protocol.Plan`, which
the protocol core runs under the retry and deadline rules and a client drives over its
transport. The clients' public methods are thin wrappers of these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from .._models import PhaseApp, PhaseEnvironment, Secret
from .protocol import Plan

__all__ = ["SecretsApi"]


class SecretsApi(Protocol):
    """The operations every API provides, as plans (no I/O)."""

    mode: str  # "sse", "e2ee" or "auto"

    def list_secrets(
        self,
        app_id: str,
        env: str,
        path: str | None = "/",
        key: str | None = None,
        tags: Sequence[str] | str | None = None,
    ) -> Plan[list[Secret]]:
        """Secrets of one environment: one folder (exact), or every folder if ``path`` is None,
        optionally one key (case-insensitive) or the secrets with any of ``tags``."""
        ...

    def create_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        """Create secrets; the records Phase made."""
        ...

    def update_secrets(
        self, app_id: str, env: str, secrets: Iterable[Mapping[str, Any]]
    ) -> Plan[list[Secret]]:
        """Update secrets by ``id``; the records as stored."""
        ...

    def delete_secrets(self, app_id: str, env: str, ids: Iterable[str]) -> Plan[int]:
        """Delete secrets by id; how many."""
        ...

    def list_apps(self) -> Plan[list[PhaseApp]]:
        """Apps the token can access."""
        ...

    def list_environments(self, app_id: str) -> Plan[list[PhaseEnvironment]]:
        """Environments of an app that the token can access."""
        ...
