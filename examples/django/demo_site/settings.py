"""Django settings: declared as a typed class, loaded from Phase, exported as UPPER_CASE names.

PHASE_SERVICE_TOKEN, PHASE_HOST and PHASE_APP_ID come from the environment (twelve-factor);
``phase-settings serve-fake`` prints them for a local fake Phase.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from phase_settings import PhaseSettings, PhaseSettingsConfigDict
from phase_settings.django import export

BASE_DIR = Path(__file__).resolve().parent.parent


class Settings(PhaseSettings):
    """What this site needs; each field becomes a Django setting of the same name in capitals."""

    model_config = PhaseSettingsConfigDict(
        phase_env="development",  # a default: PHASE_ENV picks the environment per deployment
        env_file=BASE_DIR / ".env",  # the fallback when Phase is unreachable
    )

    secret_key: SecretStr
    debug: bool = False
    allowed_hosts: list[str] = ["127.0.0.1", "localhost"]
    greeting: str = "Hello"
    items_per_page: int = 20


export(Settings, globals())  # SECRET_KEY, DEBUG, ALLOWED_HOSTS, GREETING, ITEMS_PER_PAGE

PHASE_SETTINGS_CLASS = "demo_site.settings:Settings"  # the default of manage.py phase_check

INSTALLED_APPS = ["phase_settings.django"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "demo_site.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
