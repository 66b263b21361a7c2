"""Management commands of phase_settings.django."""
