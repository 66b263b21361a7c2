"""The demo's settings class: what an application declares."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from phase_settings import PhaseSettings, PhaseSettingsConfigDict


class Redis(BaseModel):
    host: str = "localhost"
    port: int = 6379


class Settings(PhaseSettings):
    """Loaded from Phase at startup; PHASE_SERVICE_TOKEN, PHASE_HOST and PHASE_APP_ID come
    from the environment (twelve-factor), as they would in production."""

    model_config = PhaseSettingsConfigDict(
        phase_env="development",  # a default: PHASE_ENV picks the environment per deployment
        phase_path=["/", "/backend"],  # folders merged in order
        env_file=".env",  # the fallback when Phase is unreachable at startup
        # `phase-settings export --output .env` writes every key of the environment, DB_HOST
        # included (a reference target no field reads): ignore such keys instead of failing
        extra="ignore",
    )

    database_url: SecretStr
    stripe_key: SecretStr
    worker_token: SecretStr
    max_connections: int = 10
    debug: bool = False
    allowed_hosts: list[str] = []
    redis: Redis = Redis()
    service_url: str
