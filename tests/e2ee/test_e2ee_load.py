"""A whole E2EE load driven by recorded replies of a real Phase server: the requests it makes
(two for a cold load without references elsewhere, one more per referenced folder, none of
them twice), the errors of a token that cannot read the app, and the values it ends with."""

from __future__ import annotations

from typing import Any

import pytest

from phase_settings import PhaseAuthError, PhaseError, PhaseNotFoundError, PhaseResponseError
from phase_settings._e2ee.api import Request
from phase_settings._e2ee.keys import TokenKeys
from phase_settings._e2ee.load import E2EELoad
from phase_settings._models import parse_secrets as parse_rest_secrets
from tests._e2ee_data import exchange, vectors

APP_A = "ea0e8934-0dea-4193-96ce-ddbaa25044ea"
APP_B = "c3ceeb59-41f0-4f3a-99a7-d1efc1c34932"
HOST = "http://127.0.0.1:47321"


class Recorded:
    """Answers requests from the recordings, as the server did; counts what was asked."""

    def __init__(self, tokens: str = "user_appB/01_GET_tokens") -> None:
        self.tokens = exchange(tokens).json()
        self.folders: dict[str, list[Any]] = {}
        for name in (
            "user_appA_sse/01_GET_Development_all_paths",
            "user_appA_sse/03_GET_Staging",
            "user_appA_sse/04_GET_Production",
            "user_appB/03_GET_all_paths_no_Path_header",
            "user_appB/12_GET_Staging",
        ):
            recorded = exchange(name)
            self.folders[recorded.request_headers["environment"]] = recorded.json()
        self.sent: list[Request] = []
        self.refuse: set[str] = set()

    def __call__(self, request: Request) -> Any:
        self.sent.append(request)
        if request.url.endswith("/tokens/"):
            return self.tokens
        env = request.headers["Environment"]
        if env in self.refuse:
            raise PhaseAuthError("refused", status=401)
        items = self.folders[env]
        path = request.headers.get("Path")
        tags = request.headers.get("Tags")
        return [
            item
            for item in items
            if (path is None or item["path"] == path)
            and (tags is None or set(item["tags"]) & set(tags.split(",")))
        ]


def run(load: E2EELoad, server: Recorded) -> list[list[Any]]:
    for _ in range(50):
        batch = load.pending()
        if not batch:
            return load.result()
        for item in batch:
            try:
                load.feed(item, server(item.request))
            except PhaseError as error:
                load.failed(item, error)
    raise AssertionError("the load never finished")


def new_load(app_id: str = APP_A, env: str = "Development", **kwargs: Any) -> E2EELoad:
    kwargs.setdefault("paths", ("/",))
    return E2EELoad(
        host=HOST,
        authorization=vectors()["user"]["authorization_header"],
        token=TokenKeys.from_token(vectors()["user"]["token"]),
        app_id=app_id,
        env=env,
        **kwargs,
    )


def _fields(secrets: list[Any]) -> list[tuple[Any, ...]]:
    names = ("id", "key", "value", "comment", "tags", "path", "version", "type")
    return [tuple(getattr(s, n) for n in names) for s in secrets]


def test_cold_load_of_an_sse_app_matches_the_rest_reply_with_one_request_per_folder() -> None:
    server = Recorded()
    (root,) = run(new_load(), server)
    rest = parse_rest_secrets(exchange("user_appA_sse/06_REST_same_env_for_comparison").json())
    assert _fields(root) == _fields(rest)
    sent = [(r.url[len(HOST) :], r.headers.get("Path")) for r in server.sent]
    # tokens, the root, then the two folders the references need: /backend and Staging's root
    assert sent[:2] == [("/service/secrets/tokens/", None), ("/service/secrets/", "/")]
    assert sorted(sent[2:], key=str) == [
        ("/service/secrets/", "/"),
        ("/service/secrets/", "/backend"),
    ]
    assert len(server.sent) == 4


def test_a_load_without_references_elsewhere_makes_two_requests_then_one_with_access() -> None:
    server = Recorded()
    load = new_load(APP_A, "production")
    (prod,) = run(load, server)
    assert [(s.key, s.value) for s in prod] == [("DB_HOST", "db.prod.internal")]
    assert len(server.sent) == 2
    again = new_load(APP_A, "Production", access=load.access)
    run(again, server)
    assert len(server.sent) == 3  # the tokens reply (and its opened keys) reused


def test_every_folder_at_once_needs_no_extra_request_for_its_own_folders() -> None:
    server = Recorded()
    (every,) = run(new_load(paths=(None,)), server)
    values = {(s.path, s.key): s.value for s in every}
    assert values[("/", "API_KEY_COPY")] == "sk_test_abc123"
    assert values[("/", "FROM_STAGING")] == "staging-shared-123"
    assert len(server.sent) == 3  # tokens, every folder, Staging's root


