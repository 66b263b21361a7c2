"""Django integration: fill a settings module from a typed settings class.

```python
# settings.py
from phase_settings.django import export

class Settings(PhaseSettings):
    secret_key: SecretStr
    debug: bool = False

export(Settings, globals())            # SECRET_KEY, DEBUG
INSTALLED_APPS = [..., "phase_settings.django"]   # adds manage.py phase_check
PHASE_SETTINGS_CLASS = "mysite.settings:Settings"
```

Pass the class (not an instance) so that ``manage.py phase_check`` can report a settings load
that fails (Phase down, a wrong environment, invalid values) as one line and an exit code,
instead of Django aborting with a traceback while it reads ``settings.py``.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

try:
    import django  # noqa: F401  (the extra must be installed)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "phase_settings.django needs Django: pip install phase-settings[django]"
    ) from exc

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from .._errors import PhaseError
from .._settings.values import settings_to_config

__all__ = ["CHECK_COMMAND", "deferred_error", "export"]

CHECK_COMMAND = "phase_check"
"""The management command during which a settings load error is deferred, not raised."""


def _running_check() -> bool:
    # manage.py and django-admin take the command name as their first argument.
    return len(sys.argv) > 1 and sys.argv[1] == CHECK_COMMAND


def deferred_error() -> tuple[type[BaseModel], BaseException] | None:
    """The settings class and the error its load raised while ``phase_check`` was starting."""
    from .._load.runtime import runtime

    deferred = runtime.deferred_errors
    return deferred[-1] if deferred else None


def export(settings: BaseModel | type[BaseModel], namespace: MutableMapping[str, Any]) -> None:
    """Write the fields of ``settings`` into a Django settings module's namespace.

    Each field becomes an ``UPPER_CASE`` name: ``SecretStr`` values are unwrapped (Django and
    its apps expect strings) and nested models become dicts (``model_dump``), so
    ``DATABASES``-style settings can be declared as models.

    Args:
        settings: the settings class (loaded here) or an instance (usually a
            ``PhaseSettings``).
        namespace: the settings module's namespace, normally ``globals()``.

    Raises:
        PhaseError, ValidationError, SettingsError: the class cannot be loaded. While
            ``manage.py phase_check`` runs, the error is kept for the command to report and
            nothing is written.
    """
    if isinstance(settings, type):
        try:
            instance = settings()
        except (PhaseError, ValidationError, SettingsError) as exc:
            if not _running_check():
                raise
            from .._load.runtime import runtime

            runtime.deferred_errors.append((settings, exc))
            return
        settings = instance
    namespace.update(settings_to_config(settings))
