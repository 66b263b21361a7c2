"""A Flask app factory whose configuration comes from Phase and stays current.

PHASE_SERVICE_TOKEN, PHASE_HOST and PHASE_APP_ID come from the environment (twelve-factor);
``phase-settings serve-fake`` prints them for a local fake Phase. REFRESH_INTERVAL (seconds,
default 30) sets how often the values are refreshed from Phase.
"""

from __future__ import annotations

import os

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import SecretStr

from phase_settings import PhaseSettings, PhaseSettingsConfigDict, load_status
from phase_settings.flask import PhaseConfig


class Settings(PhaseSettings):
    """What this app needs; each field becomes an app.config key of the same name in capitals."""

    model_config = PhaseSettingsConfigDict(phase_env="development")

    secret_key: SecretStr
    greeting: str = "Hello"
    max_items: int = 10
    features: list[str] = []


phase = PhaseConfig()


def create_app() -> Flask:
    """The app factory (``flask --app examples/flask/app.py run``)."""
    app = Flask(__name__)
    interval = float(os.environ.get("REFRESH_INTERVAL", "30"))
    phase.init_app(app, Settings, refresh_interval=interval)

    @app.get("/")
    def index() -> ResponseReturnValue:
        settings: Settings = current_app.extensions["phase_settings"]  # the typed instance
        return jsonify(
            greeting=current_app.config["GREETING"],
            max_items=settings.max_items,
            features=settings.features,
            secret_key_set=bool(current_app.config["SECRET_KEY"]),
            source=load_status(Settings).source,
        )

    return app
