"""A 5xx is a server error whatever its body: retried with backoff, and a reason to fall back
during an outage. A proxy in front of Phase that answers 502/503 with a body it mislabels
(``Content-Encoding: gzip`` on plain text) must not turn an outage into a "wrong host" error
that is never retried and never falls back.
"""

from __future__ import annotations

from typing import Any

import pytest

from phase_settings import PhaseServerError, PhaseSettings, PhaseSettingsConfigDict, load_status

from .._seams import client_with_virtual_time
from ..conftest import Phase

UNREADABLE = {"Content-Encoding": "gzip", "Connection": "close"}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_with_an_undecodable_body_is_retried(phase: Phase, status: int) -> None:
    phase.set("DB_HOST", "db")
    phase.fake.fail_next(status, headers=UNREADABLE, body=b"<html>Bad Gateway</html>")
    client, time_ = client_with_virtual_time(phase.token, phase.url, deadline=100, max_attempts=2)
    with client:
        secrets = client.list_secrets(phase.app_id, "development")
    assert [s.value for s in secrets] == ["db"]
    assert len(time_.sleeps) == 1


def test_a_5xx_with_an_undecodable_body_is_a_server_error(phase: Phase) -> None:
    phase.fake.fail_next(503, headers=UNREADABLE, body=b"<html>Service Unavailable</html>")
    client, _ = client_with_virtual_time(phase.token, phase.url, deadline=100, max_attempts=1)
    with client, pytest.raises(PhaseServerError) as caught:
        client.list_secrets(phase.app_id, "development")
    assert caught.value.status == 503


def test_settings_fall_back_to_last_good_values_on_such_a_5xx(phase: Phase) -> None:
    phase.set("DB_HOST", "db")
    config: dict[str, Any] = phase.config(phase_cache_ttl=0, phase_max_attempts=1)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**config)  # type: ignore[typeddict-item]
        db_host: str

    assert Settings().db_host == "db"
    phase.fake.fail_next(502, headers=UNREADABLE, body=b"<html>Bad Gateway</html>")
    assert Settings().db_host == "db"
    assert load_status(Settings).source == "stale"
