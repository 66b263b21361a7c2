"""FakePhase against the Phase REST API contract, over real loopback HTTP with plain httpx.

The first part replays every recording of a real v2.73.2 server (``phase-api/recorded``):
each request is sent to a fake holding the same data and the answer is compared with the
recorded one (status, error text, header values and order, the fields of every item). The
rest pins the contract's rules that the recordings do not show.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from phase_settings.testing import FakePhase

APP_ID = "9b06adf9-22f2-40c3-9527-d224bb88bca0"
FIELDS = [
    "id",
    "key",
    "value",
    "comment",
    "tags",
    "override",
    "type",
    "lifecycle",
    "path",
    "keyDigest",
    "version",
    "createdAt",
    "updatedAt",
    "environment",
    "folder",
]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX64 = re.compile(r"[0-9a-f]{64}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")
ENV_CONTEXT = "Environment context required. Supply `app_id` and `env` as query parameters."
NOT_FOUND_HTML = (
    b'\n<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n'
    b"<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    b"</body>\n</html>\n"
)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for a pss token, as the client builds it."""
    prefix, version, value = token.split(":")[:3]
    kind = "ServiceAccount" if version == "v2" else "Service"
    if prefix == "pss_user":
        kind = "User"
    return {"Authorization": f"Bearer {kind} {value}"}


# --------------------------------------------------------------------------- recordings


def _recordings_dir() -> Path:
    # A copy of shared/phase-api/recorded, kept in the repository so that CI replays it.
    return Path(__file__).resolve().parents[1] / "data" / "phase-api" / "recorded"


RECORDINGS = _recordings_dir()
RECORDING_FILES = sorted(RECORDINGS.glob("*.txt"))


@dataclass
class Recording:
    name: str
    request_line: str
    request_headers: dict[str, str]
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def parse_recording(path: Path) -> Recording:
    text = path.read_text(encoding="utf-8")
    request_part, response_part = text.split("### response\n", 1)
    request_lines = request_part.split("### request\n", 1)[1].splitlines()
    request_headers = dict(line.split(": ", 1) for line in request_lines[1:] if ": " in line)
    head, _, rest = response_part.partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = [tuple(line.split(": ", 1)) for line in header_lines]
    recording = Recording(
        name=path.name,
        request_line=request_lines[0],
        request_headers=request_headers,
        status=int(status_line.split(" ")[1]),
        headers=[(k, v) for k, v in headers],
        body=b"",
    )
    declared = recording.header("Content-Length")
    raw = rest.encode("utf-8")
    recording.body = raw[: int(declared)] if declared else raw.rstrip(b"\n")
    return recording


@dataclass
class World:
    """The data the recordings were made with, in a serving fake."""

    fake: FakePhase
    url: str
    sa: str
    user: str
    e2ee_app: str


def build_world(fake: FakePhase) -> tuple[str, str, str]:
    fake.add_app("recorded", app_id=APP_ID)
    dev = [
        ("DB_HOST", "db.internal", "/", [], "database host", "secret"),
        ("DB_PORT", "5432", "/", [], "", "secret"),
        (
            "DATABASE_URL",
            "postgres://app:pw@${DB_HOST}:${DB_PORT}/appdb",
            "/",
            [],
            "local references",
            "secret",
        ),
        ("API_KEY", "sk_test_abc123", "/backend", ["backend"], "in a folder", "secret"),
        ("STRIPE_KEY", "sk_stripe_xyz", "/backend/payments", [], "", "secret"),
        ("API_KEY_COPY", "${/backend/API_KEY}", "/", [], "path reference", "secret"),
        ("FROM_STAGING", "${staging.SHARED_TOKEN}", "/", [], "cross-env reference", "secret"),
        ("BROKEN_REF", "x-${DOES_NOT_EXIST}-y", "/", [], "unresolvable reference", "secret"),
        ("APP_MODE", "debug", "/", [], "", "config"),
        ("MULTILINE", "line1\nline2 with spaces and = sign", "/", [], "", "secret"),
    ]
    for key, value, path, tags, comment, kind in dev:
        fake.set_secret(
            APP_ID, "development", key, value, path=path, tags=tags, comment=comment, type=kind
        )
    fake.set_secret(
        APP_ID, "staging", "SHARED_TOKEN", "staging-shared-123", comment="lives in staging"
    )
    e2ee = fake.add_app("e2ee", sse=False)
    fake.set_secret(e2ee, "development", "HIDDEN", "x")
    sa = fake.add_service_account(envs=("development", "staging"))
    user = fake.add_user()
    return sa, user, e2ee


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    fake = FakePhase()
    sa, user, e2ee = build_world(fake)
    with fake.serve() as url:
        yield World(fake, url, sa, user, e2ee)


def send(url: str, method: str, target: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=5, verify=False) as client:
        return client.request(method, target, headers=headers)


