"""Reading the live E2EE recordings in ``tests/data/e2ee`` and a fake holding the same world.

Each ``.http`` file holds one raw exchange with a real Phase v2.73.2 server. The fake world has
the recordings' apps (same ids and names), the same kinds of principals with the same access,
and each recorded token or environment id is translated to the fake's before a request is
replayed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phase_settings.testing import FakePhase

DATA = Path(__file__).resolve().parent / "data" / "e2ee"
RECORDED = DATA / "recorded-e2ee"
APP_B = "c3ceeb59-41f0-4f3a-99a7-d1efc1c34932"  # E2EE only
APP_A = "ea0e8934-0dea-4193-96ce-ddbaa25044ea"  # SSE
RECORDED_ENVS = {
    "1ae79570-a36f-40a3-b0c3-cf03daf1e59a": (APP_B, "Development"),
    "b68ca60a-d877-4e2a-8a2f-58473a35dd73": (APP_B, "Staging"),
    "128f24b8-4182-4100-a024-523e4282304f": (APP_B, "Production"),
    "7cf0e6bc-6aec-491a-a984-7f52a1f1e6a2": (APP_A, "Development"),
    "89b512ae-0d73-4471-b8a4-836067887214": (APP_A, "Staging"),
    "d2b3e0ba-8b1d-4942-b710-fac0347a4726": (APP_A, "Production"),
}
# First 8 hex digits of each recorded bearer value -> principal (INDEX.md of the recordings).
# 8f431336 is the owner's PAT assembled from its raw keyring: the server sees the same member.
RECORDED_PRINCIPALS = {
    "f9fc44ad": "user",
    "8f431336": "user",
    "0956cc1a": "sa",
    "7cb0ce5b": "legacy",
    "c7e116ec": "appAsa",
    "896fdb0f": "noaccess",
}
IGNORED_HEADERS = {"server", "date", "connection"}


@dataclass
class Exchange:
    """One recorded request and the real server's response."""

    name: str
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.response_headers if k.lower() == name.lower()), None)

    def json(self) -> Any:
        return json.loads(self.response_body)


def _split_message(part: str) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, rest = part.partition("\n\n")
    first, *lines = head.splitlines()
    headers = [(k, v) for k, _, v in (line.partition(": ") for line in lines)]
    declared = next((v for k, v in headers if k.lower() == "content-length"), None)
    raw = rest.encode("utf-8")
    return first, headers, raw[: int(declared)] if declared is not None else b""


def load(relative: str) -> Exchange:
    """Parse ``recorded-e2ee/<relative>``."""
    text = (RECORDED / relative).read_text(encoding="utf-8")
    request_part, response_part = text.split("### RESPONSE\n", 1)
    request_part = request_part.split("### REQUEST\n", 1)[1]
    request_line, request_headers, request_body = _split_message(request_part)
    status_line, response_headers, response_body = _split_message(response_part)
    method, target, _ = request_line.split(" ")
    return Exchange(
        name=relative,
        method=method,
        target=target,
        headers=dict(request_headers),
        body=request_body,
        status=int(status_line.split(" ")[1]),
        response_headers=response_headers,
        response_body=response_body,
    )


@dataclass
class World:
    """A fake with the recordings' apps and principals."""

    fake: FakePhase = field(default_factory=FakePhase)
    tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fake = self.fake
        fake.add_app("phase-settings-e2ee-B", sse=False, app_id=APP_B)
        fake.add_app("phase-settings-real-A", app_id=APP_A)
        self.tokens = {
            "user": fake.add_user(),
            "sa": fake.add_service_account(envs=("development", "staging"), apps=(APP_B,)),
            "legacy": fake.add_service_token(APP_B, envs=("development",)),
            "appAsa": fake.add_service_account(envs=("development", "staging"), apps=(APP_A,)),
            "noaccess": fake.add_user(apps=()),
        }
        fake.set_secret(APP_B, "development", "DB_HOST", "b-db.internal")
        fake.set_secret(APP_B, "development", "API_KEY", "k", path="/backend", comment="note")
        fake.set_secret(APP_B, "staging", "SHARED_B", "staging-b")
        fake.set_secret(APP_A, "development", "DB_HOST", "db.internal")
        fake.set_secret(APP_A, "development", "DATABASE_URL", "postgres://${DB_HOST}/app")

    def bearer(self, principal: str) -> str:
        return self.tokens[principal].split(":")[2]

    def translate(self, text: str) -> str:
        """A recorded header value or target with the fake's tokens and environment ids."""
        for recorded_env, (app_id, name) in RECORDED_ENVS.items():
            text = text.replace(recorded_env, self.fake.env_id(app_id, name))
        words = text.split(" ")
        if len(words) == 3 and words[0] == "Bearer" and len(words[2]) == 64:
            principal = RECORDED_PRINCIPALS.get(words[2][:8])
            if principal is not None:
                words[2] = self.bearer(principal)
        return " ".join(words)

    def replay(
        self, exchange: Exchange, body: bytes | None = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the recorded request (or another body) to the fake; its status, headers, body."""
        headers = {
            name: self.translate(value)
            for name, value in exchange.headers.items()
            if name.lower() not in ("host", "content-length")
        }
        sent = exchange.body if body is None else body
        response = self.fake.handle(exchange.method, exchange.target, headers, sent)
        return response.status, list(response.headers.items()), response.body


def header_names(headers: list[tuple[str, str]]) -> list[str]:
    """Header names in order, without the ones gunicorn adds."""
    return [name for name, _ in headers if name.lower() not in IGNORED_HEADERS]


def same_shape(recorded: Any, actual: Any, where: str = "$") -> None:
    """Assert ``actual`` has the recorded JSON shape: same keys in the same order, same types."""
    if isinstance(recorded, dict):
        assert isinstance(actual, dict), where
        assert list(actual) == list(recorded), where
        for key in recorded:
            same_shape(recorded[key], actual[key], f"{where}.{key}")
    elif isinstance(recorded, list):
        assert isinstance(actual, list), where
        if recorded and actual:
            for item in actual:
                same_shape(recorded[0], item, f"{where}[]")
    elif recorded is not None:
        assert type(actual) is type(recorded), f"{where}: {type(actual)} vs {type(recorded)}"
