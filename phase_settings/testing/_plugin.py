"""pytest plugin (registered through the ``pytest11`` entry point): the ``fake_phase`` fixture.

Every pytest run of every project that installs phase-settings imports this module, so it
imports nothing but pytest: the fake server, httpx, pydantic and pydantic-settings load only
when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._fake import FakePhase


@pytest.fixture
def fake_phase() -> Iterator[FakePhase]:
    """A :class:`~phase_settings.testing.FakePhase` serving real HTTP on 127.0.0.1.

    The server runs for the duration of one test; ``fake_phase.url`` is its root URL, so
    ``PHASE_HOST=fake_phase.url`` points a client at it.

    Yields:
        The serving fake, empty: add apps, secrets and tokens in the test. The test errors
        at teardown if the fake itself raised while answering a request.
    """
    from ._fake import FakePhase  # here, not at import: see the module's docstring

    fake = FakePhase()
    with fake.serve():
        yield fake
    if fake.server_errors:
        pytest.fail("FakePhase raised while serving:\n" + fake.server_errors[0], pytrace=False)
