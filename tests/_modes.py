"""Run a test module in both API modes against the same fake, which serves an SSE app over REST
and over the end-to-end-encrypted API: import :func:`phase_mode` into the module."""

from __future__ import annotations

import pytest

# Requests of one load of one folder: REST asks once; the end-to-end-encrypted API asks for the
# token's keys, then for the folder.
REQUESTS_PER_LOAD = {"sse": 1, "e2ee": 2}


@pytest.fixture(autouse=True, params=["sse", "e2ee"])
def phase_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The mode of every load in the test (``PHASE_MODE``), REST and then E2EE."""
    monkeypatch.setenv("PHASE_MODE", str(request.param))
    return str(request.param)
