"""The request gate seam (DESIGN §10): called before every request to Phase, told of every 429."""

from __future__ import annotations

import random

import httpx
import pytest

from phase_settings import AsyncPhaseClient, PhaseClient, PhaseRateLimitError
from phase_settings._client.options import ClientOptions
from phase_settings._core.gate import NO_GATE, RequestGate
from phase_settings.testing import FakePhase
from tests._seams import VirtualTime

TOKEN = "pss_service:v2:" + "a" * 64 + ":" + "b" * 64 + ":" + "c" * 64 + ":" + "d" * 64
HOST = "https://phase.example.com"


class CountingGate:
    """A gate that records what it is told."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.limited: list[tuple[str, float | None]] = []

    def before_request(self, method: str, url: str) -> None:
        self.requests.append((method, url))

    def rate_limited(self, url: str, retry_after: float | None) -> None:
        self.limited.append((url, retry_after))


def _gate_type_check(gate: CountingGate) -> RequestGate:
    return gate  # mypy: the counting gate is a RequestGate


def _replies(*statuses: int) -> httpx.MockTransport:
    answers = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = answers.pop(0)
        if status == 429:
            return httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "slow down"})
        return httpx.Response(status, json=[] if status == 200 else {"error": "x"})

    return httpx.MockTransport(handler)


def test_the_default_gate_does_nothing() -> None:
    NO_GATE.before_request("GET", HOST)
    NO_GATE.rate_limited(HOST, None)
    client = PhaseClient.from_options(ClientOptions(token=TOKEN, host=HOST, mode="sse"))
    assert client._core.gate is NO_GATE


def test_one_call_per_attempt_and_one_report_per_429() -> None:
    gate = CountingGate()
    time_ = VirtualTime()
    options = ClientOptions(token=TOKEN, host=HOST, mode="sse")
    client = PhaseClient.from_options(
        options,
        transport=_replies(429, 429, 200),
        clock=time_.clock,
        sleep=time_.sleep,
        rng=random.Random(0),
        gate=_gate_type_check(gate),
    )
    with client:
        assert client.list_secrets("app", "development") == []
    assert len(gate.requests) == 3
    assert {method for method, _ in gate.requests} == {"GET"}
    assert all(url == f"{options.base_url}/v1/secrets/" for _, url in gate.requests)
    assert gate.limited == [(f"{options.base_url}/v1/secrets/", 1.0)] * 2
    assert all("pss_" not in repr(call) for call in gate.requests + gate.limited)


@pytest.mark.anyio
async def test_the_async_client_calls_the_gate_the_same_way() -> None:
    gate = CountingGate()

    async def no_wait(seconds: float) -> None:
        return None

    options = ClientOptions(token=TOKEN, host=HOST, mode="sse")
    async with AsyncPhaseClient.from_options(
        options, transport=_replies(429, 200), sleep=no_wait, gate=gate
    ) as client:
        assert await client.list_secrets("app", "development") == []
    assert len(gate.requests) == 2 and len(gate.limited) == 1


def test_the_gate_sees_every_request_against_the_fakes_rate_limit() -> None:
    """Against the fake's per-account throttle: every request the server received passed the
    gate once, and every one it refused with 429 was reported once."""
    fake = FakePhase()
    app = fake.add_app("demo")
    token = fake.add_service_account(envs=None)
    fake.rate_limit("2/minute")
    gate = CountingGate()
    time_ = VirtualTime()
    with fake.serve() as url:
        options = ClientOptions(token=token, host=url, allow_http=True)
        client = PhaseClient.from_options(
            options, clock=time_.clock, sleep=time_.sleep, rng=random.Random(0), gate=gate
        )
        with client:
            client.list_secrets(app, "development")
            client.list_secrets(app, "development")
            with pytest.raises(PhaseRateLimitError):
                client.list_secrets(app, "development")
    served = len(fake.requests)
    assert served >= 3
    assert len(gate.requests) == served
    assert len(gate.limited) == served - 2  # the window holds two: every later one was refused
