"""Filling a fake from seed data (the JSON of ``phase-settings serve-fake --seed``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ._state import DEFAULT_ENVIRONMENTS


class _Seedable(Protocol):
    def add_app(
        self,
        name: str,
        sse: bool = True,
        environments: Iterable[str] = DEFAULT_ENVIRONMENTS,
        *,
        app_id: str | None = None,
        description: str | None = None,
    ) -> str: ...

    def _seed_secret(self, app_id: str, env: str, folder: str, key: str, spec: Any) -> None: ...


def seed_fake(fake: _Seedable, data: Mapping[str, Any]) -> None:
    """Add the apps and secrets of ``data`` to ``fake``.

    Raises:
        ValueError: The seed does not have the documented shape.
    """
    apps = data.get("apps") if isinstance(data, Mapping) else None
    if not isinstance(apps, list):
        raise ValueError('seed must be an object with an "apps" list')
    for position, app in enumerate(apps):
        if not isinstance(app, Mapping) or not isinstance(app.get("name"), str):
            raise ValueError(f'seed app #{position} must be an object with a "name"')
        environments = app.get("environments")
        if environments is None:
            environments = {}
        if not isinstance(environments, Mapping):
            raise ValueError(f'seed app {app["name"]!r}: "environments" must be an object')
        app_id = fake.add_app(
            app["name"],
            sse=bool(app.get("sse", True)),
            environments=list(environments) or DEFAULT_ENVIRONMENTS,
            app_id=app.get("id"),
            description=app.get("description"),
        )
        for env_name, folders in environments.items():
            if folders is None:
                continue
            if not isinstance(folders, Mapping):
                raise ValueError(f"seed environment {env_name!r} must map paths to objects")
            for folder, entries in folders.items():
                if not isinstance(entries, Mapping):
                    raise ValueError(f"seed path {folder!r} must map keys to values")
                for key, spec in entries.items():
                    fake._seed_secret(app_id, env_name, folder, key, spec)
