"""The Django integration and the example project, run for real: ``serve-fake`` and
``manage.py runserver --noreload`` as subprocesses on 127.0.0.1, queried with httpx."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from phase_settings import PhaseSettings
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

pytest.importorskip("django")

EXAMPLE = ROOT / "examples" / "django"
SEED = json.loads((EXAMPLE / "seed.json").read_text(encoding="utf-8"))
DEV = SEED["apps"][0]["environments"]["Development"]["/"]
MANAGE = [PYTHON, str(EXAMPLE / "manage.py")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    with serve_fake(EXAMPLE / "seed.json", tmp=tmp_path_factory.mktemp("django-fake")) as fake:
        yield fake


@pytest.fixture(scope="module")
def site(server: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    port = url.rsplit(":", 1)[1]
    with serve_app(
        [*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
        url=url + "/",
        env=server.env(),
        tmp=tmp_path_factory.mktemp("django-site"),
        cwd=EXAMPLE,
        name="runserver",
    ):
        yield url


def test_the_example_serves_values_from_phase(site: str) -> None:
    response = httpx.get(site + "/", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "greeting": DEV["GREETING"],
        "items_per_page": int(DEV["ITEMS_PER_PAGE"]),
        "debug": False,
        "allowed_hosts": DEV["ALLOWED_HOSTS"],
        "secret_key_set": True,
    }
    assert DEV["SECRET_KEY"] not in response.text


def test_phase_check_reports_and_exits_0(server: FakeServer) -> None:
    result = run([*MANAGE, "phase_check"], env=server.env(), cwd=EXAMPLE)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "demo_site.settings:Settings" in out
    assert "secret_key      phase /  ****" in out
    assert "LEGACY_FLAG (/)" in out  # a key no field reads
    assert DEV["SECRET_KEY"] not in out + result.stderr
    assert DEV["GREETING"] not in out  # values from Phase are masked by default

    shown = run([*MANAGE, "phase_check", "--json", "--show-values"], env=server.env(), cwd=EXAMPLE)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    fields = {f["name"]: f for f in report["fields"]}
    assert fields["greeting"]["value"] == DEV["GREETING"]
    assert fields["secret_key"]["value"] == "****"
    assert report["phase"]["app_id"] == server.app_id


def test_phase_check_exit_codes(server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "broken_settings.py").write_text(
        textwrap.dedent(
            """
            from phase_settings import PhaseSettings

            class Settings(PhaseSettings):
                secret_key: str
                not_in_phase: int
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "offline_settings.py").write_text(
        textwrap.dedent(
            f"""
            from pathlib import Path
            from phase_settings import PhaseSettings, PhaseSettingsSource

            class Settings(PhaseSettings):
                model_config = {{"env_file": str(Path(__file__).with_name("offline.env"))}}
                secret_key: str

                @classmethod
                def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                               dotenv_settings, file_secret_settings):
                    phase = PhaseSettingsSource(
                        settings_cls, host="http://127.0.0.1:{free_port()}", deadline=1
                    )
                    return init_settings, env_settings, phase, dotenv_settings
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "offline.env").write_text("SECRET_KEY=local\n", encoding="utf-8")
    env = server.env({"PYTHONPATH": str(tmp_path)})

    invalid = run([*MANAGE, "phase_check", "broken_settings:Settings"], env=env, cwd=EXAMPLE)
    assert invalid.returncode == 1, invalid.stderr
    assert "not_in_phase: missing" in invalid.stdout
    assert "Traceback" not in invalid.stderr

    unknown = run([*MANAGE, "phase_check", "no_such_module:Settings"], env=env, cwd=EXAMPLE)
    assert unknown.returncode == 2
    assert "no_such_module" in unknown.stderr and "Traceback" not in unknown.stderr

    fallback = run([*MANAGE, "phase_check", "offline_settings:Settings"], env=env, cwd=EXAMPLE)
    assert fallback.returncode == 0, fallback.stderr
    assert "FALLBACK" in fallback.stdout
    strict = run(
        [*MANAGE, "phase_check", "offline_settings:Settings", "--strict"], env=env, cwd=EXAMPLE
    )
    assert strict.returncode == 3
    assert "Traceback" not in strict.stderr


def test_phase_check_help(server: FakeServer) -> None:
    result = run([*MANAGE, "help", "phase_check"], env=server.env(), cwd=EXAMPLE)
    assert result.returncode == 0
    assert "PHASE_SETTINGS_CLASS" in result.stdout and "--strict" in result.stdout


class Database(BaseModel):
    host: str = "db"
    password: SecretStr = SecretStr("pw")


class DjangoSettings(PhaseSettings):
    secret_key: SecretStr = SecretStr("s3cret")
    debug: bool = True
    allowed_hosts: list[str] = ["a"]
    database: Database = Database()


def test_export_writes_upper_case_plain_values() -> None:
    from phase_settings.django import export

    namespace: dict[str, object] = {"UNRELATED": 1}
    export(DjangoSettings(), namespace)
    assert namespace == {
        "UNRELATED": 1,
        "SECRET_KEY": "s3cret",
        "DEBUG": True,
        "ALLOWED_HOSTS": ["a"],
        "DATABASE": {"host": "db", "password": "pw"},
    }


def test_import_without_django_names_the_extra() -> None:
    probe = (
        "import sys; sys.modules['django'] = None\n"
        "try:\n    import phase_settings.django\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = run([PYTHON, "-c", probe], env=clean_env())
    assert "pip install phase-settings[django]" in result.stdout


@pytest.mark.parametrize("fault", ["phase-down", "wrong-env"])
def test_phase_check_reports_a_settings_load_failure_in_one_line(
    server: FakeServer, fault: str
) -> None:
    """settings.py cannot load (Phase down, or an environment that does not exist): the
    command a user runs to find out why prints one line and exits 3, never a traceback."""
    extra = (
        {"PHASE_HOST": f"http://127.0.0.1:{free_port()}"}
        if fault == "phase-down"
        else {"PHASE_ENV": "no-such-env"}
    )
    result = run([*MANAGE, "phase_check"], env=server.env(extra), cwd=EXAMPLE)
    assert result.returncode == 3, result.stderr
    # on a loaded machine the refused retries can reach 2 s: the load's one "waiting for
    # Phase" WARNING then comes first (DESIGN §4); the failure itself is still one line
    lines = [x for x in result.stderr.splitlines() if not x.startswith("waiting for Phase at ")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    expected = "Could not reach Phase" if fault == "phase-down" else "no-such-env"
    assert expected in lines[0]
    assert server.token not in result.stderr + result.stdout

    # Any other command still refuses to start on settings that cannot load.
    other = run([*MANAGE, "check"], env=server.env(extra), cwd=EXAMPLE)
    assert other.returncode != 0
