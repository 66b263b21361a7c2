"""FakePhase as a test tool: fault injection, the request log, serving, seeding, state helpers."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import FrozenInstanceError

import httpx
import pytest

import phase_settings.testing as testing
from phase_settings.testing import FakePhase, FakeResponse, RecordedRequest

TOKEN_FORMS = {
    "ServiceAccount": re.compile(r"pss_service:v2(:[0-9a-f]{64}){4}"),
    "Service": re.compile(r"pss_service:v1(:[0-9a-f]{64}){4}"),
    "User": re.compile(r"pss_user:v1(:[0-9a-f]{64}){4}"),
}


def bearer(token: str) -> dict[str, str]:
    prefix, version, value = token.split(":")[:3]
    kind = "ServiceAccount" if version == "v2" else "Service"
    if prefix == "pss_user":
        kind = "User"
    return {"Authorization": f"Bearer {kind} {value}"}


class World:
    def __init__(self) -> None:
        self.fake = FakePhase()
        self.app = self.fake.add_app("demo")
        self.fake.set_secret(self.app, "development", "DB_HOST", "db")
        self.sa = self.fake.add_service_account()
        self.target = f"/v1/secrets/?app_id={self.app}&env=development"


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def served(world: World) -> Iterator[tuple[World, httpx.Client]]:
    with (
        world.fake.serve() as url,
        httpx.Client(base_url=url, timeout=5, verify=False) as client,
    ):
        yield world, client


# --------------------------------------------------------------------------- public names


def test_public_names() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    assert set(testing.__all__) == {
        "FakePhase",
        "FakeResponse",
        "RecordedRequest",
        "normalize_path",
    }
    assert testing.normalize_path("//backend/") == "/backend"
    assert testing.normalize_path("/") == "/"


def test_fixture_from_the_plugin_serves(fake_phase: FakePhase) -> None:
    app = fake_phase.add_app("fixture")
    fake_phase.set_secret(app, "development", "A", "1")
    token = fake_phase.add_user()
    with httpx.Client(base_url=fake_phase.url, verify=False) as client:
        response = client.get(
            "/service/public/v1/secrets/",
            params={"app_id": app, "env": "development"},
            headers=bearer(token),
        )
    assert [item["value"] for item in response.json()] == ["1"]


# --------------------------------------------------------------------------- faults over HTTP


def test_fail_next_status_then_normal(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(503, times=2)
    first = client.get(world.target, headers=bearer(world.sa))
    assert first.status_code == 503
    assert first.json() == {"error": "Service Unavailable"}
    assert first.headers["content-type"] == "application/json"
    assert client.get("/health/").status_code == 503  # any route
    assert client.get(world.target, headers=bearer(world.sa)).status_code == 200
    assert len(world.fake.requests) == 3


def test_fail_next_custom_response_and_queue(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(429, headers={"Retry-After": "7"}, body="slow down")
    world.fake.fail_next(500)
    world.fake.fail_next(200, headers={"Content-Type": "text/html"}, body=b"<html>")
    limited = client.get(world.target)
    assert (limited.status_code, limited.headers["retry-after"], limited.text) == (
        429,
        "7",
        "slow down",
    )
    assert client.get(world.target).json() == {"error": "Internal server error."}
    html = client.get(world.target)
    assert (html.headers["content-type"], html.content) == ("text/html", b"<html>")
    assert client.get(world.target).status_code == 401


def test_fail_next_delay(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(None, delay=0.3)
    started = time.monotonic()
    response = client.get(world.target, headers=bearer(world.sa))
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200
    world.fake.fail_next(502, delay=0.2)
    started = time.monotonic()
    assert client.get(world.target).status_code == 502
    assert time.monotonic() - started >= 0.2


def test_fail_next_drop(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(drop=True)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(world.target, headers=bearer(world.sa))
    assert client.get(world.target, headers=bearer(world.sa)).status_code == 200


def test_fail_next_hang(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(hang=10)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get(world.target, headers=bearer(world.sa), timeout=0.3)
    assert time.monotonic() - started < 2
    assert client.get(world.target, headers=bearer(world.sa)).status_code == 200


def test_fail_next_raw_bytes(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    # The raw bytes are all the client gets: without "Connection: close" it could reuse the
    # connection the server closes after them.
    world.fake.fail_next(
        raw=b"HTTP/1.1 418 Teapot\r\nContent-Length: 5\r\nConnection: close\r\nX-A: b\r\n\r\nshort"
    )
    teapot = client.get(world.target)
    assert (teapot.status_code, teapot.headers["x-a"], teapot.content) == (418, "b", b"short")
    world.fake.fail_next(raw=b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(world.target)
    world.fake.fail_next(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(world.target)
    assert client.get(world.target, headers=bearer(world.sa)).status_code == 200


def test_fail_next_lying_content_length(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    world.fake.fail_next(200, headers={"Content-Length": "50"}, body="[]")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(world.target)
    assert client.get(world.target, headers=bearer(world.sa)).status_code == 200


def test_fail_next_validation(world: World) -> None:
    for kwargs in (
        {"drop": True, "hang": 1.0},
        {"times": 0},
        {"status": None},
        {"delay": -1.0},
        {"status": 42},
    ):
        with pytest.raises(ValueError):
            world.fake.fail_next(**kwargs)  # type: ignore[arg-type]
    world.fake.fail_next(500, times=5)
    world.fake.clear_faults()
    response = world.fake.handle("GET", "/health/", {})
    assert response.status == 200


# --------------------------------------------------------------------------- the transport


def test_transport_answers_in_process(world: World) -> None:
    with httpx.Client(transport=world.fake.transport(), base_url="http://127.0.0.1") as client:
        response = client.get(world.target, headers=bearer(world.sa))
        assert [item["key"] for item in response.json()] == ["DB_HOST"]
        assert response.headers["allow"] == "GET, POST, PUT, DELETE, HEAD, OPTIONS"
        assert client.get("/v1/secrets").status_code == 404
        created = client.post(
            world.target,
            headers=bearer(world.sa),
            content=json.dumps({"secrets": [{"key": "new", "value": "v"}]}),
        )
        assert created.json()[0]["key"] == "NEW"
    [first, *_] = world.fake.requests
    assert first.client_port is None and first.token_type == "ServiceAccount"


def test_transport_faults(world: World) -> None:
    fake = world.fake
    with httpx.Client(transport=fake.transport(), base_url="http://127.0.0.1") as client:
        fake.fail_next(drop=True)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(world.target)
        fake.fail_next(hang=60)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(world.target)
        assert time.monotonic() - started < 1
        fake.fail_next(raw=b"HTTP/1.1 503 Busy\r\nRetry-After: 3\r\n\r\n{}")
        busy = client.get(world.target)
        assert (busy.status_code, busy.headers["retry-after"], busy.content) == (503, "3", b"{}")
        fake.fail_next(raw=b"\x00garbage")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(world.target)
        fake.fail_next(200, headers={"content-length": "99"}, body="[]")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(world.target)
        fake.fail_next(None, delay=0.2)
        started = time.monotonic()
        assert client.get(world.target, headers=bearer(world.sa)).status_code == 200
        assert time.monotonic() - started >= 0.2
        fake.fail_next(504)
        assert client.get(world.target).status_code == 504


def test_transport_with_an_async_client(world: World) -> None:
    async def fetch() -> int:
        async with httpx.AsyncClient(
            transport=world.fake.transport(), base_url="http://127.0.0.1"
        ) as client:
            response = await client.get(world.target, headers=bearer(world.sa))
            return response.status_code

    assert asyncio.run(fetch()) == 200


# --------------------------------------------------------------------------- the request log


def test_request_log_fields(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    user = world.fake.add_user()
    legacy = world.fake.add_service_token(world.app)
    before = time.monotonic()
    client.get(world.target + "&key=db_host", headers={**bearer(world.sa), "X-Test-Pid": "42"})
    client.get(world.target, headers=bearer(user))
    client.get(world.target, headers=bearer(legacy))
    client.post("/v1/secrets/?appId=x", headers={"Authorization": "Bearer junk"}, content=b"{}")
    log = world.fake.requests
    assert [r.token_type for r in log] == ["ServiceAccount", "User", "Service", None]
    first = log[0]
    assert isinstance(first, RecordedRequest)
    assert (first.method, first.path) == ("GET", "/v1/secrets/")
    assert first.query == {"app_id": world.app, "env": "development", "key": "db_host"}
    assert first.headers["x-test-pid"] == "42"
    assert "authorization" not in first.headers
    assert all(name == name.lower() for name in first.headers)
    assert isinstance(first.client_port, int) and first.client_port > 0
    assert before <= first.timestamp <= log[-1].timestamp <= time.monotonic()
    assert log[3].query == {"appId": "x"} and log[3].body == b"{}"
    with pytest.raises(FrozenInstanceError):
        first.method = "PUT"  # type: ignore[misc]
    world.fake.clear_requests()
    assert world.fake.requests == []


def test_request_log_never_holds_a_token(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    tokens = [world.sa, world.fake.add_user(), world.fake.add_service_token(world.app)]
    for token in tokens:
        client.get(world.target, headers=bearer(token))
        client.get(world.target, headers={"Authorization": f"Bearer {token}"})
        client.get(world.target, headers={"Authorization": "Bearer  User " + token.split(":")[2]})
    with httpx.Client(transport=world.fake.transport(), base_url="http://x") as in_process:
        for token in tokens:
            in_process.get(world.target, headers=bearer(token))
    logged = repr(world.fake.requests)
    assert len(world.fake.requests) == 12
    for token in tokens:
        for segment in token.split(":")[2:]:
            assert segment not in logged


def test_keep_alive_reuses_the_connection(served: tuple[World, httpx.Client]) -> None:
    world, client = served
    for _ in range(3):
        assert client.get(world.target, headers=bearer(world.sa)).status_code == 200
    ports = {request.client_port for request in world.fake.requests}
    assert len(ports) == 1


# --------------------------------------------------------------------------- serving


def _open_hanging_request(url: str) -> socket.socket:
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_serve_stops_quickly_with_hanging_and_idle_connections(world: World) -> None:
    fake = world.fake
    fake.fail_next(hang=30)
    fake.fail_next(None, delay=30)
    sockets: list[socket.socket] = []
    try:
        with fake.serve() as url:
            assert fake.url == url
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
            sockets.append(_open_hanging_request(url))
            sockets.append(_open_hanging_request(url))
            idle = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
            sockets.append(idle)
            deadline = time.monotonic() + 5
            while len(fake.requests) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(fake.requests) == 2
            started = time.monotonic()
        assert time.monotonic() - started < 1.0
        hanging = sockets[0]
        hanging.settimeout(2)
        assert hanging.recv(1024) == b""  # closed without a response
        delayed = sockets[1]
        delayed.settimeout(2)
        for _ in range(100):  # the delay ends early; whatever was sent, the socket closes
            if not delayed.recv(65536):
                break
        else:
            pytest.fail("the delayed connection was not closed")
    finally:
        for sock in sockets:
            sock.close()
    with pytest.raises(RuntimeError):
        _ = fake.url


def test_serve_again_after_stopping(world: World) -> None:
    for _ in range(2):
        with (
            world.fake.serve() as url,
            httpx.Client(base_url=url, verify=False) as client,
        ):
            assert client.get("/health/").status_code == 200
            with pytest.raises(RuntimeError), world.fake.serve():
                pass


def test_concurrent_requests_while_the_state_changes(
    served: tuple[World, httpx.Client],
) -> None:
    world, _ = served
    url = world.fake.url
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, verify=False, timeout=5) as client:
            for _ in range(15):
                status = client.get(world.target, headers=bearer(world.sa)).status_code
                with lock:
                    statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for i in range(30):
        world.fake.set_secret(world.app, "development", f"K{i % 5}", str(i))
    for thread in threads:
        thread.join(10)
    assert statuses == [200] * 90
    assert world.fake.server_errors == []


def test_handle_is_the_shared_core(world: World) -> None:
    response = world.fake.handle(
        "get", world.target, {"AUTHORIZATION": bearer(world.sa)["Authorization"]}
    )
    assert isinstance(response, FakeResponse)
    assert response.status == 200
    assert json.loads(response.body)[0]["key"] == "DB_HOST"
    head = world.fake.handle("HEAD", "/v1/apps/", bearer(world.sa))
    assert head.status == 200 and head.body == b"" and int(head.headers["Content-Length"]) > 0


# --------------------------------------------------------------------------- seeding and state


def test_from_seed() -> None:
    fake = FakePhase.from_seed(
        {
            "apps": [
                {
                    "name": "demo",
                    "environments": {
                        "Development": {
                            "/": {"KEY": "value", "PORT": 5432, "HOSTS": ["a", "b"]},
                            "/backend": {
                                "KEY2": {
                                    "value": "v",
                                    "comment": "c",
                                    "tags": ["t"],
                                    "type": "config",
                                }
                            },
                        },
                        "QA": {"/": {"Q": "${development.KEY}"}},
                    },
                },
                {"name": "plain", "sse": False, "id": "00000000-0000-4000-8000-000000000001"},
            ]
        }
    )
    demo = fake.app_id("DEMO")
    assert fake.app_id("plain") == "00000000-0000-4000-8000-000000000001"
    token = fake.add_user()
    with httpx.Client(transport=fake.transport(), base_url="http://x") as client:
        items = client.get(
            "/v1/secrets/", params={"app_id": demo, "env": "development"}, headers=bearer(token)
        ).json()
        assert [(i["key"], i["value"], i["path"]) for i in items] == [
            ("KEY", "value", "/"),
            ("PORT", "5432", "/"),
            ("HOSTS", '["a", "b"]', "/"),
            ("KEY2", "v", "/backend"),
        ]
        assert (items[3]["comment"], items[3]["tags"], items[3]["type"]) == ("c", ["t"], "config")
        envs = client.get(
            "/v1/environments/", params={"app_id": demo}, headers=bearer(token)
        ).json()
        assert [e["name"] for e in envs["data"]] == ["Development", "QA"]
        qa = client.get("/v1/secrets/", params={"app_id": demo, "env": "qa"}, headers=bearer(token))
        assert qa.json()[0]["value"] == "value"
        plain_envs = client.get("/v1/apps/", headers=bearer(token)).json()["data"]
        assert [a["sseEnabled"] for a in plain_envs] == [False, True]
    assert fake.env_id(fake.app_id("plain"), "production")  # default environments


@pytest.mark.parametrize(
    "seed",
    [
        {},
        {"apps": {}},
        {"apps": [{"environments": {}}]},
        {"apps": [{"name": "x", "environments": []}]},
        {"apps": [{"name": "x", "environments": {"Dev": []}}]},
        {"apps": [{"name": "x", "environments": {"Dev": {"/": []}}}]},
    ],
)
def test_from_seed_rejects_bad_shapes(seed: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FakePhase.from_seed(seed)


def test_state_helpers(world: World) -> None:
    fake, app = world.fake, world.app
    with pytest.raises(KeyError):
        fake.app_id("missing")
    with pytest.raises(KeyError):
        fake.set_secret(app, "nope", "A", "1")
    with pytest.raises(ValueError):
        fake.add_app("dup", environments=("Dev", "dev"))
    first = fake.get_secret(app, "DEVELOPMENT", "db_host")
    assert first is not None and first["version"] == 1
    secret_id = fake.set_secret(app, "development", "db_host", "${OTHER}", tags=["x", "x"])
    updated = fake.get_secret(app, "development", "DB_HOST")
    assert updated is not None
    assert (updated["id"], updated["version"], updated["value"], updated["tags"]) == (
        secret_id,
        2,
        "${OTHER}",
        ["x"],
    )
    assert updated["updatedAt"] >= first["updatedAt"]
    assert updated["createdAt"] == first["createdAt"]
    folder_id = fake.set_secret(app, "development", "DEEP", "v", path="a//b/")
    deep = fake.get_secret(app, "development", "deep", path="/a/b")
    assert deep is not None and deep["id"] == folder_id and deep["folder"]
    fake.delete_secret(app, "development", "deep", path="a/b")
    assert fake.get_secret(app, "development", "DEEP", path="/a/b") is None
    with pytest.raises(KeyError):
        fake.delete_secret(app, "development", "DEEP", path="/a/b")
    with pytest.raises(KeyError):
        fake.revoke("pss_service:v2:" + "0" * 64)


def test_tokens_and_scopes(world: World) -> None:
    fake = world.fake
    everywhere = fake.add_service_account(envs=None)
    user = fake.add_user()
    legacy = fake.add_service_token(world.app, envs=None)
    for token, kind in ((everywhere, "ServiceAccount"), (user, "User"), (legacy, "Service")):
        assert TOKEN_FORMS[kind].fullmatch(token)
    later = fake.add_app("later", environments=("Custom",))
    with httpx.Client(transport=fake.transport(), base_url="http://x") as client:
        response = client.get(
            "/v1/secrets/", params={"app_id": later, "env": "custom"}, headers=bearer(everywhere)
        )
        assert response.status_code == 200  # envs=None covers apps added later
        assert (
            client.get(
                "/v1/secrets/", params={"app_id": later, "env": "custom"}, headers=bearer(world.sa)
            ).status_code
            == 401
        )
        assert (
            client.get(
                "/v1/secrets/",
                params={"app_id": world.app, "env": "production"},
                headers=bearer(legacy),
            ).status_code
            == 200
        )
    with pytest.raises(TypeError):
        fake.add_service_account(envs="development")


def test_a_bug_in_the_fake_is_a_500_and_is_kept(
    served: tuple[World, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, client = served

    def broken(*args: object, **kwargs: object) -> FakeResponse:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.fake, "_dispatch", broken)
    response = client.get(world.target, headers=bearer(world.sa))
    assert response.status_code == 500
    assert response.json() == {"error": "Internal server error."}
    assert "RuntimeError: boom" in world.fake.server_errors[0]


def test_head_through_the_transport(world: World) -> None:
    with httpx.Client(transport=world.fake.transport(), base_url="http://x") as client:
        response = client.head("/v1/apps/", headers=bearer(world.sa))
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
