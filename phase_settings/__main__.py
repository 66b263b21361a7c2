"""``python -m phase_settings``: the ``phase-settings`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
