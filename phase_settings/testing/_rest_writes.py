"""The public REST API's writes: POST, PUT and DELETE on ``/v1/secrets/``.

Every item of a batch is validated before anything is written, as the REST view does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._auth import Context
from ._crypto import digest
from ._state import SECRET_TYPES, Environment, Secret, Store, normalize_path, now
from ._wire import SECRETS_ALLOW, FakeResponse, Reply, error, json_response, spaced_error

_ALLOW = SECRETS_ALLOW
_Prepared = tuple[str, str, str, str, str, Any, "dict[str, Any] | None"]


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a write, or the REST API's 400."""
    if not body:
        raise Reply(error(400, "Request body is required.", _ALLOW))
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Reply(error(400, "Request body must be valid JSON.", _ALLOW)) from None
    if not isinstance(payload, dict):
        raise Reply(error(400, "Request body must be a JSON object.", _ALLOW))
    return payload


def clean_tags(raw: Any) -> list[str] | str:
    """The tag names to set, or the error message for a tag name that is too long."""
    if not isinstance(raw, list):
        return []
    names: list[str] = []
    for tag in raw:
        if not isinstance(tag, str) or not tag.strip():
            continue
        if len(tag) > 64:
            return f"Tag name exceeds 64 characters: '{tag[:32]}'…"
        if tag not in names:
            names.append(tag)
    return names


def _invalid_type(kind: Any) -> str:
    return f"Invalid 'type': '{kind}'. Must be one of {list(SECRET_TYPES)}."


def _override_problem(override: Any) -> str | None:
    if not isinstance(override, dict):
        return "'override' must be a JSON object."
    if not isinstance(override.get("value"), str):
        return "'override.value' must be a string."
    if "isActive" in override and not isinstance(override["isActive"], bool):
        return "'override.isActive' must be a boolean."
    return None


