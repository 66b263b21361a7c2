"""The E2EE API as data: recorded exchanges replayed through the library (the requests it builds
match what the server was sent, what it decrypts matches what the server holds and what REST
serves), writes that decrypt back, and the status codes of the recorded errors."""

from __future__ import annotations

import copy

import pytest

from phase_settings import (
    PhaseAuthError,
    PhaseConfigError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseResponseError,
    PhaseServerError,
)
from phase_settings._e2ee.api import (
    create_request,
    delete_request,
    e2ee_host,
    error_for_status,
    list_request,
    tokens_request,
    update_request,
)
from phase_settings._e2ee.keys import TokenKeys
from phase_settings._e2ee.references import ReferenceResolver
from phase_settings._e2ee.replies import TokenAccess, parse_secrets, parse_tokens
from phase_settings._models import Secret
from phase_settings._models import parse_secrets as parse_rest_secrets
from tests._e2ee_data import exchange, vectors

APP_A = "ea0e8934-0dea-4193-96ce-ddbaa25044ea"
APP_B = "c3ceeb59-41f0-4f3a-99a7-d1efc1c34932"
HOST = "http://127.0.0.1:47321"


def _access(principal: str = "user", tokens: str = "user_appB/01_GET_tokens") -> TokenAccess:
    return parse_tokens(
        exchange(tokens).json(), TokenKeys.from_token(vectors()[principal]["token"])
    )


@pytest.mark.parametrize(
    ("api_base", "host"),
    [
        ("https://api.phase.dev", "https://console.phase.dev"),
        ("https://phase.example.com/service/public", "https://phase.example.com"),
        ("http://127.0.0.1:8080/service/public", "http://127.0.0.1:8080"),
    ],
)
def test_e2ee_host_follows_the_rest_api_base(api_base: str, host: str) -> None:
    assert e2ee_host(api_base) == host
    assert tokens_request(host, "Bearer User x").url == host + "/service/secrets/tokens/"


def test_tokens_request_is_what_the_recorded_client_sent() -> None:
    recorded = exchange("user_appB/01_GET_tokens")
    request = tokens_request(HOST, vectors()["user"]["authorization_header"])
    assert (request.method, request.url[len(HOST) :]) == (recorded.method, recorded.target)
    assert request.headers["Authorization"] == recorded.request_headers["authorization"]
    assert "Bearer" not in repr(request)


@pytest.mark.parametrize(
    ("name", "path"),
    [("user_appB/04_GET_Path_root", "/"), ("user_appB/03_GET_all_paths_no_Path_header", None)],
)
def test_list_request_headers_match_the_recording(name: str, path: str | None) -> None:
    recorded = exchange(name)
    env_id = recorded.request_headers["environment"]
    request = list_request(HOST, "Bearer User x", env_id, path=path)
    assert request.url[len(HOST) :] == recorded.target
    assert {k.lower(): v for k, v in request.headers.items() if k != "Authorization"} == {
        k: v for k, v in recorded.request_headers.items() if k in ("environment", "path")
    }


def test_key_digest_request_finds_the_recorded_secret() -> None:
    recorded = exchange("user_appA_sse/05_GET_KeyDigest_DB_HOST")
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_A), "Development"))
    request = list_request(HOST, "x", keys.env_id, path=None, key_digest=keys.digest("DB_HOST"))
    assert request.headers["KeyDigest"] == recorded.request_headers["keydigest"]
    assert [s.key for s in parse_secrets(recorded.json(), keys)] == ["DB_HOST"]


def test_replayed_read_of_app_b_gives_the_vector_plaintexts() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "development"))
    secrets = {s.id: s for s in parse_secrets(exchange("user_appB/04_GET_Path_root").json(), keys)}
    for vec in vectors()["user"]["secrets"]:
        secret = secrets[vec["id"]]
        plain = vec["expected_plaintext"]
        assert (secret.key, secret.value, secret.comment) == (
            plain["key"],
            plain["value"],
            plain["comment"],
        )
        assert set(secret.tags) == set(vec["tags"])
        if "override_value" in plain:
            assert secret.override is not None
            assert secret.effective_value == plain["override_value"]


def test_service_account_reads_the_same_environment_the_same() -> None:
    sa = _access("service_account", "sa_appB/01_GET_tokens")
    user = _access()
    sa_keys = sa.env_keys(sa.environment(sa.app(APP_B), "Development"))
    user_keys = user.env_keys(user.environment(user.app(APP_B), "Development"))
    assert sa_keys.public_key_hex == user_keys.public_key_hex
    secrets = parse_secrets(exchange("sa_appB/02_GET_Development").json(), sa_keys)
    assert any(s.key == "DB_HOST" and s.value == "b-db.internal" for s in secrets)
    assert all(s.override is None for s in secrets)


