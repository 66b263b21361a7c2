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

from ._fake import FakePhase, FakeResponse, RecordedRequest, normalize_path

__all__ = ["FakePhase", "FakeResponse", "RecordedRequest", "normalize_path"]
