"""``manage.py phase_check [module:Class]``: where each setting comes from, and is it valid.

The same report, one-line errors and exit codes as ``phase-settings check``: 0 valid; 1 invalid;
2 usage or local configuration; 3 Phase refused or unreachable, or a fallback served under
``--strict``. A load error that ``phase_settings.django.export`` deferred while Django read the
settings module is reported here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...._cli.check import run_check
from ...._cli.outcome import EXIT_USAGE, failure
from ... import deferred_error


class Command(BaseCommand):
    """Check a settings class against Phase (default: the ``PHASE_SETTINGS_CLASS`` setting)."""

    help = (
        "Report where each field of a settings class comes from (phase <folder>, env, dotenv, "
        "default), values masked, Phase keys no field reads, and whether a fallback served. "
        "Exit codes: 0 valid, 1 invalid, 2 usage or local configuration, 3 Phase refused or "
        "unreachable (or a fallback under --strict)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "target",
            nargs="?",
            metavar="module:Class",
            help="the settings class (default: the PHASE_SETTINGS_CLASS setting)",
        )
        parser.add_argument("--json", action="store_true", help="write the report as JSON")
        parser.add_argument(
            "--show-values",
            action="store_true",
            help="show the values from Phase (SecretStr stays masked)",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="exit 3 when a fallback served instead of Phase",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        deferred = deferred_error()
        if deferred is not None and not options.get("target"):
            code, message = failure(deferred[1])
            raise CommandError(message, returncode=code)
        target = options.get("target") or getattr(settings, "PHASE_SETTINGS_CLASS", None)
        if not target:
            raise CommandError(
                "pass module:Class, or set PHASE_SETTINGS_CLASS in the Django settings",
                returncode=EXIT_USAGE,
            )
        code, error = run_check(
            target,
            as_json=bool(options.get("json")),
            show_values=bool(options.get("show_values")),
            strict=bool(options.get("strict")),
            out=self.stdout,
        )
        if code:
            raise CommandError(error or "the check failed", returncode=code)
