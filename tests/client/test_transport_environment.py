"""What a load takes from the process environment's transport settings, and what it never does.

- Environment proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``) are never used for a
  loopback Phase host: a local Phase is reached directly even when a proxy is set.
- ``.netrc`` is never consulted: a netrc entry for the host does not replace the token.

The "proxy" is a listening socket on 127.0.0.1 that never accepts: a connection to it would
wait in its backlog, and the load would fail with a connection error at its deadline.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from phase_settings import PhaseSettings, PhaseSettingsConfigDict, aload, load_status

from ..conftest import Phase
from .conftest import pending_connections


class Fields(PhaseSettings):
    db_host: str = "unset"


def settings_class(phase: Phase) -> type[Fields]:
    class Settings(Fields):
        model_config = PhaseSettingsConfigDict(
            **phase.config(phase_deadline=2.0, phase_fallback="raise")  # type: ignore[typeddict-item]
        )

    return Settings


def test_a_loopback_phase_host_is_reached_directly_despite_a_proxy(
    phase: Phase, proxy_everything: socket.socket
) -> None:
    phase.set("DB_HOST", "db")
    Settings = settings_class(phase)
    assert Settings().db_host == "db"
    assert load_status(Settings).source == "phase"
    assert pending_connections(proxy_everything) == 0


@pytest.mark.anyio
async def test_aload_reaches_a_loopback_phase_host_directly_despite_a_proxy(
    phase: Phase, proxy_everything: socket.socket
) -> None:
    phase.set("DB_HOST", "db")
    Settings = settings_class(phase)
    assert (await aload(Settings)).db_host == "db"
    assert pending_connections(proxy_everything) == 0


def test_netrc_is_never_consulted(
    phase: Phase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A netrc entry for the fake's host: a client that read it would send these credentials
    # instead of the token, and Phase would refuse them.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".netrc").write_text(netrc.read_text())
    (tmp_path / ".netrc").chmod(0o600)
    phase.set("DB_HOST", "db")
    Settings = settings_class(phase)
    assert Settings().db_host == "db"
    assert [r.token_type for r in phase.fake.requests] == ["ServiceAccount"]
