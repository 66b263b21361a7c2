"""Forgetting the token is the commonest mistake: a missing field then says that Phase was not
asked, and what to set, instead of pydantic's bare ``Field required``."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from phase_settings import PhaseSettings, PhaseSettingsConfigDict

from ..conftest import Phase


class Settings(PhaseSettings):
    stripe_key: SecretStr
    workers: int = 1


def test_a_missing_field_without_a_token_says_phase_was_not_asked() -> None:
    with pytest.raises(ValidationError) as info:
        Settings()
    notes = getattr(info.value, "__notes__", [])
    assert notes == [
        "stripe_key: Phase was not asked: no PHASE_SERVICE_TOKEN (set it, or "
        "phase_required=True); it would read Phase key STRIPE_KEY"
    ]


def test_with_a_token_the_note_names_the_app_and_environment(phase: Phase) -> None:
    class WithPhase(Settings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]

    with pytest.raises(ValidationError) as info:
        WithPhase()
    [note] = getattr(info.value, "__notes__", [])
    assert note.startswith("stripe_key: expected Phase key STRIPE_KEY in app ")
    assert "not asked" not in note
