"""The Django app ``phase_settings.django``: adds the ``phase_check`` management command."""

from __future__ import annotations

from django.apps import AppConfig


class PhaseSettingsConfig(AppConfig):
    """App config of ``phase_settings.django`` (no models)."""

    name = "phase_settings.django"
    label = "phase_settings"
    verbose_name = "phase-settings"
