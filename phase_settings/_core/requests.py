"""What both APIs' plans build the same way: the checked query and the checked write body of
a secrets request (the E2EE API checks its arguments with the same rules and messages)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._errors import PhaseConfigError

__all__ = ["secret_params", "secrets_body"]


def secret_params(
    app_id: str,
    env: str,
    path: str | None = "/",
    key: str | None = None,
    tags: Sequence[str] | str | None = None,
) -> dict[str, str]:
    """The query of a secrets request; checks ``app_id`` and ``env`` the same way for both APIs.

    Raises:
        PhaseConfigError: ``app_id`` or ``env`` is empty or not a string.
    """
    if not app_id or not isinstance(app_id, str):
        raise PhaseConfigError("app_id is required: the UUID of a Phase app")
    if not env or not isinstance(env, str):
        raise PhaseConfigError("env is required: the name of a Phase environment")
    params = {"app_id": app_id, "env": env}
    if path is not None:
        params["path"] = path
    if key is not None:
        params["key"] = key
    if tags:
        params["tags"] = tags if isinstance(tags, str) else ",".join(tags)
    return params


def secrets_body(secrets: Iterable[Mapping[str, Any]], *, need_id: bool) -> dict[str, Any]:
    """The ``{"secrets": [...]}`` body of a write, each item checked (an ``id`` to update, a
    ``key`` to create) and put in the API's spelling (``override.isActive``, ``tags`` a list).

    Raises:
        PhaseConfigError: an item is not a mapping, or lacks its ``id`` or ``key``.
    """
    items = []
    for secret in secrets:
        if not isinstance(secret, Mapping):
            raise PhaseConfigError("each secret must be a mapping such as {'key': …}")
        item = dict(secret)
        if need_id and not item.get("id"):
            raise PhaseConfigError("each secret to update needs the 'id' Phase gave it")
        if not need_id and not item.get("key"):
            raise PhaseConfigError("each secret to create needs a non-empty 'key'")
        override = item.get("override")
        if isinstance(override, Mapping) and "is_active" in override:
            override = dict(override)
            override["isActive"] = override.pop("is_active")
            item["override"] = override
        if "tags" in item and not isinstance(item["tags"], list):
            item["tags"] = list(item["tags"])
        items.append(item)
    return {"secrets": items}
