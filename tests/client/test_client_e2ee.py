"""PhaseClient / AsyncPhaseClient in every mode against the loopback fake: apps without SSE read
and written over the end-to-end-encrypted API (decrypted on the client), the ``auto`` mode's
one-time switch, and the configuration of the mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from phase_settings import (
    AsyncPhaseClient,
    PhaseClient,
    PhaseConfigError,
    PhaseNotFoundError,
    PhaseSSEDisabledError,
    Secret,
)
from phase_settings._client.options import ClientOptions
from phase_settings._client.switch import PROCESS_SWITCH
from phase_settings._settings.config import resolve_config
from phase_settings.testing import FakePhase


@pytest.fixture(autouse=True)
def _fresh_switches() -> Iterator[None]:
    PROCESS_SWITCH.reset()
    yield
    PROCESS_SWITCH.reset()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Sealed:
    """A serving fake whose app "x" has no SSE, with a few secrets and references."""

    fake: FakePhase
    url: str
    app_id: str
    token: str

    def routes(self) -> list[str]:
        """The API of each request so far: "rest", "tokens" or "secrets"."""
        names = []
        for request in self.fake.requests:
            if request.path.startswith("/service/public/"):
                names.append("rest")
            elif request.path.endswith("/tokens/"):
                names.append("tokens")
            else:
                names.append("secrets")
        return names


@pytest.fixture
def sealed() -> Iterator[Sealed]:
    fake = FakePhase()
    app_id = fake.add_app("x", sse=False)
    fake.set_secret(app_id, "development", "HOST", "db.internal", comment="the db", tags=("be",))
    fake.set_secret(app_id, "development", "URL", "pg://${HOST}/${/conf/NAME}")
    fake.set_secret(app_id, "development", "NAME", "main", path="/conf")
    fake.set_secret(app_id, "production", "HOST", "db.prod")
    fake.set_secret(app_id, "development", "PROD", "${production.HOST}")
    token = fake.add_service_account(envs=None)
    with fake.serve() as url:
        yield Sealed(fake, url, app_id, token)


def values(secrets: list[Secret]) -> dict[str, str]:
    return {f"{s.path}:{s.key}": s.value for s in secrets}


EXPECTED = {
    "/:HOST": "db.internal",
    "/:URL": "pg://db.internal/main",
    "/:PROD": "db.prod",
}


@pytest.mark.parametrize("mode", ["e2ee", "auto"])
def test_every_method_works_on_an_app_without_sse(sealed: Sealed, mode: str) -> None:
    with PhaseClient(sealed.token, sealed.url, mode=mode) as client:  # type: ignore[arg-type]
        listed = client.list_secrets(sealed.app_id, "Development")
        assert values(listed) == EXPECTED
        host = next(s for s in listed if s.key == "HOST")
        assert (host.comment, host.tags, host.version) == ("the db", ("be",), 1)
        assert values(client.list_secrets(sealed.app_id, "development", path=None)) == {
            **EXPECTED,
            "/conf:NAME": "main",
        }
        assert values(client.list_secrets(sealed.app_id, "development", key="url")) == {
            "/:URL": "pg://db.internal/main"
        }
        assert [s.key for s in client.list_secrets(sealed.app_id, "development", tags=["be"])] == [
            "HOST"
        ]

        [made] = client.create_secrets(
            sealed.app_id, "development", [{"key": "new_one", "value": "${HOST}:5432"}]
        )
        assert (made.key, made.value, made.path) == ("NEW_ONE", "db.internal:5432", "/")
        [changed] = client.update_secrets(
            sealed.app_id, "development", [{"id": host.id, "value": "db2"}]
        )
        assert (changed.value, changed.comment, changed.tags) == ("db2", "the db", ("be",))
        assert changed.version == 2
        # The reference in URL was kept as stored, not replaced by its resolved value.
        again = values(client.list_secrets(sealed.app_id, "development"))
        assert again["/:URL"] == "pg://db2/main" and again["/:NEW_ONE"] == "db2:5432"
        assert client.delete_secrets(sealed.app_id, "development", [made.id]) == 1
        assert "/:NEW_ONE" not in values(client.list_secrets(sealed.app_id, "development"))

        assert [e.name for e in client.list_environments(sealed.app_id)] == [
            "Development",
            "Staging",
            "Production",
        ]
        [app] = client.list_apps()
        assert (app.id, app.name, app.sse_enabled) == (sealed.app_id, "x", False)
    # What the server holds is still ciphertext only.
    stored = sealed.fake.get_secret(sealed.app_id, "development", "HOST")
    assert stored is not None and stored["value"].startswith("ph:v1:")


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["e2ee", "auto"])
async def test_the_async_client_in_each_mode(sealed: Sealed, mode: str, anyio_backend: str) -> None:
    async with AsyncPhaseClient(sealed.token, sealed.url, mode=mode) as client:  # type: ignore[arg-type]
        assert values(await client.list_secrets(sealed.app_id, "development")) == EXPECTED
        [made] = await client.create_secrets(
            sealed.app_id, "development", [{"key": "A", "value": "a", "path": "/conf"}]
        )
        assert (made.key, made.value, made.path) == ("A", "a", "/conf")
        [changed] = await client.update_secrets(
            sealed.app_id, "development", [{"id": made.id, "value": "${/conf/NAME}!"}]
        )
        assert changed.value == "main!"
        assert await client.delete_secrets(sealed.app_id, "development", [made.id]) == 1
        assert len(await client.list_environments(sealed.app_id)) == 3
        assert [a.name for a in await client.list_apps()] == ["x"]


def test_auto_mode_asks_rest_once_per_process(sealed: Sealed) -> None:
    with PhaseClient(sealed.token, sealed.url) as client:
        assert client.mode == "auto"
        assert values(client.list_secrets(sealed.app_id, "development")) == EXPECTED
        # The first load: REST refuses, then the tokens and the secrets requests, plus one for
        # each other folder (/conf) and environment (production) that references need.
        assert sealed.routes() == ["rest", "tokens", "secrets", "secrets", "secrets"]
    sealed.fake.clear_requests()
    with PhaseClient(sealed.token, sealed.url) as other:  # another client, the same process
        other.list_secrets(sealed.app_id, "development", path="/conf")
        assert sealed.routes() == ["tokens", "secrets"]
    sealed.fake.clear_requests()
    PROCESS_SWITCH.reset()  # the hook: forgotten, REST is asked again
    with PhaseClient(sealed.token, sealed.url) as client:
        client.list_secrets(sealed.app_id, "development", path="/conf")
    assert sealed.routes() == ["rest", "tokens", "secrets"]


def test_auto_mode_keeps_rest_for_sse_apps(sealed: Sealed) -> None:
    open_app = sealed.fake.add_app("open")
    sealed.fake.set_secret(open_app, "development", "K", "v")
    with PhaseClient(sealed.token, sealed.url) as client:
        for _ in range(2):
            assert values(client.list_secrets(open_app, "development")) == {"/:K": "v"}
    assert sealed.routes() == ["rest", "rest"]


def rest_form(token: str) -> str:
    return "ServiceAccount " + token.split(":")[2]


def test_a_token_without_key_parts_keeps_the_sse_error_in_auto_mode(sealed: Sealed) -> None:
    with PhaseClient(rest_form(sealed.token), sealed.url) as client:
        with pytest.raises(PhaseSSEDisabledError) as info:
            client.list_secrets(sealed.app_id, "development")
        with pytest.raises(PhaseSSEDisabledError):
            client.list_secrets(sealed.app_id, "development")
    assert "pss_ token that carries key parts" in str(info.value)
    assert sealed.routes() == ["rest", "rest"]  # never switched: nothing to decrypt with


def test_e2ee_mode_with_a_token_without_key_parts_fails_before_any_request(
    sealed: Sealed,
) -> None:
    with pytest.raises(PhaseConfigError, match="key parts of a pss_ token"):
        PhaseClient(rest_form(sealed.token), sealed.url, mode="e2ee")
    assert sealed.fake.requests == []


def test_a_mode_is_one_of_three(sealed: Sealed, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PhaseConfigError, match=r"'auto'.*'sse'.*'e2ee'"):
        PhaseClient(sealed.token, sealed.url, mode="rest")  # type: ignore[arg-type]
    monkeypatch.setenv("PHASE_MODE", "SSE")
    with PhaseClient(sealed.token, sealed.url) as client:
        assert client.mode == "sse"
        with pytest.raises(PhaseSSEDisabledError):
            client.list_secrets(sealed.app_id, "development")
    assert PhaseClient(sealed.token, sealed.url, mode="e2ee").mode == "e2ee"  # argument wins


def test_phase_mode_in_the_settings_table(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "pss_service:v2:" + "ab" * 32
    assert resolve_config({"phase_token": token}, {}).mode == "auto"
    assert resolve_config({"phase_token": token, "phase_mode": "e2ee"}, {}).mode == "e2ee"
    monkeypatch.setenv("PHASE_MODE", "sse")  # the environment beats model_config
    config = resolve_config({"phase_token": token, "phase_mode": "e2ee"}, {})
    assert config.mode == "sse" and ClientOptions.from_config(config).mode == "sse"
    monkeypatch.setenv("PHASE_MODE", "fast")
    with pytest.raises(PhaseConfigError, match="PHASE_MODE must be 'auto'"):
        resolve_config({"phase_token": token}, {})


def test_unknown_ids_are_refused_before_anything_is_written(sealed: Sealed) -> None:
    with PhaseClient(sealed.token, sealed.url, mode="e2ee") as client:
        sealed.fake.clear_requests()
        with pytest.raises(PhaseNotFoundError, match="no-such-id"):
            client.update_secrets(
                sealed.app_id, "development", [{"id": "no-such-id", "value": "x"}]
            )
        with pytest.raises(PhaseNotFoundError, match="no-such-id"):
            client.delete_secrets(sealed.app_id, "development", ["no-such-id"])
    assert {r.method for r in sealed.fake.requests} == {"GET"}
    assert sealed.fake.get_secret(sealed.app_id, "development", "HOST") is not None


def test_a_500_to_an_e2ee_write_is_not_retried(sealed: Sealed) -> None:
    with PhaseClient(sealed.token, sealed.url, mode="e2ee", sleep=lambda _: None) as client:
        [host] = client.list_secrets(sealed.app_id, "development", key="HOST")
        sealed.fake.clear_requests()
        # tokens and secrets answer normally; the PUT gets the 500
        sealed.fake.fail_next(None, delay=0.001, times=2)
        sealed.fake.fail_next(500)
        with pytest.raises(Exception) as info:
            client.update_secrets(sealed.app_id, "development", [{"id": host.id, "value": "v"}])
    assert type(info.value).__name__ == "PhaseServerError" and "not retried" in str(info.value)
    assert [r.method for r in sealed.fake.requests].count("PUT") == 1


def test_a_503_to_an_e2ee_read_is_retried(sealed: Sealed) -> None:
    waits: list[float] = []
    with PhaseClient(sealed.token, sealed.url, mode="e2ee", sleep=waits.append) as client:
        sealed.fake.fail_next(503)
        assert values(client.list_secrets(sealed.app_id, "development", path="/conf")) == {
            "/conf:NAME": "main"
        }
    assert len(waits) == 1 and sealed.routes() == ["tokens", "tokens", "secrets"]


def test_the_readme_example(sealed: Sealed, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [code] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if 'mode="e2ee"' in b]
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", sealed.token)
    monkeypatch.setenv("PHASE_HOST", sealed.url)
    sealed.fake.set_secret(sealed.app_id, "production", "P", "p")
    namespace: dict[str, object] = {"app_id": sealed.app_id}
    exec(compile(code, "README.md", "exec", dont_inherit=True), namespace)
    assert namespace["keys"] == ["HOST", "P"]
    assert set(sealed.routes()) == {"tokens", "secrets"}


def test_auto_mode_switches_on_the_environments_route_too(sealed: Sealed) -> None:
    """REST answers 403 "SSE is not enabled for this App." for an app's environments."""
    with PhaseClient(sealed.token, sealed.url) as client:
        assert len(client.list_environments(sealed.app_id)) == 3
        assert sealed.routes() == ["rest", "tokens"]
        [secret] = client.list_secrets(sealed.app_id, "production")
    assert secret.value == "db.prod" and sealed.routes()[2:] == ["tokens", "secrets"]