def assert_matches(recording: Recording, response: httpx.Response, fake: FakePhase) -> None:
    assert response.status_code == recording.status
    body = response.content
    assert response.headers["content-length"] == str(len(body))
    skip = {"server", "date", "connection", "content-length"}
    recorded = {k.lower(): v for k, v in recording.headers if k.lower() not in skip}
    for name, value in recorded.items():
        assert response.headers.get(name) == value, name
    complete = recording.header("Server") is not None  # 31 lists only some headers
    for name in ("allow", "www-authenticate", "retry-after"):
        if complete and name not in recorded:
            assert name not in response.headers, name
    actual_order = [k.decode().lower() for k, _ in response.headers.raw]
    assert [n for n in actual_order if n in recorded] == [n for n in recorded if n in actual_order]
    if not recording.body.startswith(b"["):
        assert body == recording.body
        if recording.header("Content-Length"):
            assert response.headers["content-length"] == recording.header("Content-Length")
        return
    expected = json.loads(recording.body)
    items = json.loads(body)
    assert len(items) == len(expected)
    for mine, theirs in zip(items, expected, strict=True):
        assert list(mine) == list(theirs) == FIELDS
        for name in ("key", "value", "comment", "tags", "override", "type", "lifecycle", "path"):
            assert mine[name] == theirs[name], (mine["key"], name)
        assert mine["version"] == theirs["version"]
        assert UUID.fullmatch(mine["id"])
        assert HEX64.fullmatch(mine["keyDigest"])
        assert TIMESTAMP.fullmatch(mine["createdAt"]) and TIMESTAMP.fullmatch(mine["updatedAt"])
        assert mine["environment"] in {
            fake.env_id(APP_ID, "development"),
            fake.env_id(APP_ID, "staging"),
        }
        assert (mine["folder"] is None) == (mine["path"] == "/")
        if mine["folder"] is not None:
            assert UUID.fullmatch(mine["folder"])


