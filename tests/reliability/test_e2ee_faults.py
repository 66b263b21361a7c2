"""T18: faults of the end-to-end-encrypted API, each through the sync client and the async one
(asyncio and trio) against the loopback fake: a flipped byte in a stored ciphertext, wrong key
parts, a tokens reply without the app or the environment, 429 and a slow tokens endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from phase_settings import (
    AsyncPhaseClient,
    PhaseAuthError,
    PhaseClient,
    PhaseConnectionError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseResponseError,
    Secret,
)
from phase_settings._client.switch import PROCESS_SWITCH
from phase_settings.testing import FakePhase

VALUE = "s3cret-value-canary"


@pytest.fixture(autouse=True)
def _fresh_switches() -> Iterator[None]:
    PROCESS_SWITCH.reset()
    yield
    PROCESS_SWITCH.reset()


@dataclass
class Sealed:
    fake: FakePhase
    url: str
    app_id: str
    token: str
    kind: str  # "sync", "asyncio" or "trio"

    def list(self, token: str | None = None, **options: Any) -> list[Secret]:
        """``list_secrets`` of the app's development root in e2ee mode, through ``kind``."""
        token = token or self.token
        options.setdefault("mode", "e2ee")
        if self.kind == "sync":
            with PhaseClient(token, self.url, **options) as client:
                return client.list_secrets(self.app_id, "development")

        async def run() -> list[Secret]:
            async with AsyncPhaseClient(token, self.url, **options) as client:
                return await client.list_secrets(self.app_id, "development")

        result: list[Secret] = anyio.run(run, backend=self.kind)
        return result


@pytest.fixture(params=["sync", "asyncio", "trio"])
def sealed(request: pytest.FixtureRequest) -> Iterator[Sealed]:
    fake = FakePhase()
    app_id = fake.add_app("x", sse=False)
    fake.set_secret(app_id, "development", "API_KEY", VALUE)
    fake.set_secret(app_id, "development", "OTHER", "fine")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield Sealed(fake, url, app_id, token, str(request.param))


def _flip(ciphertext: str) -> str:
    """One byte of the ``ph:v1:<pub>:<b64>`` ciphertext changed."""
    import base64

    head, _, body = ciphertext.rpartition(":")
    raw = bytearray(base64.b64decode(body))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}:{base64.b64encode(bytes(raw)).decode()}"


def test_a_flipped_byte_names_the_key_never_the_value(sealed: Sealed) -> None:
    # What the server serves for the environment, with one byte of one value flipped.
    env_id = sealed.fake.env_id(sealed.app_id, "development")
    header = {"Authorization": f"Bearer ServiceAccount {sealed.token.split(':')[2]}"}
    served = httpx.get(
        sealed.url + "/service/secrets/", headers={**header, "Environment": env_id, "Path": "/"}
    ).json()
    target = next(i for i, item in enumerate(served) if item["value"] != "")
    for item in served:
        if item is served[target]:
            item["value"] = _flip(item["value"])
    sealed.fake.fail_next(None, delay=0.001)  # the tokens request answers normally
    sealed.fake.fail_next(200, body=json.dumps(served))
    with pytest.raises(PhaseResponseError) as info:
        sealed.list()
    message = str(info.value)
    assert "does not decrypt" in message
    assert ("API_KEY" in message) or ("OTHER" in message)
    assert VALUE not in message and VALUE not in repr(info.value)
    assert sealed.list()  # the next read, unaltered, works


def test_wrong_key_parts_are_an_auth_error_that_says_so(sealed: Sealed) -> None:
    parts = sealed.token.split(":")
    parts[5] = ("0" if parts[5][0] != "0" else "1") + parts[5][1:]  # another wrap key
    with pytest.raises(PhaseAuthError, match="key parts do not open the key share"):
        sealed.list(":".join(parts))
    parts = sealed.token.split(":")
    parts[4] = ("0" if parts[4][0] != "0" else "1") + parts[4][1:]  # another first share
    with pytest.raises(PhaseAuthError, match="key parts"):
        sealed.list(":".join(parts))


def test_a_tokens_reply_without_the_app_lists_what_the_token_can_read(sealed: Sealed) -> None:
    other = sealed.fake.add_app("elsewhere", sse=False)
    token = sealed.fake.add_service_account(envs=None, apps=(other,))
    with pytest.raises(PhaseNotFoundError) as info:
        sealed.list(token)
    assert sealed.app_id in str(info.value) and f"elsewhere ({other})" in str(info.value)


def test_an_account_without_the_environment_lists_those_it_can_read(sealed: Sealed) -> None:
    token = sealed.fake.add_service_account(envs=("staging", "production"))
    with pytest.raises(PhaseNotFoundError) as info:
        sealed.list(token)
    assert "'development'" in str(info.value)
    assert "environments it can read: Staging, Production" in str(info.value)


def test_429_on_the_tokens_endpoint_waits_retry_after_within_the_deadline(sealed: Sealed) -> None:
    sealed.fake.fail_next(429, headers={"Retry-After": "1"})
    started = time.monotonic()
    assert {s.key: s.value for s in sealed.list(deadline=10)}["API_KEY"] == VALUE
    assert 1.0 <= time.monotonic() - started < 9
    assert [r.path for r in sealed.fake.requests].count("/service/secrets/tokens/") == 2


def test_429_beyond_the_deadline_is_a_rate_limit_error_at_once(sealed: Sealed) -> None:
    sealed.fake.fail_next(429, headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(PhaseRateLimitError) as info:
        sealed.list(deadline=3)
    assert time.monotonic() - started < 2.5  # no wait started that the deadline cannot hold
    assert info.value.retry_after == 30 and "per client IP" in str(info.value)


@pytest.mark.parametrize("delay", [0.3, 3.0])
def test_a_slow_tokens_endpoint_is_decided_within_the_deadline(
    sealed: Sealed, delay: float
) -> None:
    deadline = 1.5
    sealed.fake.fail_next(None, delay=delay)
    started = time.monotonic()
    outcome: list[Secret] | PhaseConnectionError
    try:
        outcome = sealed.list(deadline=deadline, timeout=10)
    except PhaseConnectionError as error:
        outcome = error
    assert time.monotonic() - started < deadline + 0.5
    if delay < deadline:
        assert isinstance(outcome, list) and {s.key for s in outcome} == {"API_KEY", "OTHER"}
    else:
        assert isinstance(outcome, PhaseConnectionError)
        assert "deadline" in str(outcome) or "timed out" in str(outcome)
