"""``check`` of a process that booted from the on-disk snapshot: a fallback like any other.

A worker that started during an outage from the snapshot serves values Phase may have changed
since; ``check --strict`` (a deploy gate) must not pass it as healthy, ``--json`` says it fell
back, and every row it served is marked stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import phase_settings

from .test_cli import APP_SETTINGS, Demo, cli, demo, settings_module  # noqa: F401 (fixture)


def test_a_snapshot_serve_is_a_fallback_for_check(
    demo: Demo,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PHASE_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    target = settings_module(tmp_path, APP_SETTINGS)
    assert cli(capsys, "check", target)[0] == 0  # Phase up: the snapshot is written
    assert any((tmp_path / "snapshots").iterdir())
    phase_settings.clear_cache()  # a new process: no last good values in memory
    demo.fake.fail_next(503, times=50)
    code, out, err = cli(capsys, "check", target, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["phase"]["status"] == "snapshot"
    assert report["phase"]["fallback"] is True
    rows = {row["name"]: row for row in report["fields"]}
    assert rows["database_url"]["stale"] is True and rows["stripe_key"]["stale"] is True
    assert rows["region"]["stale"] is False  # a default, not a Phase value
    phase_settings.clear_cache()
    code, out, err = cli(capsys, "check", target, "--strict")
    assert code == 3, out
    assert "SNAPSHOT" in out