def replay_rate_limited(recording: Recording) -> tuple[httpx.Response, FakePhase]:
    clock = Clock()
    fake = FakePhase(clock=clock)
    sa, _, _ = build_world(fake)
    fake.rate_limit("5/minute")
    target = f"/v1/secrets/?app_id={APP_ID}&env=development"
    with fake.serve() as url, httpx.Client(base_url=url, timeout=5, verify=False) as client:
        statuses = [client.get(target, headers=bearer(sa)).status_code for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3
        last = client.get(target, headers=bearer(sa))
        if recording.name.startswith("31"):
            clock.now += 23.5
            last = client.get(target, headers=bearer(sa))
    return last, fake


def replay(recording: Recording, world: World) -> tuple[httpx.Response, FakePhase]:
    if recording.name.startswith(("30_", "31_")):
        return replay_rate_limited(recording)
    if recording.name.startswith("22_"):
        target = f"/v1/secrets/?app_id={world.e2ee_app}&env=development"
        return send(world.url, "GET", target, bearer(world.user)), world.fake
    method, target = recording.request_line.split(" ", 1)
    assert method in {"GET", "POST", "PUT", "DELETE"}, f"no replay for {recording.name}"
    headers = {}
    authorization = recording.request_headers.get("Authorization")
    if authorization is not None:
        if recording.name.startswith(("09_", "10_")):
            token = secrets.token_hex(32)  # a token the server does not know
        elif " User " in authorization:
            token = world.user.split(":")[2]
        else:
            token = world.sa.split(":")[2]
        headers["Authorization"] = authorization.replace("<token>", token)
    return send(world.url, method, target, headers), world.fake


@pytest.mark.parametrize("path", RECORDING_FILES, ids=[p.name for p in RECORDING_FILES])
def test_replays_recording(path: Path, world: World) -> None:
    recording = parse_recording(path)
    response, fake = replay(recording, world)
    assert_matches(recording, response, fake)


def test_every_recording_is_replayed() -> None:
    names = [p.name for p in RECORDING_FILES]
    assert len(names) >= 24
    assert "01_sa_ok.txt" in names and "31_rate_limited_later.txt" in names


def test_same_folder_gets_same_uuid(world: World) -> None:
    target = f"/v1/secrets/?app_id={APP_ID}&env=development"
    first = send(world.url, "GET", target, bearer(world.sa)).json()
    second = send(world.url, "GET", target + "&path=backend/", bearer(world.sa)).json()
    folder = next(item["folder"] for item in first if item["key"] == "API_KEY")
    assert [item["folder"] for item in second] == [folder]


# --------------------------------------------------------------------------- fixtures


@dataclass
class Setup:
    fake: FakePhase
    client: httpx.Client
    app: str
    sa: str
    user: str
    clock: Clock

    def get(
        self, token: str | None = None, *, env: str | None = "development", **params: str
    ) -> httpx.Response:
        query: dict[str, str] = {"app_id": self.app, **params}
        if env is not None:
            query["env"] = env
        headers = bearer(token) if token else {}
        return self.client.get("/v1/secrets/", params=query, headers=headers)

    def write(self, method: str, token: str, payload: Any, **params: str) -> httpx.Response:
        query = {"app_id": self.app, "env": "development", **params}
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.client.request(
            method, "/v1/secrets/", params=query, headers=bearer(token), content=content
        )


@pytest.fixture
def setup() -> Iterator[Setup]:
    clock = Clock()
    fake = FakePhase(clock=clock)
    app = fake.add_app("demo")
    sa = fake.add_service_account(envs=("development", "staging"))
    user = fake.add_user()
    with fake.serve() as url, httpx.Client(base_url=url, timeout=5, verify=False) as client:
        yield Setup(fake, client, app, sa, user, clock)


def error(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    text: str = response.json()["error"]
    return text


# --------------------------------------------------------------------------- routes


@pytest.mark.parametrize("prefix", ["", "/public", "/service/public", "/service"])
def test_api_is_mounted_under_every_prefix(setup: Setup, prefix: str) -> None:
    setup.fake.set_secret(setup.app, "development", "A", "1")
    response = setup.client.get(
        f"{prefix}/v1/secrets/",
        params={"app_id": setup.app, "env": "development"},
        headers=bearer(setup.sa),
    )
    assert response.status_code == 200
    assert [item["key"] for item in response.json()] == ["A"]
    root = setup.client.get(f"{prefix}/")
    assert root.status_code == 200 and root.json()["status"] == "ok"


@pytest.mark.parametrize("path", ["/health/", "/service/health/"])
def test_health_at_the_root_only(setup: Setup, path: str) -> None:
    response = setup.client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "alive", "version": "v2.73.2"}


@pytest.mark.parametrize(
    "path",
    ["/public/health/", "/v1/secrets", "/v1/apps", "/v1/environments", "/v2/secrets/", "/nope/"],
)
def test_unknown_routes_get_django_html_404(setup: Setup, path: str) -> None:
    response = setup.client.get(path, headers=bearer(setup.sa))
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == NOT_FOUND_HTML
    assert "allow" not in response.headers


def test_accept_without_json_is_406_before_authentication(setup: Setup) -> None:
    response = setup.client.get("/v1/secrets/", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert response.content == b'{"error":"Could not satisfy the request Accept header."}'
    for accept in ("application/json; q=0.5", "*/*", "application/*", "text/html, */*;q=0.1"):
        ok = setup.client.get(
            "/v1/secrets/", params={"app_id": setup.app, "env": "dev"}, headers={"Accept": accept}
        )
        assert ok.status_code == 401, accept


# --------------------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        ("Bearer ServiceAccount {t}", 200, None),
        ("bearer ServiceAccount {t}", 200, None),
        ("BEARER ServiceAccount {t}", 200, None),
        ("Bearer ServiceAccount {t} trailing parts", 200, None),
        ("Bearer  ServiceAccount {t}", 401, "Invalid token"),
        ("Bearer ServiceAccount  {t}", 401, "Invalid token"),
        ("Bearer serviceaccount {t}", 401, "Invalid token"),
        ("Token ServiceAccount {t}", 401, "Invalid token"),
        ("Bearer {t}", 401, "Invalid token"),
        ("Bearer {full}", 401, "Invalid token"),
        ("Bearer ServiceAccount {full}", 401, "Token expired or deleted"),
        ("Bearer User {t}", 401, "Token expired or deleted"),
        ("ServiceAccount {t}", 401, "Invalid token"),
    ],
)
def test_authorization_header_parsing(
    setup: Setup, header: str, status: int, message: str | None
) -> None:
    value = header.format(t=setup.sa.split(":")[2], full=setup.sa)
    response = setup.client.get(
        "/v1/secrets/",
        params={"app_id": setup.app, "env": "development"},
        headers={"Authorization": value},
    )
    assert response.status_code == status
    if message is not None:
        assert error(response) == message
        assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_token_is_expired_or_deleted(setup: Setup) -> None:
    assert setup.get(setup.sa).status_code == 200
    setup.fake.revoke(setup.sa)
    response = setup.get(setup.sa)
    assert response.status_code == 401
    assert error(response) == "Token expired or deleted"
    assert response.headers["www-authenticate"] == "Bearer"


def test_error_order(setup: Setup) -> None:
    # route, then Accept, then credentials, then the token, then the app and environment,
    # then access, then the method.
    assert setup.client.patch("/v1/secrets", headers={"Accept": "text/html"}).status_code == 404
    assert setup.client.get("/v1/secrets/", headers={"Accept": "text/html"}).status_code == 406
    unknown = {"Authorization": f"Bearer ServiceAccount {secrets.token_hex(32)}"}
    response = setup.client.get(
        "/v1/secrets/", params={"app_id": "nope", "env": "x"}, headers=unknown
    )
    assert error(response) == "Token expired or deleted"
    response = setup.client.get(
        "/v1/secrets/", params={"app_id": "nope", "env": "x"}, headers=bearer(setup.sa)
    )
    assert (response.status_code, error(response)) == (404, "App with ID nope not found")
    response = setup.client.patch(
        "/v1/secrets/", params={"app_id": setup.app, "env": "production"}, headers=bearer(setup.sa)
    )
    assert response.status_code == 401
    response = setup.client.patch(
        "/v1/secrets/", params={"app_id": setup.app, "env": "development"}, headers=bearer(setup.sa)
    )
    assert (response.status_code, error(response)) == (403, "Unsupported HTTP method: PATCH")
    assert "www-authenticate" not in response.headers
    response = setup.client.patch("/v1/secrets/", params={"app_id": setup.app})
    assert response.status_code == 401


