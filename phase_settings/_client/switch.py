"""Which apps this process reads over the end-to-end-encrypted API in ``"auto"`` mode.

In ``"auto"`` mode a client asks the REST API first; when Phase answers that the app has no
server-side encryption, the (API base, app) pair is remembered here, so every later call of
any client in the process goes straight to the end-to-end-encrypted API: one extra request per
process, none after. Only ids are kept, never a token or a key.
"""

from __future__ import annotations

import threading

__all__ = ["is_e2ee", "mark_e2ee", "reset"]

_lock = threading.Lock()
_e2ee_apps: set[tuple[str, str]] = set()
_MAX_APPS = 4096  # a bound, not a working limit: a process reads a handful of apps


def is_e2ee(api_base: str, app_id: str) -> bool:
    """True when this process has learnt that ``app_id`` at ``api_base`` has no SSE."""
    return (api_base, app_id) in _e2ee_apps


def mark_e2ee(api_base: str, app_id: str) -> None:
    """Remember that ``app_id`` at ``api_base`` is served by the end-to-end-encrypted API only."""
    with _lock:
        if len(_e2ee_apps) >= _MAX_APPS:
            _e2ee_apps.clear()  # forgetting costs one REST request per app, nothing more
        _e2ee_apps.add((api_base, app_id))


def reset() -> None:
    """Forget every switch (tests; an app whose SSE was switched on meanwhile)."""
    with _lock:
        _e2ee_apps.clear()