@dataclass
class RestWrites:
    """One write request of ``context`` to ``env``."""

    store: Store
    context: Context
    env: Environment
    item: Callable[[Secret], dict[str, Any]]
    legacy: bool

    def create(self, payload: dict[str, Any]) -> FakeResponse:
        entries = payload.get("secrets")
        if not isinstance(entries, list) or not entries:
            return error(400, "'secrets' must be a non-empty list.", _ALLOW)
        prepared: list[_Prepared] = []
        for entry in entries:
            if not isinstance(entry, dict):
                return error(400, "Each entry in 'secrets' must be an object.", _ALLOW)
            key = entry.get("key")
            if not isinstance(key, str) or not key:
                return error(400, "Each secret requires a non-empty 'key'.", _ALLOW)
            value = entry.get("value")
            if not isinstance(value, str):
                return error(400, "Each secret requires a 'value' string.", _ALLOW)
            kind = entry.get("type", "secret")
            if kind not in SECRET_TYPES:
                return error(400, _invalid_type(kind), _ALLOW)
            override = entry.get("override")
            if "override" in entry:
                problem = _override_problem(override)
                if problem:
                    return error(400, problem, _ALLOW)
            raw_path = entry.get("path", "/")
            folder_path = normalize_path(raw_path) if isinstance(raw_path, str) else "/"
            comment = entry.get("comment", "")
            comment = comment if isinstance(comment, str) else str(comment)
            chosen = override if "override" in entry else None
            prepared.append((key, value, folder_path, comment, kind, entry.get("tags"), chosen))
        for key, _, folder_path, *_rest in prepared:
            if self.store.clashes(self.env, folder_path, key.upper(), exclude=None):
                return spaced_error(409, "Duplicate secret found", _ALLOW)
        created: list[Secret] = []
        for key, value, folder_path, comment, kind, raw_tags, override in prepared:
            secret = self.store.create_secret(self.env, key, value, folder_path, comment, [], kind)
            created.append(secret)
            tags = clean_tags(raw_tags)
            if isinstance(tags, str):
                return error(400, tags, _ALLOW)
            secret.tags = tags
            self._override(secret, override)
        return json_response(200, [self.item(secret) for secret in created], _ALLOW)

    def update(self, payload: dict[str, Any]) -> FakeResponse:
        entries = payload.get("secrets")
        if not isinstance(entries, list) or not entries:
            return error(400, "'secrets' must be a non-empty list.", _ALLOW)
        for entry in entries:
            if not isinstance(entry, dict):
                return error(400, "Each entry in 'secrets' must be an object.", _ALLOW)
            if "id" not in entry:
                return error(400, "Secret ID not provided", _ALLOW)
        targets: list[tuple[Secret, dict[str, Any]]] = []
        for entry in entries:
            problem = self._update_problem(entry)
            if problem is not None:
                return problem
            targets.append((self.env.secrets[entry["id"]], entry))
        at = now()
        for secret, entry in targets:
            if "key" in entry:
                secret.key = entry["key"].upper()
                secret.key_digest = digest(secret.key, self.env.salt_hex)
            if "value" in entry and secret.type != "sealed":
                secret.value = entry["value"]
            if isinstance(entry.get("comment"), str):
                secret.comment = entry["comment"]
            if isinstance(entry.get("path"), str):
                secret.path = normalize_path(entry["path"])
                secret.folder = self.store.folder(self.env, secret.path)
            if "type" in entry:
                secret.type = entry["type"]
            if "tags" in entry:
                tags = clean_tags(entry["tags"])
                if isinstance(tags, str):
                    return error(400, tags, _ALLOW)
                secret.tags = tags
            secret.version += 1
            secret.updated_at = at
            self._override(secret, entry.get("override"))
        return json_response(200, [self.item(secret) for secret, _ in targets], _ALLOW)

    def _update_problem(self, entry: dict[str, Any]) -> FakeResponse | None:
        secret = self.env.secrets.get(entry["id"]) if isinstance(entry["id"], str) else None
        if secret is None:
            return error(404, f"Secret not found: {entry['id']}", _ALLOW)
        if "key" in entry and (not isinstance(entry["key"], str) or not entry["key"]):
            return error(400, "Each secret requires a non-empty 'key'.", _ALLOW)
        if "value" in entry and not isinstance(entry["value"], str):
            return error(400, "Each secret requires a 'value' string.", _ALLOW)
        if "type" in entry:
            if entry["type"] not in SECRET_TYPES:
                return error(400, _invalid_type(entry["type"]), _ALLOW)
            if secret.type == "sealed" and entry["type"] != "sealed":
                message = (
                    "Sealed secrets cannot be unsealed. Delete and recreate the secret instead."
                )
                return error(400, message, _ALLOW)
        if "override" in entry:
            problem = _override_problem(entry["override"])
            if problem:
                return error(400, problem, _ALLOW)
        new_key = entry["key"].upper() if "key" in entry else secret.key
        raw_path = entry.get("path")
        new_path = normalize_path(raw_path) if isinstance(raw_path, str) else secret.path
        if ("key" in entry or "path" in entry) and self.store.clashes(
            self.env, new_path, new_key, exclude=secret.id
        ):
            return spaced_error(409, "Duplicate secret found", _ALLOW)
        return None

    def delete(self, payload: dict[str, Any]) -> FakeResponse:
        ids = payload.get("secrets")
        if not isinstance(ids, list) or not ids:
            return error(400, "'secrets' must be a non-empty list of secret IDs.", _ALLOW)
        missing = [str(i) for i in ids if not (isinstance(i, str) and i in self.env.secrets)]
        if missing:
            if self.legacy:
                return error(404, "Secret does not exist", _ALLOW)
            message = "Secret(s) not found in this environment: " + ", ".join(missing)
            return error(404, message, _ALLOW)
        distinct = list(dict.fromkeys(ids))
        for secret_id in distinct:
            self.store.remove_secret(self.env.secrets[secret_id])
        count = len(distinct)
        noun = "secret" if count == 1 and not self.legacy else "secrets"
        return json_response(200, {"message": f"Deleted {count} {noun}"}, _ALLOW)

    def _override(self, secret: Secret, override: Any) -> None:
        if isinstance(override, dict) and self.context.account.kind == "User":
            active = bool(override.get("isActive", True))
            self.store.upsert_override(self.context.account, secret, override["value"], active)