def test_other_methods_on_secrets_are_403(setup: Setup) -> None:
    for method in ("PATCH", "HEAD", "OPTIONS"):
        response = setup.client.request(
            method,
            "/v1/secrets/",
            params={"app_id": setup.app, "env": "development"},
            headers=bearer(setup.sa),
        )
        assert response.status_code == 403, method
        if method != "HEAD":
            assert error(response) == f"Unsupported HTTP method: {method}"


# --------------------------------------------------------------------------- environment context


def test_environment_names_match_case_insensitively_only_exactly(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "Development", "A", "1")
    for name in ("development", "DEVELOPMENT", "dEvElOpMeNt"):
        assert [item["key"] for item in setup.get(setup.sa, env=name).json()] == ["A"]
    response = setup.get(setup.sa, env="dev")
    assert response.status_code == 404
    assert error(response) == f"Environment 'dev' not found in App {setup.app}"


@pytest.mark.parametrize(
    "params",
    [{}, {"env": "development"}, {"app_id": "X"}, {"app_id": "X", "env": ""}],
)
def test_missing_context_is_403(setup: Setup, params: dict[str, str]) -> None:
    params = {k: setup.app if v == "X" else v for k, v in params.items()}
    response = setup.client.get("/v1/secrets/", params=params, headers=bearer(setup.sa))
    assert (response.status_code, error(response)) == (403, ENV_CONTEXT)


def test_camel_case_parameter_names_are_converted(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "development", "A", "1")
    setup.fake.set_secret(setup.app, "development", "B", "2", path="/other")
    response = setup.client.get(
        "/v1/secrets/", params={"appId": setup.app, "ENV": "development"}, headers=bearer(setup.sa)
    )
    assert [item["key"] for item in response.json()] == ["A", "B"]
    # "Path" becomes "_path", which the view ignores: every folder comes back.
    assert len(setup.get(setup.sa, Path="/other").json()) == 2
    assert len(setup.get(setup.sa, path="/other").json()) == 1


def test_environment_header_and_secret_id(setup: Setup) -> None:
    secret_id = setup.fake.set_secret(setup.app, "staging", "S", "1")
    setup.fake.set_secret(setup.app, "staging", "T", "2")
    env_id = setup.fake.env_id(setup.app, "staging")
    by_header = setup.client.get(
        "/v1/secrets/", headers={**bearer(setup.sa), "Environment": env_id}
    )
    assert [item["key"] for item in by_header.json()] == ["S", "T"]
    by_id = setup.client.get(
        "/v1/secrets/", params={"secret_id": secret_id}, headers=bearer(setup.sa)
    )
    assert [item["key"] for item in by_id.json()] == ["S", "T"]
    by_id_header = setup.client.get(
        "/v1/secrets/", headers={**bearer(setup.sa), "Secret-Id": secret_id}
    )
    assert by_id_header.status_code == 200
    unknown_env = setup.client.get(
        "/v1/secrets/", headers={**bearer(setup.sa), "Environment": str(uuid.uuid4())}
    )
    assert (unknown_env.status_code, error(unknown_env)) == (401, "Environment not found")
    assert unknown_env.headers["www-authenticate"] == "Bearer"
    unknown_secret = setup.client.get(
        "/v1/secrets/", params={"secret_id": str(uuid.uuid4())}, headers=bearer(setup.sa)
    )
    assert (unknown_secret.status_code, error(unknown_secret)) == (404, "Secret not found")


def test_account_access_errors(setup: Setup) -> None:
    limited_user = setup.fake.add_user(envs=("development",))
    response = setup.get(limited_user, env="production")
    assert (response.status_code, error(response)) == (403, "User cannot access this environment")
    assert "www-authenticate" not in response.headers
    other_app = setup.fake.add_app("other")
    scoped = setup.fake.add_service_account(envs=None, apps=(other_app,))
    response = setup.get(scoped)
    assert response.status_code == 401
    assert error(response) == "Service account cannot access this environment"
    assert (
        setup.client.get(
            "/v1/secrets/",
            params={"app_id": other_app, "env": "production"},
            headers=bearer(scoped),
        ).status_code
        == 200
    )


def test_legacy_service_tokens(setup: Setup) -> None:
    token = setup.fake.add_service_token(setup.app, envs=("development",))
    assert token.startswith("pss_service:v1:")
    assert setup.get(token).status_code == 200
    assert error(setup.get(token, env="staging")) == "Service token cannot access this environment"
    other = setup.fake.add_app("other")
    response = setup.client.get(
        "/v1/secrets/", params={"app_id": other, "env": "development"}, headers=bearer(token)
    )
    assert response.status_code == 401
    apps = setup.client.get("/v1/apps/", headers=bearer(token))
    assert (apps.status_code, error(apps)) == (401, "Service tokens require an environment context")
    no_context = setup.client.get("/v1/secrets/", headers=bearer(token))
    assert error(no_context) == "Service tokens require an environment context"


