"""The ``fake_phase`` plugin costs other projects' test runs nothing: pytest loads it through the
``pytest11`` entry point in every project that installs phase-settings, so it must import no
pydantic, pydantic-settings or httpx until a test uses the fixture."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests._subprocesses import PYTHON, clean_env, run

HEAVY = ("pydantic", "pydantic_settings", "httpx")

EMPTY_PROJECT_TEST = f"""
import sys

def test_nothing_heavy_is_loaded(request):
    # the plugin is there (loaded through its entry point), and it loaded nothing heavy
    assert request.config.pluginmanager.hasplugin("phase_settings")
    print("HEAVY:", sorted(m for m in {HEAVY!r} if m in sys.modules))
"""

FIXTURE_TEST = """
import sys
import urllib.request

def test_the_fixture_still_serves(fake_phase):
    app_id = fake_phase.add_app("demo")
    fake_phase.set_secret(app_id, "development", "KEY", "value")
    assert fake_phase.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(fake_phase.url + "/", timeout=10) as response:
        assert response.status < 500
    print("FIXTURE OK", "httpx" in sys.modules)
"""


def _pytest(project: Path, *files: str) -> str:
    """Run pytest as a project would (its own rootdir and config, plugins autoloaded)."""
    (project / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    result = run(
        [PYTHON, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *files],
        env=clean_env({"PYTEST_ADDOPTS": ""}),
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_an_empty_project_run_imports_nothing_heavy(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text(textwrap.dedent(EMPTY_PROJECT_TEST), encoding="utf-8")
    out = _pytest(tmp_path, "test_empty.py")
    assert "HEAVY: []" in out, out


def test_the_fixture_works_when_used(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text(textwrap.dedent(EMPTY_PROJECT_TEST), encoding="utf-8")
    (tmp_path / "test_fixture.py").write_text(textwrap.dedent(FIXTURE_TEST), encoding="utf-8")
    out = _pytest(tmp_path, "test_empty.py", "test_fixture.py")
    # collected first, the empty test still saw nothing heavy; the fixture then served
    assert "HEAVY: []" in out and "FIXTURE OK True" in out, out
