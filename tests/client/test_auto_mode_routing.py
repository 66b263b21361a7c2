"""``"auto"`` mode as the client's routing between the two APIs: a process that reads only SSE
apps never imports the E2EE modules or PyNaCl; an app without SSE is still read over the E2EE
API; what a client learns goes into the switch it holds (the process's by default)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from phase_settings import PhaseClient
from phase_settings._client.options import ClientOptions
from phase_settings._client.switch import PROCESS_SWITCH, AppSwitch
from phase_settings.testing import FakePhase

# one cold load of a PhaseSettings class in a fresh process, in the default ("auto") mode
LOAD = """
import json, sys
from phase_settings import PhaseSettings

class Settings(PhaseSettings):
    model_config = {"phase_app_id": sys.argv[1], "phase_env": "development",
                    "phase_token": sys.argv[2], "phase_host": sys.argv[3]}
    api_key: str

loaded = Settings().api_key
e2ee = sorted(m for m in sys.modules if m.split(".")[:2] == ["phase_settings", "_e2ee"])
nacl = sorted(m for m in sys.modules if m.split(".")[0] == "nacl")
print(json.dumps({"value": loaded, "e2ee": e2ee, "nacl": nacl}))
"""


@pytest.fixture(autouse=True)
def _fresh_switches() -> Iterator[None]:
    PROCESS_SWITCH.reset()
    yield
    PROCESS_SWITCH.reset()


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[str, str, str, str]]:
    """(url, token, SSE app, app without SSE), each app holding API_KEY."""
    fake = FakePhase()
    sse = fake.add_app("open")
    sealed = fake.add_app("sealed", sse=False)
    token = fake.add_service_account(envs=None)
    fake.set_secret(sse, "development", "API_KEY", "rest-value")
    fake.set_secret(sealed, "development", "API_KEY", "sealed-value")
    with fake.serve() as url:
        yield url, token, sse, sealed


def _load_in_a_fresh_process(url: str, token: str, app: str) -> dict[str, object]:
    env = {"PATH": "/usr/bin:/bin", "PHASE_CONFIG_PARENT_DIR_SEARCH_DEPTH": "0"}
    out = subprocess.run(
        [sys.executable, "-c", LOAD, app, token, url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_rest_only_process_imports_no_e2ee_module_and_no_pynacl(
    world: tuple[str, str, str, str],
) -> None:
    url, token, sse, _ = world
    loaded = _load_in_a_fresh_process(url, token, sse)
    assert loaded == {"value": "rest-value", "e2ee": [], "nacl": []}


def test_an_app_without_sse_is_still_read_in_auto_mode(world: tuple[str, str, str, str]) -> None:
    url, token, _, sealed = world
    loaded = _load_in_a_fresh_process(url, token, sealed)
    assert loaded["value"] == "sealed-value"
    assert "phase_settings._e2ee.plans" in loaded["e2ee"]  # type: ignore[operator]


def test_what_auto_mode_learns_goes_into_the_clients_switch(
    world: tuple[str, str, str, str],
) -> None:
    url, token, _, sealed = world
    options = ClientOptions(token=token, host=url, allow_http=True)
    own = AppSwitch()
    with PhaseClient.from_options(options, switch=own) as client:
        assert [s.value for s in client.list_secrets(sealed, "development")] == ["sealed-value"]
    assert own.is_e2ee(options.base_url, sealed)
    assert not PROCESS_SWITCH.is_e2ee(options.base_url, sealed)  # another switch: untouched
    own.reset()
    assert not own.is_e2ee(options.base_url, sealed)


def test_a_client_built_by_a_user_learns_into_the_process_switch(
    world: tuple[str, str, str, str],
) -> None:
    url, token, _, sealed = world
    with PhaseClient(token, url, allow_http=True) as client:
        client.list_secrets(sealed, "development")
        assert PROCESS_SWITCH.is_e2ee(client.base_url, sealed)
