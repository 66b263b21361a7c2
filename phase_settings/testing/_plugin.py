"""pytest plugin (registered through the ``pytest11`` entry point): the ``fake_phase`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    fake = FakePhase()
    with fake.serve():
        yield fake
    if fake.server_errors:
        pytest.fail("FakePhase raised while serving:\n" + fake.server_errors[0], pytrace=False)
