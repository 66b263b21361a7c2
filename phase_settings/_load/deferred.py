"""Writes to the second-level store (the on-disk snapshot) held until the settings validated.

A load that fetched from Phase inside :func:`validated_writes` does not write at once: the write
(and the release of the key's lock, held since before the fetch) waits until the block's
settings class validated, so a snapshot never holds values the class refused and the processes
waiting on the lock read what this one wrote. A load outside such a block writes at once.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .._settings.config import ResolvedConfig
    from .cache import CacheKey, Fetched
    from .runtime import SecondLevelStore

__all__ = ["validated_writes", "write_after_validation"]


class _Held(NamedTuple):
    store: SecondLevelStore
    key: CacheKey
    entry: Fetched
    config: ResolvedConfig
    release: Callable[[], object]


_pending: contextvars.ContextVar[list[_Held] | None] = contextvars.ContextVar(
    "phase_settings_held_writes", default=None
)


@contextmanager
def validated_writes() -> Iterator[Callable[[], None]]:
    """Hold the writes of the loads in this block; call the yielded function once the settings
    validated. On leaving the block the held writes are done (if it was called) and every
    held lock is released, whatever happened."""
    held: list[_Held] = []
    committed = False

    def commit() -> None:
        nonlocal committed
        committed = True

    token = _pending.set(held)
    try:
        yield commit
    finally:
        _pending.reset(token)
        for item in held:
            _finish(item, write=committed)


def write_after_validation(
    store: SecondLevelStore,
    key: CacheKey,
    entry: Fetched,
    config: ResolvedConfig,
    release: Callable[[], object],
) -> None:
    """Write ``entry`` (then call ``release``) once the enclosing block validated, or now when
    no block is waiting for a validation."""
    item = _Held(store, key, entry, config, release)
    held = _pending.get()
    if held is None:
        _finish(item, write=True)
    else:
        held.append(item)


def _finish(item: _Held, *, write: bool) -> None:
    try:
        if write:
            item.store.put(item.key, item.entry, item.config)
    finally:
        item.release()
