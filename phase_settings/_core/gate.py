"""The request gate: the seam through which a process-wide rate budget sees every request.

The protocol core calls :meth:`RequestGate.before_request` before each attempt it sends to
Phase (retries included) and :meth:`RequestGate.rate_limited` after each 429. The default,
:data:`NO_GATE`, does nothing; a shared tier (the fleet's rate budget) implements its own. A gate
is told the method and URL only: never a header, a token or a body.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_GATE", "NoGate", "RequestGate"]


class RequestGate(Protocol):
    """Called before every request to Phase and told of every 429."""

    def before_request(self, method: str, url: str) -> None:
        """An attempt is about to be sent; raising a ``PhaseError`` refuses it."""

    def rate_limited(self, url: str, retry_after: float | None) -> None:
        """Phase answered 429 to a request to ``url`` (``retry_after``: its Retry-After, s)."""


class NoGate:
    """The default gate: lets every request through and ignores every 429."""

    def before_request(self, method: str, url: str) -> None:
        return None

    def rate_limited(self, url: str, retry_after: float | None) -> None:
        return None


NO_GATE: RequestGate = NoGate()