def test_sse_app_read_over_e2ee_and_resolved_equals_the_rest_reply() -> None:
    """App A is SSE: the same environment read over REST (resolved by the server) and over
    E2EE (decrypted and resolved here) must give the same records."""
    access = _access()
    app = access.app(APP_A)
    dev = access.env_keys(access.environment(app, "Development"))
    root = parse_secrets(exchange("user_appA_sse/02_GET_Development_root").json(), dev)
    every_folder = parse_secrets(exchange("user_appA_sse/01_GET_Development_all_paths").json(), dev)
    staging = access.env_keys(access.environment(app, "staging"))
    staging_secrets = parse_secrets(exchange("user_appA_sse/03_GET_Staging").json(), staging)

    resolver = ReferenceResolver(app.name, "Development")
    resolver.add(app.name, "Development", "/", root)
    needed = resolver.needed(root)
    assert needed == {
        ("phase-settings-real-a", "development", "/backend"),
        ("phase-settings-real-a", "staging", "/"),
    }
    resolver.add(
        app.name, "development", "/backend", [s for s in every_folder if s.path == "/backend"]
    )
    resolver.add(app.name, "staging", None, staging_secrets)
    assert resolver.needed(root) == set()
    resolved = resolver.resolve(root)

    rest = parse_rest_secrets(exchange("user_appA_sse/06_REST_same_env_for_comparison").json())
    fields = ("id", "key", "value", "comment", "tags", "path", "version", "type", "override")
    assert [tuple(getattr(s, f) for f in fields) for s in resolved] == [
        tuple(getattr(s, f) for f in fields) for s in rest
    ]


# --- app and environment selection ------------------------------------------------------------


def test_tokens_reply_without_the_app_lists_what_the_token_can_read() -> None:
    access = _access("service_account", "sa_appB/01_GET_tokens")
    with pytest.raises(PhaseNotFoundError) as caught:
        access.app(APP_A)
    assert APP_A in str(caught.value)
    assert "phase-settings-e2ee-B" in str(caught.value)


def test_no_access_member_sees_no_apps() -> None:
    reply = exchange("errors/14_tokens_noaccess_member").json()
    assert reply["apps"] == []
    reply["wrapped_key_share"] = vectors()["user"]["tokens_response"]["wrapped_key_share"]
    access = parse_tokens(reply, TokenKeys.from_token(vectors()["user"]["token"]))
    with pytest.raises(PhaseNotFoundError, match="apps it can read: none"):
        access.app(APP_B)


@pytest.mark.parametrize("name", ["Production", "production", "PRODUCTION"])
def test_environment_names_match_exactly_ignoring_case(name: str) -> None:
    access = _access()
    assert access.environment(access.app(APP_B), name).name == "Production"


@pytest.mark.parametrize("name", ["prod", "Develop", "Production "])
def test_environment_names_never_match_by_substring(name: str) -> None:
    access = _access("service_account", "sa_appB/01_GET_tokens")
    with pytest.raises(PhaseNotFoundError) as caught:
        access.environment(access.app(APP_B), name)
    assert "Development" in str(caught.value) and "Staging" in str(caught.value)


def test_app_by_name_is_case_insensitive_and_unique() -> None:
    access = _access()
    assert access.app_named("PHASE-SETTINGS-REAL-A") == access.app(APP_A)
    twice = copy.deepcopy(exchange("user_appB/01_GET_tokens").json())
    twice["apps"].append(dict(twice["apps"][1], id="another"))
    ambiguous = parse_tokens(twice, TokenKeys.from_token(vectors()["user"]["token"]))
    assert ambiguous.app_named("phase-settings-real-A") is None


def test_apps_and_environments_listed_from_the_tokens_reply() -> None:
    access = _access()
    apps = {app.name: app for app in access.list_apps()}
    assert apps["phase-settings-e2ee-B"].sse_enabled is False
    assert apps["phase-settings-real-A"].sse_enabled is True
    envs = {env.name: env for env in access.list_environments(APP_B)}
    assert set(envs) == {"Development", "Staging", "Production"}
    assert (envs["Production"].env_type, envs["Production"].index) == ("prod", 2)
    assert envs["Development"].id == vectors()["user"]["environment_id"]


def test_tokens_reply_not_in_the_contract_shape_is_a_response_error() -> None:
    with pytest.raises(PhaseResponseError, match="wrapped_key_share"):
        parse_tokens({"apps": []}, TokenKeys.from_token(vectors()["user"]["token"]))


# --- writes -------------------------------------------------------------------------------------


def test_create_request_encrypts_for_the_environment_with_the_right_digest() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    request = create_request(
        HOST,
        "Bearer User x",
        keys,
        [{"key": "db_host", "value": "v-1", "comment": "c", "path": "/a", "tags": ["t"]}],
    )
    assert request is not None
    assert (request.method, request.headers["Environment"]) == ("POST", keys.env_id)
    (item,) = request.json["secrets"]
    assert keys.decrypt(item["key"]) == "DB_HOST"
    assert item["keyDigest"] == vectors()["user"]["digest"]["expected_hex"]
    assert (keys.decrypt(item["value"]), keys.decrypt(item["comment"])) == ("v-1", "c")
    assert (item["path"], item["tags"]) == ("/a", ["t"])
    assert "v-1" not in repr(request)
    recorded = exchange("user_appB/02_POST_batch_tags_comment_sealed_config").request_body
    assert all(f'"{field}"' in recorded.decode() for field in item)
    assert create_request(HOST, "x", keys, []) is None