def test_sse_disabled(setup: Setup) -> None:
    setup.fake.set_sse(setup.app, False)
    response = setup.get(setup.sa)
    assert response.content == b'{"error":"SSE is not enabled for this App"}'
    assert response.status_code == 400
    detail = setup.client.get(f"/v1/apps/{setup.app}/", headers=bearer(setup.sa))
    assert (detail.status_code, error(detail)) == (403, "SSE is not enabled for this App.")
    envs = setup.client.get(
        "/v1/environments/", params={"app_id": setup.app}, headers=bearer(setup.sa)
    )
    assert (envs.status_code, error(envs)) == (403, "SSE is not enabled for this App.")
    listed = setup.client.get("/v1/apps/", headers=bearer(setup.sa)).json()["data"]
    assert listed[0]["sseEnabled"] is False
    setup.fake.set_sse(setup.app, True)
    assert setup.get(setup.sa).status_code == 200


# --------------------------------------------------------------------------- GET filters


def test_get_filters(setup: Setup) -> None:
    fake, app = setup.fake, setup.app
    fake.set_secret(app, "development", "DB_HOST", "root", tags=["db", "core"])
    fake.set_secret(app, "development", "DB_HOST", "backend", path="/backend", tags=["db"])
    fake.set_secret(app, "development", "OTHER", "x", path="/backend/deep", tags=["Core"])

    def keys(**params: str) -> list[tuple[str, str]]:
        response = setup.get(setup.sa, **params)
        assert response.status_code == 200
        return [(item["key"], item["path"]) for item in response.json()]

    everything = [("DB_HOST", "/"), ("DB_HOST", "/backend"), ("OTHER", "/backend/deep")]
    assert keys() == everything
    assert keys(path="") == everything
    assert keys(path="/") == [("DB_HOST", "/")]
    for spelling in ("/backend", "backend/", "//backend//", "backend"):
        assert keys(path=spelling) == [("DB_HOST", "/backend")]
    assert keys(path="/nothing") == []
    assert keys(key="db_host") == [("DB_HOST", "/"), ("DB_HOST", "/backend")]
    assert keys(key="db_host", path="/backend") == [("DB_HOST", "/backend")]
    assert keys(key="NOPE") == []
    assert keys(tags="core") == [("DB_HOST", "/")]
    assert keys(tags="Core") == [("OTHER", "/backend/deep")]
    assert keys(tags="db") == [("DB_HOST", "/"), ("DB_HOST", "/backend")]
    # tags__in without .distinct(): a secret with two of the tags comes back twice.
    assert keys(tags="db,core") == [("DB_HOST", "/"), ("DB_HOST", "/"), ("DB_HOST", "/backend")]
    assert keys(tags="db, core") == [("DB_HOST", "/"), ("DB_HOST", "/backend")]
    assert keys(tags="unknown") == []


def test_dynamic_items_only_when_asked(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "development", "A", "1")
    setup.fake.add_dynamic_secret(setup.app, "development", "aws-creds")
    assert [i["key"] for i in setup.get(setup.sa).json()] == ["A"]
    assert len(setup.get(setup.sa, dynamic="false").json()) == 1
    for flag in ("dynamic", "include_dynamic"):
        items = setup.get(setup.sa, **{flag: "true"}).json()
        assert [item["type"] for item in items] == ["secret", "dynamic"]
        assert items[1]["name"] == "aws-creds" and items[1]["lease"] is None
        assert [entry["keyName"] for entry in items[1]["keyMap"]] == ["USERNAME", "PASSWORD"]
    response = setup.get(setup.sa, lease_ttl="soon")
    assert error(response) == "lease_ttl must be a valid integer (seconds)"
    clash = setup.write("POST", setup.sa, {"secrets": [{"key": "username", "value": "x"}]})
    assert clash.status_code == 409


def test_overrides_only_for_user_tokens(setup: Setup) -> None:
    fake, app = setup.fake, setup.app
    fake.set_secret(app, "development", "DB_HOST", "shared")
    fake.set_secret(app, "development", "PORT", "5432")
    fake.set_override(setup.user, app, "development", "DB_HOST", "mine-${PORT}", active=True)
    mine = setup.get(setup.user).json()
    override = mine[0]["override"]
    assert list(override) == ["id", "value", "isActive", "createdAt", "updatedAt"]
    assert override["value"] == "mine-5432" and override["isActive"] is True
    assert mine[0]["value"] == "shared"
    assert mine[1]["override"] is None
    assert setup.get(setup.sa).json()[0]["override"] is None
    assert setup.get(setup.fake.add_user()).json()[0]["override"] is None
    fake.set_override(setup.user, app, "development", "DB_HOST", "off", active=False)
    assert setup.get(setup.user).json()[0]["override"]["isActive"] is False
    with pytest.raises(ValueError):
        fake.set_override(setup.sa, app, "development", "DB_HOST", "x")


# --------------------------------------------------------------------------- writes


