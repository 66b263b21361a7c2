"""FakePhase on the E2EE API against live recordings of a real Phase v2.73.2 server.

Every recorded request is replayed against a fake holding the same apps and principals, and
the answer is compared with the real one: status, header names in order and their values,
error bodies byte for byte, and the JSON shape (keys in order, value types) of the rest.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from phase_settings.testing import FakePhase

from .._e2ee_recordings import APP_A, APP_B, World, header_names, load, same_shape

# Exchanges whose answer does not depend on the data: compared byte for byte.
EXACT = [
    "errors/01_tokens_no_auth_header.http",
    "errors/02_tokens_unknown_token.http",
    "errors/03_tokens_wrong_type_word.http",
    "errors/04_tokens_garbage_scheme.http",
    "errors/06_secrets_no_auth_header.http",
    "errors/07_secrets_unknown_token.http",
    "errors/08_secrets_bad_type_word.http",
    "errors/09_secrets_unknown_env_uuid.http",
    "errors/10_secrets_env_not_uuid.http",
    "errors/11_secrets_no_env_header_user.http",
    "errors/12_secrets_no_env_header_sa.http",
    "errors/13_secrets_no_env_header_legacy.http",
    "errors/15_secrets_noaccess_member.http",
    "errors/16_secrets_query_unknown_app.http",
    "errors/17_secrets_query_unknown_env_name.http",
    "errors/19_POST_invalid_ciphertext.http",
    "errors/22_POST_empty_body.http",
    "errors/23_POST_not_json.http",
    "errors/24_POST_json_array.http",
    "errors/25_POST_missing_secrets_field.http",
    "errors/26_POST_missing_comment_field.http",
    "errors/27_PUT_unknown_id.http",
    "errors/28_DELETE_unknown_id.http",
    "errors/29_PATCH_unsupported.http",
    "errors/30_GET_lease_ttl_not_int.http",
    "errors/31_SA_write_on_app_B.http",
    "errors/32_REST_on_E2EE_app.http",
    "errors/33_no_trailing_slash.http",
    "errors/35_tokens_no_trailing_slash.http",
    "sa_appB/05_POST_with_override_ignored.http",
    "user_appB/02_POST_batch_tags_comment_sealed_config.http",
    "appAsa_appA_sse/03_GET_Production_no_access.http",
]
# Exchanges whose body holds data: compared by shape.
SHAPED = [
    "errors/05_tokens_old_seeded_user_token.http",
    "errors/14_tokens_noaccess_member.http",
    "errors/18_secrets_query_app_and_env_ok.http",
    "errors/34_without_service_prefix.http",
    "user_appB/01_GET_tokens.http",
    "user_appB/03_GET_all_paths_no_Path_header.http",
    "user_appB/13_GET_X-Use-Camel-Case.http",
    "sa_appB/01_GET_tokens.http",
    "sa_appB/02_GET_Development.http",
    "legacy_appB/01_GET_tokens.http",
    "appAsa_appA_sse/01_GET_tokens.http",
    "user_appA_sse/01_GET_Development_all_paths.http",
]


def assert_headers_match(recorded: list[tuple[str, str]], actual: list[tuple[str, str]]) -> None:
    assert header_names(actual) == header_names(recorded)
    values = dict(actual)
    for name, value in recorded:
        if name.lower() not in ("server", "date", "connection", "content-length"):
            assert values[name] == value, name


@pytest.mark.parametrize("name", EXACT)
def test_the_fake_answers_like_the_recorded_server(name: str) -> None:
    exchange = load(name)
    world = World()
    status, headers, body = world.replay(exchange)
    assert status == exchange.status
    assert_headers_match(exchange.response_headers, headers)
    assert body == exchange.response_body
    assert dict(headers)["Content-Length"] == exchange.header("Content-Length")


@pytest.mark.parametrize("name", SHAPED)
def test_data_responses_have_the_recorded_shape(name: str) -> None:
    exchange = load(name)
    world = World()
    world.replay(load("user_appB/02_POST_batch_tags_comment_sealed_config.http"))
    status, headers, body = world.replay(exchange)
    assert status == exchange.status
    assert_headers_match(exchange.response_headers, headers)
    recorded, actual = exchange.json(), json.loads(body)
    if isinstance(recorded, list):
        assert recorded and actual, "both sides list secrets"
    if isinstance(recorded, dict) and recorded["apps"]:
        assert actual["apps"], "the fake lists the apps the principal holds keys for"
    same_shape(recorded, actual)


def test_the_tokens_response_lists_the_apps_and_environments_the_account_holds_keys_for() -> None:
    world = World()

    def apps_of(principal: str) -> dict[str, Any]:
        authorization = {"Authorization": f"Bearer {_type(principal)} {world.bearer(principal)}"}
        answer = world.fake.handle("GET", "/service/secrets/tokens/", authorization)
        assert answer.status == 200
        return {
            app["name"]: (
                app["encryption"],
                [k["environment"]["name"] for k in app["environment_keys"]],
            )
            for app in json.loads(answer.body)["apps"]
        }

    assert apps_of("user") == {
        "phase-settings-e2ee-B": ("E2E", ["Development", "Staging", "Production"]),
        "phase-settings-real-A": ("SSE", ["Development", "Staging", "Production"]),
    }
    assert apps_of("sa") == {"phase-settings-e2ee-B": ("E2E", ["Development", "Staging"])}
    assert apps_of("legacy") == {"phase-settings-e2ee-B": ("E2E", ["Development"])}
    assert apps_of("appAsa") == {"phase-settings-real-A": ("SSE", ["Development", "Staging"])}
    assert apps_of("noaccess") == {}


def _type(principal: str) -> str:
    return {"user": "User", "noaccess": "User", "legacy": "Service"}.get(
        principal, "ServiceAccount"
    )


def test_a_duplicate_key_digest_in_the_same_folder_is_the_recorded_409() -> None:
    for name in ("errors/20_POST_duplicate_key.http", "errors/21_POST_duplicate_in_folder.http"):
        exchange = load(name)
        world = World()
        first = world.replay(exchange)
        assert first[0] == 200 and first[2] == b""
        status, headers, body = world.replay(exchange)
        assert (status, body) == (exchange.status, exchange.response_body)
        assert_headers_match(exchange.response_headers, headers)


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_the_tokens_endpoint_is_throttled_per_client_ip_as_recorded() -> None:
    clock = Clock()
    world = World(FakePhase(clock=clock))
    world.fake.rate_limit("5/minute")
    for number in range(1, 6):
        exchange = load(f"throttle/A{number}_tokens_user.http")
        assert world.replay(exchange)[0] == 200
    for name in ("throttle/A6_tokens_user.http", "throttle/A7_tokens_other_principal_same_ip.http"):
        exchange = load(name)
        status, headers, body = world.replay(exchange)
        assert (status, body) == (429, exchange.response_body)
        assert_headers_match(exchange.response_headers, headers)
    # The secrets endpoint has its own buckets (per account): the user still reads.
    secrets = load("throttle/B4_E2EE_user.http")
    assert world.replay(secrets)[0] == 200
    clock.now += 60
    assert world.replay(load("throttle/A1_tokens_user.http"))[0] == 200


def test_the_secrets_endpoint_shares_each_accounts_bucket_with_rest_as_recorded() -> None:
    world = World(FakePhase(clock=Clock()))
    world.fake.rate_limit("5/minute")
    for name in ("B1_REST_user", "B2_REST_user", "B3_REST_user", "B4_E2EE_user", "B5_E2EE_user"):
        assert world.replay(load(f"throttle/{name}.http"))[0] == 200, name
    refused = load("throttle/B6_E2EE_user.http")
    status, headers, body = world.replay(refused)
    assert (status, body) == (429, refused.response_body)
    assert_headers_match(refused.response_headers, headers)
    other = load("throttle/B7_E2EE_sa_other_bucket.http")
    assert world.replay(other)[0] == 200


def test_rest_on_an_app_without_sse_is_the_recorded_400_over_loopback_http() -> None:
    import httpx

    exchange = load("errors/32_REST_on_E2EE_app.http")
    world = World()
    with world.fake.serve() as url:
        response = httpx.get(
            url + exchange.target,
            headers={"Authorization": world.translate(exchange.headers["Authorization"])},
        )
    assert response.status_code == 400
    assert response.content == b'{"error":"SSE is not enabled for this App"}'
    served = [(name, value) for name, value in response.headers.items()]
    assert [n.lower() for n in header_names(served)] == [
        n.lower() for n in header_names(exchange.response_headers)
    ]


def test_the_e2ee_api_serves_an_sse_app_with_references_unresolved() -> None:
    world = World()
    env = world.fake.env_id(APP_A, "development")
    authorization = f"Bearer User {world.bearer('user')}"
    answer = world.fake.handle(
        "GET", "/service/secrets/", {"Authorization": authorization, "Environment": env}
    )
    items = json.loads(answer.body)
    assert answer.status == 200 and len(items) == 2
    assert all(item["value"].startswith("ph:v1:") for item in items)
    rest = world.fake.handle(
        "GET",
        f"/service/public/v1/secrets/?app_id={APP_A}&env=Development&key=DATABASE_URL",
        {"Authorization": authorization},
    )
    assert json.loads(rest.body)[0]["value"] == "postgres://db.internal/app"
    assert world.fake.get_secret(APP_B, "development", "DB_HOST") is not None


WRITE_SEQUENCE = [
    "20_POST_temp",
    "21_GET_find_temp",
    "22_PUT_value_path_tags",
    "23_PUT_partial_override_only",
    "24_GET_after_put",
    "25_DELETE_temp",
    "26_GET_after_delete",
    "30_POST_temp_in_Staging",
    "31_GET_Staging_temps",
    "32_DELETE_staging_id_with_Development_header",
    "33_PUT_staging_id_with_Development_header",
    "34_GET_Staging_after",
    "35_GET_Dev_moved",
    "36_DELETE_moved",
    "40_POST_same_key_twice_in_one_batch",
    "41_GET_dup",
    "42_DELETE_dups",
]


def _stored_view(item: dict[str, Any]) -> tuple[Any, ...]:
    override = item["override"]
    return (
        item["key"],
        item["value"],
        item["comment"],
        sorted(item["tags"]),
        item["type"],
        item["path"],
        item["key_digest"],
        item["version"],
        override and (override["value"], override["is_active"]),
    )


def test_writes_replayed_in_order_leave_exactly_what_the_real_server_held() -> None:
    """POST, partial PUT, cross-environment PUT/DELETE by id and a duplicate in one batch.

    The fake stores the clients' ciphertext verbatim, so every secret the sequence wrote
    reads back with the very ciphertexts, tags, path, version and override the real server
    returned at the same point.
    """
    world = World()
    ids: dict[str, str] = {}
    written: set[str] = set()
    for name in WRITE_SEQUENCE:
        exchange = load(f"user_appB/{name}.http")
        body = exchange.body.decode()
        for recorded_id, fake_id in ids.items():
            body = body.replace(recorded_id, fake_id)
        if exchange.method in ("POST", "PUT"):
            items = json.loads(body)["secrets"]
            written |= {item["keyDigest"] for item in items if "keyDigest" in item}
        status, _headers, answer = world.replay(exchange, body.encode())
        assert status == exchange.status, name
        if exchange.method != "GET":
            assert answer == b"", name
            continue
        # The server lists rows without ORDER BY: compare in one order (by key ciphertext).
        recorded = sorted(
            (item for item in exchange.json() if item["key_digest"] in written),
            key=lambda item: str(item["key"]),
        )
        actual = sorted(
            (item for item in json.loads(answer) if item["key_digest"] in written),
            key=lambda item: str(item["key"]),
        )
        assert [_stored_view(i) for i in actual] == [_stored_view(i) for i in recorded], name
        ids.update({r["id"]: a["id"] for r, a in zip(recorded, actual, strict=True)})
    assert len(ids) >= 4


FILTERS = [
    "04_GET_Path_root",
    "05_GET_Path_backend",
    "06_GET_KeyDigest_DB_HOST",
    "07_GET_KeyDigest_empty",
    "08_GET_Tags_billing",
    "09_GET_Tags_billing_backend",
    "10_GET_Tags_case",
    "11_GET_Dynamic_Lease",
]


@pytest.mark.parametrize("name", FILTERS)
def test_the_path_keydigest_and_tags_headers_filter_as_recorded(name: str) -> None:
    """The environment's recorded contents are written back, then each filtered GET replayed."""
    world = World()
    everything = load("user_appB/03_GET_all_paths_no_Path_header.http").json()
    batch = [
        {
            "key": item["key"],
            "keyDigest": item["key_digest"],
            "value": item["value"],
            "comment": item["comment"],
            "path": item["path"],
            "tags": item["tags"],
            "type": item["type"],
        }
        for item in everything
    ]
    seed = load("user_appB/02_POST_batch_tags_comment_sealed_config.http")
    assert world.replay(seed, json.dumps({"secrets": batch}).encode())[0] == 200
    recorded_digests = {item["key_digest"] for item in everything}

    def view(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        kept = [i for i in items if i["key_digest"] in recorded_digests]
        return sorted(_stored_view({**i, "version": 1, "override": None}) for i in kept)

    exchange = load(f"user_appB/{name}.http")
    status, _headers, body = world.replay(exchange)
    assert status == exchange.status == 200
    assert view(json.loads(body)) == view(exchange.json())
