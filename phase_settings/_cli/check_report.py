"""The report of a settings check: one row per field, Phase keys no field reads, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .._models import LoadStatus

__all__ = ["UNREAD_HEADING", "CheckReport", "FieldReport"]

UNREAD_HEADING = (
    "Phase keys read by no field (a typo? or the target of another secret's ${...} "
    "reference: Phase resolves those on the server, so such a key may be needed)"
)


@dataclass(frozen=True, slots=True)
class FieldReport:
    """One field of a settings check.

    Attributes:
        name: the field's name.
        source: where its value came from: ``"phase"``, ``"env"``, ``"dotenv"``, ``"secrets"``,
            ``"init"``, ``"default"``, ``"missing"``, or a custom source's class name.
        path: for ``"phase"``, the Phase folder(s) the value came from, else None.
        value: the value as JSON-able data, ``"****"`` where masked, None if not validated.
        masked: whether the value is hidden.
        also: lower-priority sources that filled parts of a nested value.
        stale: the Phase value is a last good value served while Phase was unavailable.
    """

    name: str
    source: str
    path: str | None
    value: Any
    masked: bool
    also: tuple[str, ...] = ()
    stale: bool = False

    @property
    def origin(self) -> str:
        """``"phase /folder"``, ``"env"``, ... as shown in the text report."""
        text = f"phase {self.path}" if self.source == "phase" and self.path else self.source
        return " + ".join((text, *self.also)) + (" (stale)" if self.stale else "")


@dataclass(slots=True)
class CheckReport:
    """The result of checking a settings class: where each field came from, what is wrong.

    Attributes:
        target: ``module:Class`` of the settings class.
        fields: one row per field, in declaration order.
        unused_keys: ``(key, path)`` of Phase keys that no field reads.
        errors: ``(field, error type)`` of each validation error; empty when valid.
        status: how the Phase load went (:class:`LoadStatus`).
        app_id: the Phase app loaded, or None.
        env: the Phase environment loaded, or None.
        phase_sources: how many Phase sources the class has.
        notes: hints on errors (the Phase keys a missing field expects).
    """

    target: str
    fields: list[FieldReport] = field(default_factory=list)
    unused_keys: list[tuple[str, str]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    status: LoadStatus = field(default_factory=LoadStatus)
    app_id: str | None = None
    env: str | None = None
    phase_sources: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """True when the settings validate."""
        return not self.errors

    @property
    def fell_back(self) -> bool:
        """True when a fallback (last good values, or the env file) served instead of Phase."""
        return self.status.source in ("stale", "dotenv", "snapshot")

    def phase_summary(self) -> str:
        """One line on how Phase was used."""
        status = self.status
        if self.phase_sources == 0:
            return "Phase: not used (the class has no Phase source)"
        where = f"app {self.app_id}, environment {self.env!r}: " if self.app_id else ""
        fetched = (
            f" (fetched {status.fetched_at.isoformat(timespec='seconds')})"
            if status.fetched_at
            else ""
        )
        if status.source == "phase":
            return f"Phase: {where}loaded from Phase{fetched}"
        if status.source == "cache":
            return f"Phase: {where}loaded from Phase (cached in this process){fetched}"
        source: str = status.source  # "snapshot" is served by releases with an on-disk snapshot
        if source in ("stale", "snapshot"):
            kind = "the on-disk SNAPSHOT" if source == "snapshot" else "the LAST GOOD values"
            return (
                f"WARNING: Phase was unavailable ({status.last_error}); the values are {kind}"
                f"{fetched}, not current ones from Phase"
            )
        if status.source == "dotenv":
            return (
                f"WARNING: Phase was unavailable ({status.last_error}); the values came from the "
                "env file FALLBACK, not from Phase"
            )
        return "Phase: not used (no token: set PHASE_SERVICE_TOKEN)"

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        status = self.status
        return {
            "settings": self.target,
            "valid": self.valid,
            "phase": {
                "used": self.phase_sources > 0 and status.source != "none",
                "app_id": self.app_id,
                "env": self.env,
                "status": status.source,
                "fallback": self.fell_back,
                "fetched_at": status.fetched_at.isoformat() if status.fetched_at else None,
                "stale_since": status.stale_since.isoformat() if status.stale_since else None,
                "last_error": status.last_error,
            },
            "fields": [
                {
                    "name": row.name,
                    "source": row.source,
                    "path": row.path,
                    "also": list(row.also),
                    "stale": row.stale,
                    "value": row.value,
                    "masked": row.masked,
                }
                for row in self.fields
            ],
            "unused_keys": [
                {"key": key, "path": path, "may_be_reference_target": True}
                for key, path in self.unused_keys
            ],
            "errors": [{"field": name, "type": kind} for name, kind in self.errors],
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The report as text."""
        lines = [f"{self.target}", self.phase_summary(), ""]
        rows = [("FIELD", "SOURCE", "VALUE")]
        for row in self.fields:
            rows.append((row.name, row.origin, _display(row.value)))
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        for name, origin, value in rows:
            lines.append(f"  {name.ljust(widths[0])}  {origin.ljust(widths[1])}  {value}".rstrip())
        if self.unused_keys:
            lines.append("")
            lines.append(UNREAD_HEADING + ":")
            lines.extend(f"  {key} ({path})" for key, path in self.unused_keys)
        lines.append("")
        if self.errors:
            lines.append(f"INVALID: {len(self.errors)} error(s)")
            lines.extend(f"  {name}: {kind}" for name, kind in self.errors)
            lines.extend(f"  {note}" for note in self.notes)
        else:
            lines.append(f"OK: {len(self.fields)} field(s) valid")
        return "\n".join(lines) + "\n"


def _display(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and value.isprintable():
        return value
    return json.dumps(value, ensure_ascii=False)
