"""The README's examples run as written."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from phase_settings import PhaseClient, __version__, load_status
from phase_settings.testing import FakePhase
from tests._subprocesses import PYTHON, ROOT, clean_env, run

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def block(containing: str) -> Any:
    """The README's code block holding ``containing``, compiled as a user's module would be
    (without this file's ``from __future__ import annotations``)."""
    [found] = [b for b in BLOCKS if containing in b]
    return compile(found, "README.md", "exec", dont_inherit=True)


def test_quickstart_runs_on_env_vars_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://local")
    monkeypatch.setenv("STRIPE_KEY", "sk_local")
    namespace: dict[str, Any] = {}
    exec(block("settings = Settings()"), namespace)
    settings = namespace["settings"]
    assert settings.database_url == "postgres://local"
    assert settings.max_connections == 10 and settings.allowed_hosts == []
    assert load_status(namespace["Settings"]).source == "none"


def test_testing_example_passes_against_the_fixture(
    fake_phase: FakePhase, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace: dict[str, Any] = {}
    monkeypatch.setenv("DATABASE_URL", "postgres://local")
    monkeypatch.setenv("STRIPE_KEY", "sk_test")  # the example's fake holds DATABASE_URL only
    exec(block("settings = Settings()"), namespace)  # the quickstart's Settings class
    monkeypatch.delenv("DATABASE_URL")  # an environment variable would beat Phase
    exec(block("def test_settings(fake_phase, monkeypatch)"), namespace)
    namespace["test_settings"](fake_phase, monkeypatch)
    assert any(r.path.endswith("/v1/secrets/") for r in fake_phase.requests)


def test_client_example(fake_phase: FakePhase, monkeypatch: pytest.MonkeyPatch) -> None:
    app_id = fake_phase.add_app("demo")
    fake_phase.set_secret(app_id, "production", "EXISTING", "v", path="/deep")
    monkeypatch.setenv("PHASE_SERVICE_TOKEN", fake_phase.add_service_account(envs=None))
    monkeypatch.setenv("PHASE_HOST", fake_phase.url)
    exec(block("with PhaseClient() as phase:"), {"PhaseClient": PhaseClient, "app_id": app_id})
    assert fake_phase.get_secret(app_id, "production", "NEW") is not None


def test_make_dist_builds_a_wheel_that_installs_and_runs(tmp_path: Path) -> None:
    """The README's install section: `make dist`, then pip install of the wheel it built."""
    [install] = [b for b in re.findall(r"```console\n(.*?)```", README, re.S) if "make dist" in b]
    assert "pip install dist/phase_settings-*-py3-none-any.whl" in install
    dist = tmp_path / "dist"
    stamp = ROOT / ".venv" / ".installed"  # never (re)create .venv from a test
    built = run(
        ["make", "-C", str(ROOT), "-o", str(stamp), "dist", f"PY={PYTHON}", f"DIST={dist}"],
        env=clean_env(),
        cwd=tmp_path,
        timeout=180,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("phase_settings-*-py3-none-any.whl")
    assert [p.name for p in dist.glob("*.tar.gz")] == [f"phase_settings-{__version__}.tar.gz"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entries = archive.read(entry_points).decode()
    assert "phase_settings/py.typed" in names and "phase_settings/testing/_plugin.py" in names
    assert "phase-settings = phase_settings.cli:main" in entries
    assert "phase_settings = phase_settings.testing._plugin" in entries  # the pytest11 plugin
    site = tmp_path / "site"
    installed = run(
        [PYTHON, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), wheel],
        env=clean_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    used = run(
        [PYTHON, "-c", "import phase_settings.cli as c; print(c.__file__); c.main(['--version'])"],
        env=clean_env({"PYTHONPATH": str(site)}),  # the wheel's copy, not the checkout's
        cwd=tmp_path,
    )
    assert used.returncode == 0, used.stderr
    assert used.stdout.splitlines() == [
        str(site / "phase_settings" / "cli.py"),
        f"phase-settings {__version__}",
    ]


def test_the_mypy_plugin_setting_lets_mypy_accept_settings(tmp_path: Path) -> None:
    """Without pydantic's mypy plugin `Settings()` is flagged as the README says; with the
    README's configuration, mypy --strict accepts the quickstart."""
    [quickstart] = [b for b in BLOCKS if "settings = Settings()" in b]
    [toml] = re.findall(r"```toml\n(.*?)```", README, re.S)
    (tmp_path / "settings.py").write_text(quickstart, encoding="utf-8")
    mypy = [PYTHON, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".cache")]

    bare = run([*mypy, "settings.py"], env=clean_env(), cwd=tmp_path, timeout=180)
    assert bare.returncode == 1
    assert 'Missing named argument "database_url" for "Settings"' in bare.stdout  # as quoted
    assert 'Missing named argument "database_url"' in README

    (tmp_path / "pyproject.toml").write_text(toml, encoding="utf-8")
    configured = run([*mypy, "settings.py"], env=clean_env(), cwd=tmp_path, timeout=180)
    assert configured.returncode == 0, configured.stdout
