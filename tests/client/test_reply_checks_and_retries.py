"""Behaviours of the client that a one-line change could break unnoticed: the shape checks of a
REST secret, the retries of the idempotent writes (PUT, DELETE), and ``NO_PROXY``.

All against the loopback fake; the writes' waits are recorded, never slept.
"""

from __future__ import annotations

import json
import random
import socket

import pytest

from phase_settings import PhaseClient, PhaseResponseError

from ..conftest import Phase
from .conftest import pending_connections


def _reply(**secret: object) -> str:
    item = {"id": "1", "key": "K", "value": "v", "tags": [], "version": 1, **secret}
    return json.dumps([item])


@pytest.mark.parametrize(
    ("secret", "complaint"),
    [
        ({"tags": [1, "ok"]}, "'tags' is not a list of strings"),
        ({"tags": "prod"}, "'tags' is not a list of strings"),
        ({"tags": [None]}, "'tags' is not a list of strings"),
        ({"key": ""}, "a secret has no 'key' string"),
        ({"key": None}, "a secret has no 'key' string"),
    ],
)
def test_a_rest_secret_of_the_wrong_shape_is_a_response_error(
    phase: Phase, secret: dict[str, object], complaint: str
) -> None:
    phase.fake.fail_next(200, body=_reply(**secret))
    with PhaseClient(phase.token, phase.url) as client:
        with pytest.raises(PhaseResponseError) as info:
            client.list_secrets(phase.app_id, "development")
    assert complaint in str(info.value)


def test_a_rest_secret_with_string_tags_is_read(phase: Phase) -> None:
    phase.fake.fail_next(200, body=_reply(tags=["prod", "db"]))
    with PhaseClient(phase.token, phase.url) as client:
        [secret] = client.list_secrets(phase.app_id, "development")
    assert secret.tags == ("prod", "db")


def _existing(phase: Phase) -> str:
    phase.set("K", "old")
    with PhaseClient(phase.token, phase.url) as client:
        [secret] = client.list_secrets(phase.app_id, "development")
    phase.fake.clear_requests()
    return secret.id


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": None, "drop": True}])
def test_an_update_is_retried_after_a_5xx_or_a_dropped_connection(
    phase: Phase, fault: dict[str, object]
) -> None:
    """PUT is idempotent: sending it again after a 503, or after the server read it and hung
    up, cannot change the outcome, so ``set`` on an existing key survives a blip."""
    secret_id = _existing(phase)
    phase.fake.fail_next(**fault)  # type: ignore[arg-type]
    sleeps: list[float] = []
    with PhaseClient(phase.token, phase.url, sleep=sleeps.append, rng=random.Random(1)) as c:
        [updated] = c.update_secrets(
            phase.app_id, "development", [{"id": secret_id, "key": "K", "value": "new"}]
        )
    assert updated.value == "new"
    assert [r.method for r in phase.fake.requests] == ["PUT", "PUT"]
    assert len(sleeps) == 1


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": None, "drop": True}])
def test_a_delete_is_retried_after_a_5xx_or_a_dropped_connection(
    phase: Phase, fault: dict[str, object]
) -> None:
    secret_id = _existing(phase)
    phase.fake.fail_next(**fault)  # type: ignore[arg-type]
    sleeps: list[float] = []
    with PhaseClient(phase.token, phase.url, sleep=sleeps.append, rng=random.Random(1)) as c:
        c.delete_secrets(phase.app_id, "development", [secret_id])
        assert c.list_secrets(phase.app_id, "development") == []
    assert [r.method for r in phase.fake.requests] == ["DELETE", "DELETE", "GET"]
    assert len(sleeps) == 1


def test_a_self_hosted_phase_listed_in_no_proxy_is_reached_directly(
    phase: Phase,
    proxy_everything: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A corporate proxy for the internet, and the company's own Phase exempt from it: the
    exempt host is reached directly (through the proxy it would wait out the deadline)."""
    real_getaddrinfo = socket.getaddrinfo

    def corp_dns(host: object, *args: object, **kwargs: object) -> object:
        if host == "phase.corp.example":
            host = "127.0.0.1"
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", corp_dns)
    monkeypatch.setenv("NO_PROXY", "localhost,phase.corp.example")
    monkeypatch.delenv("no_proxy", raising=False)
    phase.set("K", "v")
    port = phase.url.rsplit(":", 1)[1].split("/")[0]
    url = f"http://phase.corp.example:{port}"
    with PhaseClient(phase.token, url, allow_http=True, deadline=2.0) as client:
        assert [s.key for s in client.list_secrets(phase.app_id, "development")] == ["K"]
    assert pending_connections(proxy_everything) == 0  # nothing ever connected to the proxy