def test_post_creates_and_returns_the_items(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "development", "HOST", "db")
    response = setup.write(
        "POST",
        setup.sa,
        {
            "secrets": [
                {"key": "url", "value": "pg://${HOST}", "comment": "c", "tags": ["a", "", 3]},
                {"key": "in_folder", "value": "", "path": "backend/", "type": "config", "id": "x"},
            ]
        },
    )
    assert response.status_code == 200
    items = response.json()
    assert [list(item) for item in items] == [FIELDS, FIELDS]
    assert [(i["key"], i["value"], i["path"], i["type"]) for i in items] == [
        ("URL", "pg://db", "/", "secret"),
        ("IN_FOLDER", "", "/backend", "config"),
    ]
    assert items[0]["tags"] == ["a"] and items[0]["comment"] == "c"
    assert items[1]["id"] != "x" and items[1]["version"] == 1
    assert items[0]["createdAt"] == items[0]["updatedAt"]
    stored = setup.fake.get_secret(setup.app, "development", "url")
    assert stored is not None and stored["value"] == "pg://${HOST}"


def test_post_duplicate_is_409_with_spaced_json(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "development", "A", "1", path="/x")
    response = setup.write("POST", setup.sa, {"secrets": [{"key": "a", "value": "2", "path": "x"}]})
    assert response.status_code == 409
    assert response.content == b'{"error": "Duplicate secret found"}'
    same_key_elsewhere = setup.write("POST", setup.sa, {"secrets": [{"key": "a", "value": "2"}]})
    assert same_key_elsewhere.status_code == 200
    # Duplicates within one request are not checked against each other.
    twice = setup.write(
        "POST", setup.sa, {"secrets": [{"key": "b", "value": "1"}, {"key": "B", "value": "2"}]}
    )
    assert twice.status_code == 200 and len(twice.json()) == 2


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "Request body is required."),
        (b"{nope", "Request body must be valid JSON."),
        (b"\xff\xfe", "Request body must be valid JSON."),
        (b"[]", "Request body must be a JSON object."),
        ({}, "'secrets' must be a non-empty list."),
        ({"secrets": []}, "'secrets' must be a non-empty list."),
        ({"secrets": {"key": "A"}}, "'secrets' must be a non-empty list."),
        ({"secrets": ["A"]}, "Each entry in 'secrets' must be an object."),
        ({"secrets": [{"value": "1"}]}, "Each secret requires a non-empty 'key'."),
        ({"secrets": [{"key": "", "value": "1"}]}, "Each secret requires a non-empty 'key'."),
        ({"secrets": [{"key": "A"}]}, "Each secret requires a 'value' string."),
        ({"secrets": [{"key": "A", "value": 1}]}, "Each secret requires a 'value' string."),
        (
            {"secrets": [{"key": "A", "value": "1", "type": "x"}]},
            "Invalid 'type': 'x'. Must be one of ['config', 'sealed', 'secret'].",
        ),
        (
            {"secrets": [{"key": "A", "value": "1", "override": "x"}]},
            "'override' must be a JSON object.",
        ),
        (
            {"secrets": [{"key": "A", "value": "1", "override": {"value": 1}}]},
            "'override.value' must be a string.",
        ),
        (
            {"secrets": [{"key": "A", "value": "1", "override": {"value": "v", "isActive": "y"}}]},
            "'override.isActive' must be a boolean.",
        ),
        (
            {"secrets": [{"key": "A", "value": "1", "tags": ["t" * 65]}]},
            f"Tag name exceeds 64 characters: '{'t' * 32}'…",
        ),
    ],
)
def test_post_validation(setup: Setup, payload: Any, message: str) -> None:
    response = setup.write("POST", setup.sa, payload)
    assert (response.status_code, error(response)) == (400, message)


def test_post_override_applies_to_user_tokens_only(setup: Setup) -> None:
    entry = {"key": "A", "value": "shared", "override": {"value": "mine", "isActive": True}}
    by_user = setup.write("POST", setup.user, {"secrets": [entry]}).json()
    assert by_user[0]["override"]["value"] == "mine"
    by_sa = setup.write("POST", setup.sa, {"secrets": [{**entry, "key": "B"}]}).json()
    assert by_sa[0]["override"] is None
    listed = setup.get(setup.user).json()
    assert [item["override"] is not None for item in listed] == [True, False]


def test_put_updates(setup: Setup) -> None:
    secret_id = setup.fake.set_secret(setup.app, "development", "A", "1", tags=["t"])
    before = setup.fake.get_secret(setup.app, "development", "A")
    assert before is not None
    response = setup.write(
        "PUT",
        setup.sa,
        {"secrets": [{"id": secret_id, "value": "2", "path": "/moved", "tags": [], "key": "b"}]},
    )
    assert response.status_code == 200
    [item] = response.json()
    assert (item["key"], item["value"], item["path"], item["tags"], item["version"]) == (
        "B",
        "2",
        "/moved",
        [],
        2,
    )
    assert item["updatedAt"] >= before["updatedAt"] and item["folder"] is not None
    again = setup.write("PUT", setup.sa, {"secrets": [{"id": secret_id, "comment": "c"}]})
    assert again.json()[0]["version"] == 3 and again.json()[0]["value"] == "2"