def test_app_b_values_are_the_vector_plaintexts() -> None:
    server = Recorded()
    (root,) = run(new_load(APP_B, "development"), server)
    by_id = {s.id: s for s in root}
    for vec in vectors()["user"]["secrets"]:
        plain = vec["expected_plaintext"]
        secret = by_id[vec["id"]]
        assert (secret.key, secret.value) == (plain["key"], plain["value"])
        assert secret.effective_value == plain.get("override_value", plain["value"])


def test_tag_filtered_load_still_resolves_against_the_whole_folder() -> None:
    server = Recorded()
    (tagged,) = run(new_load(APP_B, "Development", tags=("billing",)), server)
    assert tagged and all("billing" in s.tags for s in tagged)
    assert server.sent[1].headers["Tags"] == "billing"


def test_a_referenced_environment_the_server_refuses_stays_literal() -> None:
    server = Recorded()
    staging = exchange("user_appA_sse/03_GET_Staging").request_headers["environment"]
    server.refuse.add(staging)
    (root,) = run(new_load(), server)
    values = {s.key: s.value for s in root}
    assert values["FROM_STAGING"] == "${staging.SHARED_TOKEN}"
    assert values["API_KEY_COPY"] == "sk_test_abc123"


def test_a_token_without_the_app_lists_what_it_can_read() -> None:
    server = Recorded("sa_appB/01_GET_tokens")
    load = E2EELoad(
        host=HOST,
        authorization=vectors()["service_account"]["authorization_header"],
        token=TokenKeys.from_token(vectors()["service_account"]["token"]),
        app_id=APP_A,
        env="Development",
        paths=("/",),
    )
    with pytest.raises(PhaseNotFoundError, match="phase-settings-e2ee-B"):
        run(load, server)
    assert len(server.sent) == 1


def test_an_environment_the_token_cannot_read_is_not_found_before_reading_secrets() -> None:
    server = Recorded("sa_appB/01_GET_tokens")
    load = E2EELoad(
        host=HOST,
        authorization=vectors()["service_account"]["authorization_header"],
        token=TokenKeys.from_token(vectors()["service_account"]["token"]),
        app_id=APP_B,
        env="Production",
        paths=("/",),
    )
    with pytest.raises(PhaseNotFoundError, match=r"Development, Staging|Staging, Development"):
        run(load, server)
    assert len(server.sent) == 1


def test_a_failed_home_request_is_the_loads_error() -> None:
    server = Recorded()
    server.refuse.add(exchange("user_appA_sse/04_GET_Production").request_headers["environment"])
    with pytest.raises(PhaseAuthError):
        run(new_load(APP_A, "Production"), server)


def test_an_altered_home_reply_is_a_response_error_naming_the_key() -> None:
    server = Recorded()
    items = server.folders[
        exchange("user_appA_sse/04_GET_Production").request_headers["environment"]
    ]
    head, body = items[0]["value"].rsplit(":", 1)
    items[0]["value"] = f"{head}:{body[:-6]}AAAA=="
    with pytest.raises(PhaseResponseError, match="DB_HOST"):
        run(new_load(APP_A, "Production"), server)


def test_result_before_the_load_is_complete_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not complete"):
        new_load().result()
    with pytest.raises(RuntimeError, match="not complete"):
        new_load().unresolved()


def test_unresolved_keeps_references_as_stored_for_updates() -> None:
    load = new_load()
    run(load, Recorded())
    (stored,) = load.unresolved()
    values = {s.key: s.value for s in stored}
    assert values["DATABASE_URL"] == "postgres://app:pw@${DB_HOST}:${DB_PORT}/appdb"


def test_a_load_of_no_folder_only_opens_the_environment_keys_for_a_write() -> None:
    server = Recorded()
    load = new_load(APP_B, "Development", paths=())
    assert run(load, server) == []
    assert load.env_keys is not None
    assert load.env_keys.public_key_hex == vectors()["user"]["expected"]["env_public_key_hex"]
    assert len(server.sent) == 1


def test_dynamic_secret_items_in_a_reply_are_skipped() -> None:
    # Phase mixes dynamic secrets into the list with another shape (name, keyMap, lease; no
    # key nor value): the load returns the static secrets as if they were not there.
    server = Recorded()
    (plain,) = run(new_load(APP_A, "production"), server)
    env = server.sent[1].headers["Environment"]
    dynamic = {
        "id": "5d1c7a4e-0000-4000-8000-000000000001",
        "name": "aws-creds",
        "type": "dynamic",
        "description": "",
        "environment": env,
        "folder": None,
        "path": "/",
        "default_ttl": 3600,
        "max_ttl": 86400,
        "provider": "aws",
        "key_map": [{"id": "k1", "key_name": "USERNAME", "key_digest": "d1"}],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "deleted_at": None,
        "lease": {"credentials": [{"key": "USERNAME", "value": "AKIA-sekrit"}]},
    }
    server.folders[env] = [*server.folders[env], dynamic]
    (with_dynamic,) = run(new_load(APP_A, "production"), server)
    assert _fields(with_dynamic) == _fields(plain)
    assert [(s.key, s.value) for s in with_dynamic] == [("DB_HOST", "db.prod.internal")]
