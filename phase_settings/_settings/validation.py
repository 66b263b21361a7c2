"""A ``ValidationError`` as ``PhaseSettings`` raises it.

Values from Phase are masked in its message, ``.errors()`` (``input`` and ``ctx``) and
``.json()``, which error trackers and web frameworks serialise; a missing field gets a note
naming the Phase keys, app and environment that would have filled it.

The error is rebuilt with the same error types, locations and messages; only the parts that hold
a value served by Phase (equal to it, inside it after JSON decoding, or containing it) read
``**********`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, AliasPath, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

if TYPE_CHECKING:
    from .source import PhaseSettingsSource

__all__ = ["MASK", "expected_keys", "explain_missing", "masked"]

MASK = "**********"
_MIN_INSIDE = 3  # a shorter string inside a Phase value is not taken for a part of it
_MIN_CONTAINED = 4  # a shorter Phase value inside a string is not taken for the value


class _Masker:
    def __init__(self, secrets: set[str]):
        self.secrets = secrets
        self.long = [s for s in secrets if len(s) >= _MIN_CONTAINED]
        self.changed = False

    def text(self, value: str) -> str:
        if value in self.secrets or (
            len(value) >= _MIN_INSIDE and any(value in s for s in self.secrets)
        ):
            self.changed = True
            return MASK
        result = value
        for secret in self.long:
            if secret in result:
                result = result.replace(secret, MASK)
        if result != value:
            self.changed = True
        return result

    def any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            decoded = value.decode("utf-8", "replace")
            hidden = self.text(decoded)
            return value if hidden == decoded else hidden.encode()
        if isinstance(value, Mapping):
            return {self.any(k): self.any(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return type(value)(self.any(v) for v in value)
        if isinstance(value, BaseException):
            text = str(value)
            hidden = self.text(text)
            return value if hidden == text else ValueError(hidden)
        return value


def masked(
    error: ValidationError, served: Iterable[Mapping[str, str]], config: Mapping[str, Any]
) -> ValidationError:
    """``error`` with every value of ``served`` masked; ``error`` itself when none occurs."""
    secrets = {v for values in served for v in values.values() if v}
    if not secrets:
        return error
    masker = _Masker(secrets)
    details: list[InitErrorDetails] = []
    for item in error.errors():
        detail: dict[str, Any] = {"loc": item["loc"], "input": masker.any(item["input"])}
        ctx = item.get("ctx")
        if ctx is not None:
            detail["ctx"] = {k: masker.any(v) for k, v in ctx.items()}
        msg = masker.text(item["msg"])
        if msg != item["msg"] or not _known(item, detail):
            # A message that held the value (a validator's own text), or a custom error type:
            # the same type and the same message, masked.
            detail["type"] = PydanticCustomError(
                item["type"], msg.replace("{", "{{").replace("}", "}}")
            )
            detail.pop("ctx", None)
        else:
            detail["type"] = item["type"]
        details.append(detail)  # type: ignore[arg-type]
    if not masker.changed:
        return error
    rebuilt = ValidationError.from_exception_data(
        error.title, details, hide_input=bool(config.get("hide_input_in_errors", False))
    )
    for note in getattr(error, "__notes__", ()):
        rebuilt.add_note(note)
    return rebuilt


def _known(item: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
    """Whether pydantic can rebuild this error from its type name with the same message."""
    probe: dict[str, Any] = {"type": item["type"], "loc": (), "input": None}
    if "ctx" in detail:
        probe["ctx"] = detail["ctx"]
    try:
        again = ValidationError.from_exception_data("probe", [probe])  # type: ignore[list-item]
    except (KeyError, TypeError, ValueError):
        return False
    return bool(again.errors()[0]["msg"] == item["msg"])


def expected_keys(source: PhaseSettingsSource, name: str) -> list[str]:
    """The Phase keys that would fill field ``name`` (for messages; no values)."""
    info = source.settings_cls.model_fields[name]
    alias = info.validation_alias or info.alias
    if isinstance(alias, str):
        names = [alias]
    elif isinstance(alias, AliasChoices):
        names = [c if isinstance(c, str) else str(c.path[0]) for c in alias.choices]
    elif isinstance(alias, AliasPath):
        names = [str(alias.path[0])]
    else:
        names = [source.env_prefix + name]
    return [n.upper() for n in names]


def explain_missing(exc: ValidationError, called: Sequence[PhaseSettingsSource]) -> None:
    """Add a note naming the Phase keys, app and env behind each missing field (no values)."""
    used = [s for s in called if s.result is not None and s.result.app_id is not None]
    if not used:
        _explain_not_asked(exc, called)
        return
    source = used[-1]
    assert source.result is not None
    fields = source.settings_cls.model_fields
    for err in exc.errors():
        if err["type"] != "missing" or not err["loc"] or err["loc"][0] not in fields:
            continue
        name = str(err["loc"][0])
        exc.add_note(
            f"{name}: expected Phase key {' or '.join(expected_keys(source, name))} in app "
            f"{source.result.app_id}, environment {source.result.env!r} (or an environment "
            "variable / .env entry)"
        )


def _explain_not_asked(exc: ValidationError, called: Sequence[PhaseSettingsSource]) -> None:
    """A missing field of a class whose Phase source ran without a token (the commonest
    mistake) says that Phase was not asked, and what to set."""
    idle = [s for s in called if s.result is not None and s.result.status.source == "none"]
    if not idle:
        return
    source = idle[-1]
    fields = source.settings_cls.model_fields
    for err in exc.errors():
        if err["type"] != "missing" or not err["loc"] or err["loc"][0] not in fields:
            continue
        name = str(err["loc"][0])
        exc.add_note(
            f"{name}: Phase was not asked: no PHASE_SERVICE_TOKEN (set it, or "
            f"phase_required=True); it would read Phase key "
            f"{' or '.join(expected_keys(source, name))}"
        )