def test_put_errors(setup: Setup) -> None:
    a = setup.fake.set_secret(setup.app, "development", "A", "1")
    setup.fake.set_secret(setup.app, "development", "B", "1")
    sealed = setup.fake.set_secret(setup.app, "development", "S", "secret", type="sealed")
    missing = setup.write("PUT", setup.sa, {"secrets": [{"value": "x"}]})
    assert (missing.status_code, error(missing)) == (400, "Secret ID not provided")
    unknown = str(uuid.uuid4())
    not_found = setup.write("PUT", setup.sa, {"secrets": [{"id": unknown, "value": "x"}]})
    assert (not_found.status_code, error(not_found)) == (404, f"Secret not found: {unknown}")
    dup = setup.write("PUT", setup.sa, {"secrets": [{"id": a, "key": "b"}]})
    assert dup.status_code == 409
    unseal = setup.write("PUT", setup.sa, {"secrets": [{"id": sealed, "type": "secret"}]})
    assert error(unseal) == (
        "Sealed secrets cannot be unsealed. Delete and recreate the secret instead."
    )
    kept = setup.write("PUT", setup.sa, {"secrets": [{"id": sealed, "value": "new"}]}).json()
    assert kept[0]["value"] == "secret" and kept[0]["version"] == 2


def test_delete(setup: Setup) -> None:
    ids = [setup.fake.set_secret(setup.app, "development", f"K{i}", "v") for i in range(4)]
    one = setup.write("DELETE", setup.sa, {"secrets": [ids[0]]})
    assert one.status_code == 200 and one.content == b'{"message":"Deleted 1 secret"}'
    unknown = str(uuid.uuid4())
    missing = setup.write("DELETE", setup.sa, {"secrets": [ids[1], unknown, "zz"]})
    assert missing.status_code == 404
    assert error(missing) == f"Secret(s) not found in this environment: {unknown}, zz"
    assert len(setup.get(setup.sa).json()) == 3  # the whole batch was refused
    three = setup.write("DELETE", setup.sa, {"secrets": ids[1:]})
    assert three.json() == {"message": "Deleted 3 secrets"}
    assert setup.get(setup.sa).json() == []
    empty = setup.write("DELETE", setup.sa, {"secrets": []})
    assert error(empty) == "'secrets' must be a non-empty list of secret IDs."


# --------------------------------------------------------------------------- apps, environments


def test_apps_and_environments(setup: Setup) -> None:
    newer = setup.fake.add_app("newer", environments=("Development", "QA"), description="d")
    response = setup.client.get("/v1/apps/", headers=bearer(setup.user))
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    apps = response.json()["data"]
    assert [app["id"] for app in apps] == [newer, setup.app]
    assert list(apps[0]) == ["id", "name", "description", "sseEnabled", "createdAt", "updatedAt"]
    assert apps[0]["description"] == "d" and apps[1]["description"] is None
    detail = setup.client.get(f"/v1/apps/{newer}/", headers=bearer(setup.user))
    assert detail.json() == apps[0]
    missing = setup.client.get(f"/v1/apps/{uuid.uuid4()}/", headers=bearer(setup.user))
    assert missing.status_code == 404
    envs = setup.client.get(
        "/v1/environments/", params={"app_id": setup.app}, headers=bearer(setup.user)
    ).json()["data"]
    assert [(e["name"], e["envType"], e["index"]) for e in envs] == [
        ("Development", "dev", 0),
        ("Staging", "staging", 1),
        ("Production", "prod", 2),
    ]
    assert list(envs[0]) == ["id", "name", "envType", "index", "createdAt", "updatedAt"]
    custom = setup.client.get(
        "/v1/environments/", params={"app_id": newer}, headers=bearer(setup.user)
    ).json()["data"]
    assert [e["envType"] for e in custom] == ["dev", "custom"]
    # A service account sees only the environments it can read.
    scoped = setup.client.get(
        "/v1/environments/", params={"app_id": setup.app}, headers=bearer(setup.sa)
    ).json()["data"]
    assert [e["name"] for e in scoped] == ["Development", "Staging"]
    no_app = setup.client.get("/v1/environments/", headers=bearer(setup.sa))
    assert (no_app.status_code, error(no_app)) == (403, "Could not resolve app from request.")
    post = setup.client.post("/v1/apps/", headers=bearer(setup.sa))
    assert (post.status_code, error(post)) == (405, 'Method "POST" not allowed.')
    hidden = setup.fake.add_service_account(envs=("production",), apps=(newer,))
    assert setup.client.get("/v1/apps/", headers=bearer(hidden)).json() == {"data": []}
    denied = setup.client.get(f"/v1/apps/{setup.app}/", headers=bearer(hidden))
    assert (denied.status_code, error(denied)) == (401, "Service account cannot access this app")


# --------------------------------------------------------------------------- throttle


