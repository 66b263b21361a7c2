"""Test helpers: :class:`FakePhase`, an in-memory Phase server, and the ``fake_phase`` fixture.

```python
from phase_settings.testing import FakePhase

fake = FakePhase()
app_id = fake.add_app("demo")
fake.set_secret(app_id, "development", "DB_HOST", "db")
token = fake.add_service_account(envs=("development",))
with fake.serve() as url:  # real HTTP on 127.0.0.1; PHASE_HOST=url
    ...
```
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fake import FakePhase, FakeResponse, RecordedRequest, normalize_path

__all__ = ["FakePhase", "FakeResponse", "RecordedRequest", "normalize_path"]


def __getattr__(name: str) -> Any:
    # Loaded on first use (PEP 562): the pytest plugin lives in this package, and every test run
    # of a project that installs phase-settings imports it; the fake (and httpx) load only when
    # a test uses them.
    if name not in __all__:
        raise AttributeError(f"module 'phase_settings.testing' has no attribute {name!r}")
    from . import _fake

    value = getattr(_fake, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