def test_an_unreachable_e2ee_host_is_named_in_the_error() -> None:
    import socket

    from phase_settings import PhaseConnectionError

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    token = FakePhase().add_service_account()
    with PhaseClient(token, f"http://127.0.0.1:{port}", mode="e2ee", max_attempts=1) as client:
        with pytest.raises(PhaseConnectionError) as info:
            client.list_secrets("app", "development")
    assert f"Could not reach Phase at http://127.0.0.1:{port}:" in str(info.value)
    assert "/service/public" not in str(info.value)  # the E2EE API's host, not the REST base


def test_no_key_material_outlives_the_call(sealed: Sealed) -> None:
    """After each call the client holds no token keys, account keys or environment keys: the
    next call asks for them again (one tokens request per call)."""
    import gc

    from phase_settings._e2ee.keys import AccountKeys, EnvKeys, TokenKeys
    from phase_settings._e2ee.replies import TokenAccess

    holders = (TokenKeys, AccountKeys, EnvKeys, TokenAccess)

    def reachable(root: object) -> list[object]:
        seen: set[int] = set()
        found: list[object] = []
        todo = [root]
        while todo and len(seen) < 100_000:
            obj = todo.pop()
            if id(obj) in seen or isinstance(obj, type):
                continue
            seen.add(id(obj))
            if isinstance(obj, holders):
                found.append(obj)
            todo.extend(gc.get_referents(obj))
        return found

    with PhaseClient(sealed.token, sealed.url, mode="e2ee") as client:
        client.list_secrets(sealed.app_id, "development")
        client.create_secrets(sealed.app_id, "development", [{"key": "K", "value": "v"}])
        assert reachable(client) == []
        sealed.fake.clear_requests()
        client.list_secrets(sealed.app_id, "development", path="/conf")
    assert sealed.routes() == ["tokens", "secrets"]
