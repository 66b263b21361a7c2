"""The public surface of DESIGN §2: names, error hierarchy, and typed records."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import phase_settings
from phase_settings import (
    PhaseAuthError,
    PhaseConfigError,
    PhaseConflictError,
    PhaseConnectionError,
    PhaseError,
    PhaseNotFoundError,
    PhaseRateLimitError,
    PhaseRequestError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSSEDisabledError,
    PhaseTLSError,
    PhaseUnavailableError,
)

PUBLIC = {
    "AsyncPhaseClient",
    "LiveSettings",
    "LoadStatus",
    "PhaseApp",
    "PhaseAuthError",
    "PhaseClient",
    "PhaseConfigError",
    "PhaseConflictError",
    "PhaseConnectionError",
    "PhaseEnvironment",
    "PhaseError",
    "PhaseNotFoundError",
    "PhaseRateLimitError",
    "PhaseRequestError",
    "PhaseResponseError",
    "PhaseSSEDisabledError",
    "PhaseServerError",
    "PhaseSettings",
    "PhaseSettingsConfigDict",
    "PhaseSettingsSource",
    "PhaseTLSError",
    "PhaseUnavailableError",
    "Secret",
    "SecretOverride",
    "__version__",
    "aload",
    "clear_cache",
    "load_status",
}


def test_all_is_sorted_and_equals_the_public_names() -> None:
    assert phase_settings.__all__ == sorted(phase_settings.__all__)
    assert set(phase_settings.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(phase_settings, name) is not None


def test_error_hierarchy_matches_the_design() -> None:
    direct = [
        PhaseConfigError,
        PhaseAuthError,
        PhaseNotFoundError,
        PhaseSSEDisabledError,
        PhaseConflictError,
        PhaseRequestError,
        PhaseResponseError,
        PhaseTLSError,
        PhaseUnavailableError,
    ]
    assert all(cls.__bases__ == (PhaseError,) for cls in direct)
    for cls in (PhaseConnectionError, PhaseServerError, PhaseRateLimitError):
        assert cls.__bases__ == (PhaseUnavailableError,)
    assert PhaseRateLimitError("x", retry_after=3.0).retry_after == 3.0
    assert PhaseServerError("x", status=503).status == 503


def test_records_are_frozen_dataclasses_with_masked_reprs() -> None:
    secret = phase_settings.Secret(id="1", key="K", value="sekrit")
    assert dataclasses.is_dataclass(secret) and "sekrit" not in repr(secret)
    status = phase_settings.LoadStatus()
    assert dataclasses.is_dataclass(status)
    assert (status.source, status.fetched_at, status.stale_since, status.last_error) == (
        "none",
        None,
        None,
        None,
    )
    try:
        secret.value = "x"  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        pass
    else:
        raise AssertionError("Secret must be immutable")


def test_importing_the_package_loads_no_framework_client_or_cli() -> None:
    code = (
        "import sys, phase_settings\n"
        "from phase_settings import PhaseSettings, PhaseSettingsConfigDict\n"
        "heavy = [m for m in ('django', 'flask', 'phase_settings.cli', 'httpcore',"
        " 'phase_settings._settings.live', 'phase_settings.testing') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_the_client_reads_its_defaults_without_pydantic_settings_or_dotenv() -> None:
    """``from phase_settings import PhaseClient`` needs the table of defaults, not the
    pydantic-settings provider: neither pydantic-settings nor python-dotenv is imported."""
    code = (
        "import sys\n"
        "from phase_settings import PhaseClient\n"
        "print([m for m in ('pydantic_settings', 'dotenv', 'phase_settings._settings')"
        " if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
