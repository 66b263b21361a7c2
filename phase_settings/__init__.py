"""phase-settings: load secrets from Phase into typed pydantic-settings objects.

```python
from phase_settings import PhaseSettings, PhaseSettingsConfigDict

class Settings(PhaseSettings):
    model_config = PhaseSettingsConfigDict(phase_app_id="…", env_file=".env")
    database_url: str
```
"""

from typing import TYPE_CHECKING, Any

from ._errors import (
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
from ._version import __version__

# Loaded on first use (PEP 562): `import phase_settings` (and so the pytest plugin, which every
# test run of a project that installs phase-settings imports) loads no pydantic, pydantic-settings
# or httpx; declaring a settings class costs only the source; the HTTP client, httpcore, the
# records and the refresh machinery load with the first load that needs them.
_LAZY = {
    "PhaseSettings": "._settings.source",
    "PhaseSettingsConfigDict": "._settings.config",
    "PhaseSettingsSource": "._settings.source",
    "AsyncPhaseClient": "._client.client",
    "PhaseClient": "._client.client",
    "LiveSettings": "._settings.live",
    "aload": "._settings.live",
    "LoadStatus": "._models",
    "PhaseApp": "._models",
    "PhaseEnvironment": "._models",
    "Secret": "._models",
    "SecretOverride": "._models",
    "clear_cache": "._load.runtime",
    "load_status": "._load.runtime",
}

if TYPE_CHECKING:
    from ._client.client import AsyncPhaseClient, PhaseClient
    from ._load.runtime import clear_cache, load_status
    from ._models import LoadStatus, PhaseApp, PhaseEnvironment, Secret, SecretOverride
    from ._settings.config import PhaseSettingsConfigDict
    from ._settings.live import LiveSettings, aload
    from ._settings.source import PhaseSettings, PhaseSettingsSource


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'phase_settings' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
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
]
