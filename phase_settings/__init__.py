"""phase-settings: load secrets from Phase into typed pydantic-settings objects.

```python
from phase_settings import PhaseSettings, PhaseSettingsConfigDict

class Settings(PhaseSettings):
    model_config = PhaseSettingsConfigDict(phase_app_id="…", env_file=".env")
    database_url: str
```
"""

from ._cache import clear_cache, load_status
from ._client import AsyncPhaseClient, PhaseClient
from ._config import PhaseSettingsConfigDict
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
from ._live import LiveSettings, aload
from ._models import LoadStatus, PhaseApp, PhaseEnvironment, Secret, SecretOverride
from ._source import PhaseSettings, PhaseSettingsSource
from ._version import __version__

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
