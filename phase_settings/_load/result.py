"""What a load is asked to do and what it served: the options of one load, the
:class:`LoadResult` of one source, and the helpers that turn fetched entries into key/value
pairs and a signature."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .._errors import PhaseConfigError, scrubbed
from .._models import LoadStatus

if TYPE_CHECKING:
    from .._errors import PhaseError
    from .cache import CacheKey, Fetched

__all__ = [
    "LoadOptions",
    "LoadResult",
    "combined_status",
    "merge_secrets",
    "signature_of",
]

_EMPTY: Mapping[Any, Any] = MappingProxyType({})
_SEVERITY = ("none", "phase", "cache", "snapshot", "stale", "dotenv")


class LoadOptions(NamedTuple):
    """How the loads of one block behave (set by ``LiveSettings`` and ``aload``)."""

    force: bool = False  # bypass the TTL (LiveSettings.refresh)
    fallback: bool = True  # False: raise instead of serving stale or .env values
    prefetched: Mapping[CacheKey, Fetched] = _EMPTY  # fetched already (aload, refresh)
    errors: Mapping[CacheKey, PhaseError] = _EMPTY  # failures of the prefetch (aload)


@dataclass(frozen=True, slots=True, repr=False)
class LoadResult:
    """What one load of a Phase source served.

    Attributes:
        values: Phase key -> value (secret: never logged, never in ``repr``).
        origins: Phase key -> the folder it came from.
        signature: ids, versions and update times of what was served (equal signatures mean
            equal values), or None when nothing came from Phase.
        status: how the load went.
        app_id, env: the app and environment read (None when Phase was not used).
    """

    values: dict[str, str]
    origins: dict[str, str]
    signature: tuple[Any, ...] | None
    status: LoadStatus
    app_id: str | None = None
    env: str | None = None
    entries: tuple[tuple[CacheKey, Fetched], ...] = field(default=(), compare=False)

    def __repr__(self) -> str:
        return (
            f"LoadResult({len(self.values)} values, source={self.status.source!r}, "
            f"app_id={self.app_id!r}, env={self.env!r})"
        )


def combined_status(results: Sequence[LoadResult]) -> LoadStatus:
    """One status for the Phase sources of one build: the least fresh of them."""
    if not results:
        return LoadStatus()
    return max((r.status for r in results), key=lambda s: _SEVERITY.index(s.source))


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
