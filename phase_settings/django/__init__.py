"""Django integration: fill a settings module from a typed settings class.

```python
# settings.py
from phase_settings.django import export

class Settings(PhaseSettings):
    secret_key: SecretStr
    debug: bool = False

export(Settings(), globals())          # SECRET_KEY, DEBUG
INSTALLED_APPS = [..., "phase_settings.django"]   # adds manage.py phase_check
PHASE_SETTINGS_CLASS = "mysite.settings:Settings"
```
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

try:
    import django  # noqa: F401  (the extra must be installed)
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "phase_settings.django needs Django: pip install phase-settings[django]"
    ) from exc

from pydantic import BaseModel

from .._values import settings_to_config

__all__ = ["export"]


def export(settings: BaseModel, namespace: MutableMapping[str, Any]) -> None:
    """Write the fields of ``settings`` into a Django settings module's namespace.

    Each field becomes an ``UPPER_CASE`` name: ``SecretStr`` values are unwrapped (Django and
    its apps expect strings) and nested models become dicts (``model_dump``), so
    ``DATABASES``-style settings can be declared as models.

    Args:
        settings: the settings instance (usually a ``PhaseSettings``).
        namespace: the settings module's namespace, normally ``globals()``.
    """
    namespace.update(settings_to_config(settings))