def test_rate_limit_window(setup: Setup) -> None:
    setup.fake.rate_limit("3/m")
    assert [setup.get(setup.sa).status_code for _ in range(3)] == [200, 200, 200]
    refused = setup.get(setup.sa)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert error(refused) == "Request was throttled. Expected available in 60 seconds."
    # Apps and environments share the account's bucket; the user has a bucket of its own.
    assert setup.client.get("/v1/apps/", headers=bearer(setup.sa)).status_code == 429
    assert setup.get(setup.user).status_code == 200
    # 401s never consume budget, and refused requests are not counted.
    setup.clock.now += 59.5
    refused = setup.get(setup.sa)
    assert refused.headers["retry-after"] == "1"
    assert error(refused) == "Request was throttled. Expected available in 1 second."
    setup.clock.now += 0.5
    assert setup.get(setup.sa).status_code == 200
    setup.fake.rate_limit(None)
    assert all(setup.get(setup.sa).status_code == 200 for _ in range(5))


def test_rate_limit_after_authentication(setup: Setup) -> None:
    setup.fake.rate_limit("1/s")
    for _ in range(3):
        assert setup.get(None).status_code == 401
        assert setup.get(setup.sa, env="nope").status_code == 404
    assert setup.get(setup.sa).status_code == 200
    assert setup.get(setup.sa).status_code == 429
    assert setup.get(None).status_code == 401


def test_rate_decrease_gives_no_retry_after(setup: Setup) -> None:
    setup.fake.rate_limit("5/h")
    for _ in range(5):
        assert setup.get(setup.sa).status_code == 200
    setup.fake.rate_limit("2/hour")
    refused = setup.get(setup.sa)
    assert refused.status_code == 429
    assert error(refused) == "Request was throttled."
    assert "retry-after" not in refused.headers


def test_rate_limit_parsing() -> None:
    fake = FakePhase()
    for rate in ("5/s", "5/second", "5/minute", "5/min", "100/h", "1/day"):
        fake.rate_limit(rate)
    for bad in ("5", "5/5m", "x/m", "5/", "-1/m"):
        with pytest.raises(ValueError):
            fake.rate_limit(bad)


# --------------------------------------------------------------------------- legacy servers


def test_legacy_auth_mode() -> None:
    fake = FakePhase(legacy_auth=True)
    app = fake.add_app("demo")
    fake.set_secret(app, "development", "A", "1")
    ids = [fake.set_secret(app, "development", f"K{i}", "v") for i in range(2)]
    sa = fake.add_service_account()
    with fake.serve() as url, httpx.Client(base_url=url, timeout=5, verify=False) as client:
        params = {"app_id": app, "env": "development"}
        missing = client.get("/v1/secrets/", params=params)
        assert (missing.status_code, error(missing)) == (
            403,
            "Authentication credentials were not provided.",
        )
        assert "www-authenticate" not in missing.headers
        unknown_user = {"Authorization": f"Bearer User {secrets.token_hex(32)}"}
        gone = client.get("/v1/secrets/", params=params, headers=unknown_user)
        assert gone.status_code == 403
        malformed = client.get("/v1/secrets/", params=params, headers={"Authorization": "Bearer x"})
        assert malformed.status_code == 500
        assert malformed.headers["content-type"] == "text/html; charset=utf-8"
        no_app = client.get("/v1/secrets/", params={"env": "development"}, headers=bearer(sa))
        assert error(no_app) == "Missing app_id parameter"
        no_env = client.get("/v1/secrets/", params={"app_id": app}, headers=bearer(sa))
        assert error(no_env) == "Missing env parameter"
        denied = client.get("/v1/secrets/", params={**params, "env": "staging"}, headers=bearer(sa))
        assert denied.status_code == 403
        redirect = client.get("/v1/secrets", params=params, headers=bearer(sa))
        assert redirect.status_code == 301
        assert redirect.headers["location"] == f"/v1/secrets/?app_id={app}&env=development"
        assert client.get("/v1/apps/", headers=bearer(sa)).status_code == 404
        assert client.get("/v1/secrets/", params=params, headers=bearer(sa)).status_code == 200
        delete = client.request(
            "DELETE",
            "/v1/secrets/",
            params=params,
            headers=bearer(sa),
            content=json.dumps({"secrets": [ids[0]]}),
        )
        assert delete.json() == {"message": "Deleted 1 secrets"}
        unknown = client.request(
            "DELETE",
            "/v1/secrets/",
            params=params,
            headers=bearer(sa),
            content=json.dumps({"secrets": ["nope"]}),
        )
        assert (unknown.status_code, error(unknown)) == (404, "Secret does not exist")


# --------------------------------------------------------------------------- formats


def test_timestamps_have_microseconds_only_when_non_zero() -> None:
    from datetime import UTC, datetime

    from phase_settings.testing._fake import _iso

    assert _iso(datetime(2024, 6, 1, 12, tzinfo=UTC)) == "2024-06-01T12:00:00Z"
    stamp = datetime(2024, 2, 13, 13, 41, 45, 551255, tzinfo=UTC)
    assert _iso(stamp) == "2024-02-13T13:41:45.551255Z"


def test_unicode_values_are_utf8_json(setup: Setup) -> None:
    setup.fake.set_secret(setup.app, "development", "U", "żółw \u2028 ✓")
    response = setup.get(setup.sa)
    assert "żółw".encode() in response.content
    assert b"\\u2028" in response.content
    assert response.json()[0]["value"] == "żółw \u2028 ✓"
