"""The protocol core's neutral hooks: another API's status rules come with its requests, and a
failure arrives already classified; the core itself imports neither an API nor httpx."""

from __future__ import annotations

import subprocess
import sys

from phase_settings import PhaseConnectionError, PhaseError, PhaseResponseError, PhaseServerError
from phase_settings._client.options import ClientOptions
from phase_settings._core.deadline import Deadline
from phase_settings._core.failures import Failure, Kind
from phase_settings._core.protocol import Outcome, Protocol, ReplyRules, Send

TOKEN = "pss_service:v2:" + "a" * 64 + ":" + "b" * 64 + ":" + "c" * 64 + ":" + "d" * 64
CONSOLE = "https://console.example.com"


class Rules:
    """Another API's rules: every error status is a final server error."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str, float | None]] = []

    def error(
        self, status: int, body: bytes, *, method: str, retry_after: float | None
    ) -> tuple[PhaseError, bool]:
        self.seen.append((status, method, retry_after))
        return PhaseServerError(f"other API said {status}", status=status), False

    def host(self, url: str) -> str:
        return url.split("/service/", 1)[0]


def _core() -> Protocol:
    return Protocol(ClientOptions(token=TOKEN, host="https://phase.example.com"))


def _send(rules: ReplyRules | None) -> Send:
    url = f"{CONSOLE}/service/secrets/"
    return Send("POST", url, None, b"{}", {}, 1.0, Deadline(5), rules)


def test_a_request_with_rules_is_read_by_them() -> None:
    rules = Rules()
    outcome = _core().rules_reply(_send(rules), 503, b"", "7")
    assert isinstance(outcome.error, PhaseServerError) and not outcome.retryable
    assert rules.seen == [(503, "POST", 7.0)]


def test_a_2xx_without_a_body_is_an_empty_payload_and_a_redirect_follows_rest() -> None:
    core = _core()
    assert core.rules_reply(_send(Rules()), 204, b"") == Outcome(payload=None)
    redirect = core.rules_reply(_send(Rules()), 302, b"")
    assert isinstance(redirect.error, PhaseResponseError) and "redirect" in str(redirect.error)


def test_a_classified_failure_names_the_host_the_rules_give() -> None:
    core = _core()
    failure = Failure(Kind.CONNECTION, reached_server=False, timeout=True)
    outcome = core.failure(TimeoutError(), failure, Deadline(5), send=_send(Rules()))
    assert isinstance(outcome.error, PhaseConnectionError)
    assert CONSOLE in str(outcome.error) and not outcome.reached_server
    rest = core.failure(TimeoutError(), failure, Deadline(5), send=_send(None))
    assert "https://phase.example.com" in str(rest.error)


def test_the_core_imports_no_api_client_or_transport() -> None:
    code = (
        "import sys, phase_settings._core.protocol, phase_settings._core.api\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore', 'nacl')"
        " or m.split('.')[:2] in (['phase_settings', p] for p in"
        " ('_e2ee', '_rest', '_client', '_transport'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
