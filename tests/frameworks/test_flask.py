"""The Flask integration and the example app, run for real: ``serve-fake`` and ``flask run``
as subprocesses on 127.0.0.1, queried with httpx; a secret rotated in Phase shows up after the
refresh interval."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from phase_settings import PhaseClient, PhaseSettings, PhaseSettingsConfigDict
from phase_settings.testing import FakePhase
from tests._subprocesses import (
    PYTHON,
    ROOT,
    FakeServer,
    clean_env,
    free_port,
    run,
    serve_app,
    serve_fake,
)

flask = pytest.importorskip("flask")

EXAMPLE = ROOT / "examples" / "flask"
SEED = json.loads((EXAMPLE / "seed.json").read_text(encoding="utf-8"))
DEV = SEED["apps"][0]["environments"]["Development"]["/"]
FLASK = [PYTHON, "-m", "flask", "--app", str(EXAMPLE / "app.py")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    with serve_fake(EXAMPLE / "seed.json", tmp=tmp_path_factory.mktemp("flask-fake")) as fake:
        yield fake


@pytest.fixture(scope="module")
def site(server: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serve_app(
        [*FLASK, "run", "--host", "127.0.0.1", "--port", str(port)],
        url=url + "/",
        env=server.env({"REFRESH_INTERVAL": "1"}),
        tmp=tmp_path_factory.mktemp("flask-site"),
        name="flask-run",
    ):
        yield url


def test_the_example_serves_values_and_follows_a_rotation(server: FakeServer, site: str) -> None:
    first = httpx.get(site + "/", timeout=10).json()
    assert first == {
        "greeting": DEV["GREETING"],
        "max_items": int(DEV["MAX_ITEMS"]),
        "features": DEV["FEATURES"],
        "secret_key_set": True,
        "source": "phase",
    }
    with PhaseClient(server.token, host=server.url) as client:
        [greeting] = client.list_secrets(server.app_id, "development", key="GREETING")
        client.update_secrets(
            server.app_id, "development", [{"id": greeting.id, "value": "Rotated greeting"}]
        )
    try:
        deadline = time.monotonic() + 10  # refresh interval 1 s (+-10 %), generous margin
        while True:
            body = httpx.get(site + "/", timeout=10).json()
            if body["greeting"] == "Rotated greeting":
                break
            assert time.monotonic() < deadline, "the rotated value never showed up"
            time.sleep(0.2)
        assert body["max_items"] == int(DEV["MAX_ITEMS"])
    finally:
        with PhaseClient(server.token, host=server.url) as client:
            client.update_secrets(
                server.app_id, "development", [{"id": greeting.id, "value": DEV["GREETING"]}]
            )


def test_flask_phase_check(server: FakeServer, tmp_path: Path) -> None:
    result = run([*FLASK, "phase", "check"], env=server.env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "app:Settings" in result.stdout
    assert "secret_key  phase /  ****" in result.stdout
    assert DEV["SECRET_KEY"] not in result.stdout + result.stderr

    (tmp_path / "broken_flask_settings.py").write_text(
        textwrap.dedent(
            """
            from phase_settings import PhaseSettings

            class Settings(PhaseSettings):
                greeting: str
                not_in_phase: int
            """
        ),
        encoding="utf-8",
    )
    env = server.env({"PYTHONPATH": str(tmp_path)})
    invalid = run([*FLASK, "phase", "check", "broken_flask_settings:Settings"], env=env)
    assert invalid.returncode == 1
    assert "not_in_phase: missing" in invalid.stdout
    unknown = run([*FLASK, "phase", "check", "nowhere:Settings"], env=env)
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr
    as_json = run([*FLASK, "phase", "check", "--json", "--show-values"], env=env)
    assert as_json.returncode == 0
    fields = {f["name"]: f for f in json.loads(as_json.stdout)["fields"]}
    assert fields["max_items"]["value"] == int(DEV["MAX_ITEMS"])
    assert fields["secret_key"]["value"] == "****"


# --- PhaseConfig in process ----------------------------------------------------------------------


class Nested(BaseModel):
    host: str = "h"
    password: SecretStr = SecretStr("p")


@pytest.fixture
def flask_settings(fake_phase: FakePhase) -> Iterator[tuple[FakePhase, str, type[PhaseSettings]]]:
    app_id = fake_phase.add_app("flask")
    fake_phase.set_secret(app_id, "development", "SECRET_KEY", "from-phase")
    fake_phase.set_secret(app_id, "development", "GREETING", "hi")
    token = fake_phase.add_service_account(envs=None)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(
            phase_app_id=app_id, phase_token=token, phase_host=fake_phase.url
        )
        secret_key: SecretStr
        greeting: str = "default"
        nested: Nested = Nested()

    yield fake_phase, app_id, Settings


def test_phase_config_loads_into_app_config(
    flask_settings: tuple[FakePhase, str, type[PhaseSettings]],
) -> None:
    from phase_settings.flask import PhaseConfig

    _, _, settings_cls = flask_settings
    app = flask.Flask("test")
    PhaseConfig(app, settings_cls)
    assert app.config["SECRET_KEY"] == "from-phase"  # a str, as Flask expects
    assert app.config["GREETING"] == "hi"
    assert app.config["NESTED"] == {"host": "h", "password": "p"}
    instance = app.extensions["phase_settings"]
    assert isinstance(instance, settings_cls)
    assert PhaseConfig.live_settings(app) is None
    with app.test_request_context():
        assert "phase" in app.cli.commands


def test_phase_config_refresh_updates_config_and_extension(
    flask_settings: tuple[FakePhase, str, type[PhaseSettings]],
) -> None:
    from phase_settings.flask import PhaseConfig

    fake, app_id, settings_cls = flask_settings
    phase = PhaseConfig(settings_cls=settings_cls, refresh_interval=60)
    first, second = flask.Flask("one"), flask.Flask("two")  # an app factory, twice
    phase.init_app(first)
    phase.init_app(second, refresh_interval=30)
    lives = [PhaseConfig.live_settings(app) for app in (first, second)]
    try:
        assert all(live is not None for live in lives)
        fake.set_secret(app_id, "development", "GREETING", "rotated")
        for app, live in zip((first, second), lives, strict=True):
            assert live is not None
            assert live.refresh() == frozenset({"greeting"})
            assert app.config["GREETING"] == "rotated"
            assert app.extensions["phase_settings"].greeting == "rotated"
            assert app.config["SECRET_KEY"] == "from-phase"
    finally:
        for live in lives:
            if live is not None:
                live.stop()


def test_phase_config_argument_errors(
    flask_settings: tuple[FakePhase, str, type[PhaseSettings]],
) -> None:
    from phase_settings.flask import PhaseConfig

    _, _, settings_cls = flask_settings
    with pytest.raises(TypeError):
        PhaseConfig(flask.Flask("x"))
    with pytest.raises(ValueError):
        PhaseConfig(flask.Flask("y"), settings_cls, refresh_interval=0.5)


def test_import_without_flask_names_the_extra() -> None:
    probe = (
        "import sys; sys.modules['flask'] = None\n"
        "try:\n    import phase_settings.flask\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = run([PYTHON, "-c", probe], env=clean_env())
    assert "pip install phase-settings[flask]" in result.stdout


@pytest.mark.parametrize("fault", ["phase-down", "wrong-env"])
def test_flask_phase_check_reports_a_settings_load_failure_in_one_line(
    server: FakeServer, fault: str
) -> None:
    """create_app cannot load its settings: ``flask phase check`` (the real ``flask`` command)
    prints one line and exits 3, never a traceback."""
    extra = (
        {"PHASE_HOST": f"http://127.0.0.1:{free_port()}"}
        if fault == "phase-down"
        else {"PHASE_ENV": "no-such-env"}
    )
    result = run([*FLASK, "phase", "check"], env=server.env(extra))
    assert result.returncode == 3, result.stderr
    # on a loaded machine the refused retries can reach 2 s: the load's one "waiting for
    # Phase" WARNING then comes first (DESIGN §4); the failure itself is still one line
    lines = [x for x in result.stderr.splitlines() if not x.startswith("waiting for Phase at ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("flask phase check: error: ")
    assert "Traceback" not in result.stderr
    expected = "Could not reach Phase" if fault == "phase-down" else "no-such-env"
    assert expected in lines[0]
    assert server.token not in result.stderr + result.stdout


def test_flask_phase_check_reports_settings_loaded_at_import(
    server: FakeServer, tmp_path: Path
) -> None:
    """An app module that loads its settings at import (no factory): the same one line, exit 3;
    an app without PhaseConfig: a usage error, exit 2."""
    (tmp_path / "eager_app.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask
            from phase_settings import PhaseSettings
            from phase_settings.flask import PhaseConfig

            class Settings(PhaseSettings):
                secret_key: str

            settings = Settings()
            app = Flask(__name__)
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "plain_app.py").write_text(
        "from flask import Flask\napp = Flask(__name__)\n", encoding="utf-8"
    )
    env = server.env({"PHASE_ENV": "no-such-env"})
    eager = run(
        [PYTHON, "-m", "flask", "--app", "eager_app", "phase", "check"], env=env, cwd=tmp_path
    )
    assert eager.returncode == 3, eager.stderr
    assert len(eager.stderr.splitlines()) == 1 and "no-such-env" in eager.stderr
    plain = run(
        [PYTHON, "-m", "flask", "--app", "plain_app", "phase", "check"], env=env, cwd=tmp_path
    )
    assert plain.returncode == 2, plain.stderr
    assert len(plain.stderr.splitlines()) == 1 and "PhaseConfig" in plain.stderr


def test_integrations_do_not_import_the_command_line() -> None:
    probe = (
        "import sys, phase_settings.flask, phase_settings.django\n"
        "from phase_settings.django.management.commands import phase_check\n"
        "print('phase_settings.cli' in sys.modules)\n"
    )
    result = run([PYTHON, "-c", probe], env=clean_env())
    assert result.stdout.strip() == "False", result.stderr
