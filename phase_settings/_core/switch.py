"""The auto-mode switch as a protocol: which apps a process reads over the E2EE API.

In ``"auto"`` mode a client asks the REST API first and, when Phase answers that an app has no
server-side encryption, marks that (API base, app) in its switch, so that every client holding
the same switch goes straight to the end-to-end-encrypted API from then on. The client layer
holds the process's instance; this is all a lower layer may know of it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ApiSwitch"]


class ApiSwitch(Protocol):
    """Which (API base, app) pairs are served by the end-to-end-encrypted API only."""

    def is_e2ee(self, api_base: str, app_id: str) -> bool:
        """True once ``app_id`` at ``api_base`` is known to have no SSE."""
        ...

    def mark_e2ee(self, api_base: str, app_id: str) -> None:
        """Remember that ``app_id`` at ``api_base`` has no SSE."""
