"""Dynamic secrets are skipped: a reply that mixes them with static secrets loads the static ones.

Phase lists dynamic secrets in the same array as static ones (when asked), with another shape
(``name``, ``keyMap``, ``lease``: no ``key`` nor ``value``). The fake serves exactly that reply
to a request with ``dynamic=true``; the test replays it to the library's own request.
"""

from __future__ import annotations

import httpx

from phase_settings import PhaseClient, PhaseSettings, PhaseSettingsConfigDict, load_status

from ..conftest import Phase
from ..fake.test_fake_behaviour import bearer


def reply_with_a_dynamic_secret(phase: Phase) -> bytes:
    """The fake's list reply holding ``DB_HOST`` and a dynamic secret (with its lease)."""
    phase.set("DB_HOST", "db")
    phase.fake.add_dynamic_secret(phase.app_id, "development", "aws-creds")
    response = httpx.get(
        f"{phase.url}/v1/secrets/",
        params={"app_id": phase.app_id, "env": "development", "dynamic": "true", "lease": "true"},
        headers=bearer(phase.token),
        trust_env=False,
    )
    items = response.json()
    assert [item["type"] for item in items] == ["secret", "dynamic"]
    phase.fake.clear_requests()
    return response.content


def test_a_load_skips_dynamic_secrets(phase: Phase) -> None:
    body = reply_with_a_dynamic_secret(phase)
    phase.fake.fail_next(200, body=body)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        db_host: str = "unset"

    assert Settings().db_host == "db"
    assert load_status(Settings).source == "phase"
    assert phase.gets() == 1


def test_list_secrets_skips_dynamic_secrets(phase: Phase) -> None:
    body = reply_with_a_dynamic_secret(phase)
    phase.fake.fail_next(200, body=body)
    with PhaseClient(phase.token, phase.url) as client:
        secrets = client.list_secrets(phase.app_id, "development")
    assert [(s.key, s.value) for s in secrets] == [("DB_HOST", "db")]