def test_empty_comment_is_sent_empty_and_override_encrypted() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    request = create_request(
        HOST, "x", keys, [{"key": "K", "value": "", "override": {"value": "o", "is_active": True}}]
    )
    assert request is not None
    (item,) = request.json["secrets"]
    assert item["comment"] == ""
    assert keys.decrypt(item["override"]["value"]) == "o"
    assert item["override"]["isActive"] is True


def test_update_sends_tags_and_path_in_full_and_refuses_other_ids() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    current = {s.id: s for s in parse_secrets(exchange("user_appB/04_GET_Path_root").json(), keys)}
    tagged = next(s for s in current.values() if s.key == "TAGGED")
    request = update_request(HOST, "x", keys, [{"id": tagged.id, "value": "new"}], current)
    assert request is not None
    (item,) = request.json["secrets"]
    assert sorted(item["tags"]) == sorted(tagged.tags) and item["path"] == tagged.path
    assert keys.decrypt(item["key"]) == "TAGGED" and keys.decrypt(item["value"]) == "new"
    assert keys.decrypt(item["comment"]) == tagged.comment
    assert item["keyDigest"] == keys.digest("TAGGED")
    renamed = update_request(HOST, "x", keys, [{"id": tagged.id, "key": "new_name"}], current)
    assert renamed is not None
    assert keys.decrypt(renamed.json["secrets"][0]["key"]) == "NEW_NAME"
    assert renamed.json["secrets"][0]["keyDigest"] == keys.digest("NEW_NAME")
    with pytest.raises(PhaseNotFoundError, match="not-here"):
        update_request(HOST, "x", keys, [{"id": tagged.id}, {"id": "not-here"}], current)


def test_update_keeps_a_lower_case_key_written_by_another_client() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    lower = Secret("id-1", "sdk_lower_key", "v", path="/", tags=("t",))
    request = update_request(HOST, "x", keys, [{"id": "id-1", "value": "w"}], {"id-1": lower})
    assert request is not None
    (item,) = request.json["secrets"]
    assert keys.decrypt(item["key"]) == "sdk_lower_key"
    assert item["keyDigest"] == keys.digest("sdk_lower_key")
    assert item["tags"] == ["t"]


def test_delete_refuses_ids_of_other_environments() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    current = {s.id: s for s in parse_secrets(exchange("user_appB/04_GET_Path_root").json(), keys)}
    some_id = next(iter(current))
    request = delete_request(HOST, "x", keys, [some_id], current)
    assert request is not None and request.json == {"secrets": [some_id]}
    with pytest.raises(PhaseNotFoundError, match="staging-id"):
        delete_request(HOST, "x", keys, [some_id, "staging-id"], current)


def test_write_with_a_non_string_value_is_a_config_error() -> None:
    access = _access()
    keys = access.env_keys(access.environment(access.app(APP_B), "Development"))
    with pytest.raises(PhaseConfigError, match="'value'"):
        create_request(HOST, "x", keys, [{"key": "K", "value": 3}])


# --- status codes of the recorded errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "endpoint", "kind", "retry"),
    [
        ("errors/02_tokens_unknown_token", "tokens", PhaseAuthError, False),
        ("errors/07_secrets_unknown_token", "secrets", PhaseAuthError, False),
        ("errors/15_secrets_noaccess_member", "secrets", PhaseAuthError, False),
        ("sa_appB/04_GET_Production_no_access", "secrets", PhaseAuthError, False),
        ("errors/25_POST_missing_secrets_field", "secrets", PhaseServerError, False),
        ("errors/33_no_trailing_slash", "secrets", PhaseResponseError, False),
        ("throttle/A6_tokens_user", "tokens", PhaseRateLimitError, True),
    ],
)
def test_recorded_error_statuses_map_to_typed_errors(
    name: str, endpoint: str, kind: type[Exception], retry: bool
) -> None:
    recorded = exchange(name)
    error, retryable = error_for_status(
        recorded.status, recorded.body, endpoint=endpoint, method=recorded.method
    )
    assert type(error) is kind
    assert retryable is retry
    assert error.status == recorded.status


def test_a_500_to_a_read_is_retried_and_rate_limit_keeps_retry_after() -> None:
    error, retryable = error_for_status(500, b"", endpoint="secrets", method="GET")
    assert isinstance(error, PhaseServerError) and retryable
    recorded = exchange("throttle/A6_tokens_user")
    limited, _ = error_for_status(429, recorded.body, endpoint="tokens", retry_after=60.0)
    assert isinstance(limited, PhaseRateLimitError) and limited.retry_after == 60.0
    assert "per client IP" in str(limited)
