"""PhaseClient / AsyncPhaseClient against the loopback fake: endpoints, errors, headers."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase_settings import (
    AsyncPhaseClient,
    PhaseAuthError,
    PhaseClient,
    PhaseConflictError,
    PhaseConnectionError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseRequestError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSSEDisabledError,
    Secret,
)
from phase_settings.testing import FakePhase

from .conftest import Phase


@pytest.fixture
def client(phase: Phase) -> Iterator[PhaseClient]:
    with PhaseClient(phase.token, phase.url, deadline=5, rng=random.Random(1)) as c:
        yield c


def test_list_secrets_returns_typed_records(phase: Phase, client: PhaseClient) -> None:
    phase.fake.set_secret(
        phase.app_id, "development", "db_host", "db-sekrit", comment="the db", tags=("backend",)
    )
    [secret] = client.list_secrets(phase.app_id, "Development")
    assert isinstance(secret, Secret)
    assert (secret.key, secret.value, secret.comment, secret.tags) == (
        "DB_HOST",
        "db-sekrit",
        "the db",
        ("backend",),
    )
    assert secret.path == "/" and secret.version == 1 and secret.type == "secret"
    assert secret.created_at is not None and secret.created_at.tzinfo is not None
    assert secret.override is None and secret.effective_value == "db-sekrit"
    assert "sekrit" not in repr(secret) + str(secret)


def test_request_shape_headers_and_query(phase: Phase, client: PhaseClient) -> None:
    client.list_secrets(phase.app_id, "development", path="/a b/c+d", key="K", tags=["x", "y z"])
    [request] = phase.fake.requests
    assert request.path == "/service/public/v1/secrets/"
    assert request.query == {
        "app_id": phase.app_id,
        "env": "development",
        "path": "/a b/c+d",
        "key": "K",
        "tags": "x,y z",
    }
    assert request.token_type == "ServiceAccount"
    assert request.headers["user-agent"].startswith("phase-settings/")
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers


def test_path_none_asks_for_every_folder(phase: Phase, client: PhaseClient) -> None:
    phase.set("A", "1")
    phase.set("B", "2", path="/deep/er")
    assert {s.key for s in client.list_secrets(phase.app_id, "development", path=None)} == {
        "A",
        "B",
    }
    assert "path" not in phase.fake.requests[-1].query
    assert [s.key for s in client.list_secrets(phase.app_id, "development")] == ["A"]


def test_create_update_delete_round_trip(phase: Phase, client: PhaseClient) -> None:
    [created] = client.create_secrets(
        phase.app_id,
        "development",
        [{"key": "new_key", "value": "v1", "comment": "c", "path": "/p", "tags": ("t",)}],
    )
    assert (created.key, created.value, created.path, created.tags) == (
        "NEW_KEY",
        "v1",
        "/p",
        ("t",),
    )
    [updated] = client.update_secrets(
        phase.app_id, "development", [{"id": created.id, "value": "v2"}]
    )
    assert updated.value == "v2" and updated.version == created.version + 1
    with pytest.raises(PhaseConflictError) as conflict:
        client.create_secrets(
            phase.app_id, "development", [{"key": "NEW_KEY", "value": "x", "path": "/p"}]
        )
    assert conflict.value.status == 409 and conflict.value.error == "Duplicate secret found"
    assert client.delete_secrets(phase.app_id, "development", [created.id]) == 1
    assert client.list_secrets(phase.app_id, "development", path="/p") == []
    with pytest.raises(PhaseNotFoundError):
        client.delete_secrets(phase.app_id, "development", [created.id])


def test_user_override_is_exposed_and_effective(phase: Phase) -> None:
    phase.set("K", "shared")
    user = phase.fake.add_user()
    phase.fake.set_override(user, phase.app_id, "development", "K", "mine")
    with PhaseClient(user, phase.url) as c:
        [secret] = c.list_secrets(phase.app_id, "development")
    assert secret.value == "shared" and secret.effective_value == "mine"
    assert secret.override is not None and secret.override.is_active
    assert "mine" not in repr(secret)


def test_apps_and_environments(phase: Phase, client: PhaseClient) -> None:
    apps = client.list_apps()
    assert [a.name for a in apps] == ["demo"] and apps[0].sse_enabled
    envs = client.list_environments(phase.app_id)
    assert [e.name for e in envs] == ["Development", "Staging", "Production"]
    assert [e.env_type for e in envs] == ["dev", "staging", "prod"]


@pytest.mark.parametrize(
    ("make", "error", "status", "text"),
    [
        (
            lambda p: {"app_id": "00000000-0000-0000-0000-000000000000"},
            PhaseNotFoundError,
            404,
            "App with ID 00000000-0000-0000-0000-000000000000 not found",
        ),
        (lambda p: {"env": "nope"}, PhaseNotFoundError, 404, "Environment 'nope' not found"),
        (
            lambda p: {"token": p.fake.add_service_account(envs=("staging",))},
            PhaseAuthError,
            401,
            "Service account cannot access this environment",
        ),
        (
            lambda p: {"token": p.fake.add_user(envs=("staging",))},
            PhaseAuthError,
            403,
            "User cannot access this environment",
        ),
    ],
)
def test_refusals_map_to_typed_errors(phase: Phase, make, error, status, text) -> None:  # type: ignore[no-untyped-def]
    args = {"app_id": phase.app_id, "env": "development", "token": phase.token, **make(phase)}
    with PhaseClient(args["token"], phase.url) as c, pytest.raises(error) as info:
        c.list_secrets(args["app_id"], args["env"])
    assert info.value.status == status and info.value.error is not None
    assert info.value.error.startswith(text)
    assert sum(1 for r in phase.fake.requests if r.method == "GET") == 1  # never retried


def test_revoked_token(phase: Phase, client: PhaseClient) -> None:
    phase.fake.revoke(phase.token)
    with pytest.raises(PhaseAuthError, match="PHASE_SERVICE_TOKEN") as info:
        client.list_secrets(phase.app_id, "development")
    assert info.value.error == "Token expired or deleted"


def test_sse_disabled(phase: Phase, client: PhaseClient) -> None:
    phase.fake.set_sse(phase.app_id, False)
    with pytest.raises(PhaseSSEDisabledError) as info:
        client.list_secrets(phase.app_id, "development")
    assert info.value.status == 400


def test_wrong_host_404_html_is_a_response_error(phase: Phase) -> None:
    with PhaseClient(phase.token, phase.url + "/nothing/service/public") as c:
        with pytest.raises(PhaseResponseError, match="PHASE_HOST"):
            c.list_secrets(phase.app_id, "development")


def test_rate_limit_error_carries_retry_after(phase: Phase) -> None:
    phase.fake.rate_limit("1/m")
    with PhaseClient(phase.token, phase.url, deadline=2) as c:
        c.list_secrets(phase.app_id, "development")
        with pytest.raises(PhaseRateLimitError) as info:
            c.list_secrets(phase.app_id, "development")
    assert info.value.retry_after is not None and 55 <= info.value.retry_after <= 60
    assert info.value.status == 429


def test_server_errors_are_retried_then_raised(phase: Phase) -> None:
    waits: list[float] = []
    phase.fake.fail_next(503, times=5)
    with PhaseClient(phase.token, phase.url, sleep=waits.append, rng=random.Random(3)) as c:
        with pytest.raises(PhaseServerError) as info:
            c.list_secrets(phase.app_id, "development")
    assert info.value.status == 503
    assert len(phase.fake.requests) == 3 and len(waits) == 2
    assert 0 <= waits[0] <= 0.5 and 0 <= waits[1] <= 1.0


def test_a_transient_failure_then_success(phase: Phase) -> None:
    phase.set("K", "v")
    phase.fake.fail_next(502)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        assert [s.key for s in c.list_secrets(phase.app_id, "development")] == ["K"]
    assert len(phase.fake.requests) == 2


def test_post_is_not_retried_after_reaching_the_server(phase: Phase) -> None:
    phase.fake.fail_next(503, times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        with pytest.raises(PhaseServerError):
            c.create_secrets(phase.app_id, "development", [{"key": "K", "value": "v"}])
    assert len(phase.fake.requests) == 1


def test_other_4xx_is_a_request_error_not_retried(phase: Phase) -> None:
    phase.fake.fail_next(413, body=json.dumps({"error": "Too big"}))
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseRequestError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.status == 413 and info.value.error == "Too big"
    assert len(phase.fake.requests) == 1


def test_redirect_is_not_followed(phase: Phase) -> None:
    phase.fake.fail_next(302, headers={"Location": "http://127.0.0.1:9/steal"}, body="")
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseResponseError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.status == 302 and "redirect" in str(info.value)


def test_body_over_the_limit_is_refused_before_parsing(phase: Phase) -> None:
    for i in range(50):
        phase.set(f"K{i}", "x" * 100)
    with PhaseClient(phase.token, phase.url, max_response_bytes=2000) as c:
        with pytest.raises(PhaseResponseError, match="max_response_bytes"):
            c.list_secrets(phase.app_id, "development")


def test_error_text_is_sanitised_and_truncated(phase: Phase) -> None:
    phase.fake.fail_next(400, body=json.dumps({"error": "bad\x00\x1b[31m" + "y" * 500}))
    with PhaseClient(phase.token, phase.url) as c, pytest.raises(PhaseRequestError) as info:
        c.list_secrets(phase.app_id, "development")
    assert info.value.error is not None
    assert len(info.value.error) <= 200 and "\x00" not in info.value.error
    assert "\x1b" not in str(info.value)


def test_closed_port_is_a_connection_error(phase: Phase) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with PhaseClient(phase.token, f"http://127.0.0.1:{port}", sleep=lambda s: None) as c:
        with pytest.raises(PhaseConnectionError):
            c.list_secrets(phase.app_id, "development")


def test_in_process_transport(phase: Phase) -> None:
    phase.set("K", "v")
    with PhaseClient(phase.token, "http://127.0.0.1", transport=phase.fake.transport()) as c:
        assert c.list_secrets(phase.app_id, "development")[0].value == "v"


def test_async_client_matches_the_sync_one(phase: Phase) -> None:
    phase.set("K", "v")

    async def main() -> list[Secret]:
        async with AsyncPhaseClient(phase.token, phase.url) as c:
            created = await c.create_secrets(
                phase.app_id, "development", [{"key": "N", "value": "n"}]
            )
            await c.update_secrets(
                phase.app_id, "development", [{"id": created[0].id, "value": "m"}]
            )
            assert [a.name for a in await c.list_apps()] == ["demo"]
            assert len(await c.list_environments(phase.app_id)) == 3
            secrets = await c.list_secrets(phase.app_id, "development")
            assert await c.delete_secrets(phase.app_id, "development", [created[0].id]) == 1
            return secrets

    assert {(s.key, s.value) for s in asyncio.run(main())} == {("K", "v"), ("N", "m")}


def test_async_client_errors(phase: Phase) -> None:
    phase.fake.fail_next(401, body=json.dumps({"error": "Token expired or deleted"}))

    async def main() -> None:
        async with AsyncPhaseClient(phase.token, phase.url) as c:
            await c.list_secrets(phase.app_id, "development")

    with pytest.raises(PhaseAuthError):
        asyncio.run(main())


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "id",
                    "key",
                    "value",
                    "tags",
                    "path",
                    "version",
                    "override",
                    "type",
                    "error",
                    "data",
                    "isActive",
                ]
            )
            | st.text(max_size=3),
            children,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=_json_values, status=st.sampled_from([200, 200, 200, 400, 404, 409, 422, 500]))
def test_wrong_shapes_only_ever_raise_phase_errors(payload: object, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=json.dumps(payload).encode())

    token = "pss_service:v2:" + "ab" * 32 + ":x"
    with PhaseClient(
        token, "http://127.0.0.1", transport=httpx.MockTransport(handler), max_attempts=1
    ) as c:
        for call in (
            lambda: c.list_secrets("app", "dev"),
            c.list_apps,
            lambda: c.list_environments("app"),
        ):
            try:
                call()
            except PhaseError as exc:
                assert "ab" * 32 not in str(exc) + repr(exc)


def test_every_error_str_and_repr_hide_the_token(phase: Phase) -> None:
    hexpart = phase.token.split(":")[2]
    for status in (400, 401, 403, 404, 409, 429, 500, 503):
        phase.fake.fail_next(status)
        with PhaseClient(phase.token, phase.url, max_attempts=1) as c:
            with pytest.raises(PhaseError) as info:
                c.list_secrets(phase.app_id, "development")
            assert hexpart not in str(info.value) + repr(info.value) + repr(c)


def test_fake_fixture_is_registered(fake_phase: FakePhase) -> None:
    app = fake_phase.add_app("via-fixture")
    token = fake_phase.add_service_account(envs=None)
    fake_phase.set_secret(app, "development", "K", "v")
    with PhaseClient(token, fake_phase.url) as c:
        assert c.list_secrets(app, "development")[0].key == "K"


def test_a_peer_that_does_not_speak_http_is_a_response_error_not_an_outage(
    phase: Phase,
) -> None:
    phase.fake.fail_next(raw=b"SSH-2.0-OpenSSH_9.6\r\nkex\r\n\r\n", times=3)
    with PhaseClient(phase.token, phase.url, sleep=lambda s: None) as c:
        with pytest.raises(PhaseResponseError, match="PHASE_HOST"):
            c.list_secrets(phase.app_id, "development")
    assert len(phase.fake.requests) == 1  # not retried: a wrong host is not transient


def test_localhost_subdomains_are_not_trusted_as_loopback() -> None:
    from phase_settings import PhaseConfigError

    with pytest.raises(PhaseConfigError):
        PhaseClient("pss_service:v2:" + "ab" * 32 + ":x", host="http://phase.localhost:8080")
