"""Which apps a process reads over the end-to-end-encrypted API in ``"auto"`` mode.

In ``"auto"`` mode a client asks the REST API first; when Phase answers that the app has no
server-side encryption, the (API base, app) pair is remembered in the client's
:class:`AppSwitch`, so every later call of any client holding the same switch goes straight to
the end-to-end-encrypted API: one extra request per process, none after. A client gets
:data:`PROCESS_SWITCH` unless it is handed another. Only ids are kept, never a token or a key.
"""

from __future__ import annotations

import threading

__all__ = ["PROCESS_SWITCH", "AppSwitch"]

_MAX_APPS = 4096  # a bound, not a working limit: a process reads a handful of apps


class AppSwitch:
    """The (API base, app) pairs learnt to have no SSE (the ``ApiSwitch`` of the core)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"AppSwitch({len(self._apps)} apps)"

    def is_e2ee(self, api_base: str, app_id: str) -> bool:
        """True once ``app_id`` at ``api_base`` is known to have no SSE."""
        return (api_base, app_id) in self._apps

    def mark_e2ee(self, api_base: str, app_id: str) -> None:
        """Remember that ``app_id`` at ``api_base`` is served by the E2EE API only."""
        with self._lock:
            if len(self._apps) >= _MAX_APPS:
                self._apps.clear()  # forgetting costs one REST request per app, nothing more
            self._apps.add((api_base, app_id))

    def reset(self) -> None:
        """Forget every switch (tests; an app whose SSE was switched on meanwhile)."""
        with self._lock:
            self._apps.clear()


PROCESS_SWITCH = AppSwitch()  # the process's default: what auto mode learnt holds for it
