"""Flask integration: load a settings class into ``app.config`` and keep it current.

```python
from phase_settings.flask import PhaseConfig

phase = PhaseConfig()

def create_app():
    app = Flask(__name__)
    phase.init_app(app, Settings, refresh_interval=60)
    # app.config["SECRET_KEY"] (a str), app.extensions["phase_settings"] (a Settings)
    return app
```

``flask phase check`` reports where each setting comes from (the same report, one-line errors
and exit codes as ``phase-settings check``). It is also registered as a Flask CLI plugin (the
``flask.commands`` entry point), so it works when the app cannot be created because its
settings do not load: it finds the class the app gives :class:`PhaseConfig`, without loading
it, then checks it.
"""

from __future__ import annotations

import contextvars
from typing import Any

try:
    import click
    from flask import Flask
    from flask.cli import AppGroup, NoAppException, ScriptInfo
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "phase_settings.flask needs Flask: pip install phase-settings[flask]"
    ) from exc

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from ._cli.check import run_check
from ._cli.outcome import EXIT_USAGE, failure
from ._errors import PhaseError
from ._settings.live import LiveSettings
from ._settings.values import settings_to_config

__all__ = ["EXTENSION", "PhaseConfig", "phase_cli"]

EXTENSION = "phase_settings"
"""The key of ``app.extensions`` that holds the current typed settings instance."""

_LIVE_EXTENSION = "phase_settings.live"


class _Found(Exception):
    """Stops the app factory at ``init_app`` once ``flask phase check`` knows the class."""

    def __init__(self, settings_cls: type[BaseSettings]):
        super().__init__(settings_cls.__name__)
        self.settings_cls = settings_cls


_finding: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "phase_settings_flask_finding", default=False
)


class PhaseConfig:
    """Load a settings class into a Flask app's config; optionally keep it current.

    Each field becomes an ``UPPER_CASE`` key of ``app.config`` (``SecretStr`` unwrapped: Flask
    and its extensions expect strings; nested models as dicts), and the typed instance is
    ``app.extensions["phase_settings"]``. With ``refresh_interval``, a :class:`LiveSettings`
    refreshes in the background (it restarts its thread in workers forked after gunicorn's
    ``--preload``), and a change updates both.

    Args:
        app: the app; None for the app-factory pattern (call :meth:`init_app` later).
        settings_cls: the settings class (may also be given to :meth:`init_app`).
        refresh_interval: seconds between refreshes (at least 1); None loads once.
    """

    def __init__(
        self,
        app: Flask | None = None,
        settings_cls: type[BaseSettings] | None = None,
        *,
        refresh_interval: float | None = None,
    ) -> None:
        self.settings_cls = settings_cls
        self.refresh_interval = refresh_interval
        if app is not None:
            self.init_app(app)

    def init_app(
        self,
        app: Flask,
        settings_cls: type[BaseSettings] | None = None,
        *,
        refresh_interval: float | None = None,
    ) -> None:
        """Load the settings into ``app`` and add the ``flask phase`` commands.

        Args:
            app: the Flask app.
            settings_cls: the settings class (default: the one given to the constructor).
            refresh_interval: seconds between refreshes (default: the constructor's); None
                loads once.

        Raises:
            TypeError: no settings class was given.
            ValueError: ``refresh_interval`` is under 1 second.
            PhaseError, ValidationError: the settings cannot be loaded (the app must not
                start on a broken configuration).
        """
        cls = settings_cls or self.settings_cls
        if cls is None:
            raise TypeError("PhaseConfig needs a settings class: init_app(app, Settings)")
        interval = refresh_interval if refresh_interval is not None else self.refresh_interval
        if interval is not None and interval < 1:
            raise ValueError(f"refresh_interval must be at least 1 second, got {interval}")
        if _finding.get():
            raise _Found(cls)

        if interval is None:
            settings: BaseSettings = cls()
            live: LiveSettings[Any] | None = None
        else:
            live = LiveSettings(cls)
            settings = live.current

            def update(old: BaseSettings, new: BaseSettings, changed: frozenset[str]) -> None:
                values = settings_to_config(new)
                app.config.update({name.upper(): values[name.upper()] for name in changed})
                app.extensions[EXTENSION] = new

            live.on_change(update)
        app.config.update(settings_to_config(settings))
        app.extensions[EXTENSION] = settings
        app.extensions[_LIVE_EXTENSION] = live
        if live is not None:
            assert interval is not None
            live.start(interval)
        app.cli.add_command(_phase_group(cls))

    @staticmethod
    def live_settings(app: Flask) -> LiveSettings[Any] | None:
        """The :class:`LiveSettings` that keeps ``app`` current, or None without refresh."""
        live: LiveSettings[Any] | None = app.extensions.get(_LIVE_EXTENSION)
        return live


_CHECK_HELP = (
    "Report where each field of the settings comes from (phase <folder>, env, dotenv, "
    "default), values masked, Phase keys no field reads, and whether a fallback served. "
    "TARGET is module:Class (default: the class given to PhaseConfig). Exit codes: 0 "
    "valid, 1 invalid, 2 usage or local configuration, 3 Phase refused or unreachable "
    "(or a fallback under --strict)."
)


def _check_options(command: Any) -> Any:
    command = click.option("--strict", is_flag=True, help="Exit 3 when a fallback served.")(command)
    command = click.option(
        "--show-values", is_flag=True, help="Show values from Phase (SecretStr stays masked)."
    )(command)
    command = click.option("--json", "as_json", is_flag=True, help="Write the report as JSON.")(
        command
    )
    return click.argument("target", required=False)(command)


def _finish(code: int, error: str | None) -> None:
    if error:
        click.echo(f"flask phase check: error: {error}", err=True)
    click.get_current_context().exit(code)


def _phase_group(settings_cls: type[BaseSettings]) -> click.Group:
    group = AppGroup("phase", help="phase-settings commands.")

    @group.command("check", help=_CHECK_HELP)
    @_check_options
    def check(target: str | None, as_json: bool, show_values: bool, strict: bool) -> None:
        _finish(
            *run_check(
                target or settings_cls, as_json=as_json, show_values=show_values, strict=strict
            )
        )

    return group


def _find_settings_class() -> type[BaseSettings]:
    """The class the app gives :class:`PhaseConfig`, found without loading it.

    Raises:
        PhaseError, ValidationError, SettingsError: the app module loads settings at import.
        click.UsageError: no app, or an app that does not use PhaseConfig.
    """
    info = click.get_current_context().ensure_object(ScriptInfo)
    token = _finding.set(True)
    try:
        info.load_app()
    except _Found as found:
        return found.settings_cls
    except NoAppException as exc:
        raise click.UsageError(f"cannot load the app: {exc.format_message()}") from None
    finally:
        _finding.reset(token)
    raise click.UsageError(
        "the app does not use phase_settings.flask.PhaseConfig: pass TARGET (module:Class)"
    )


@click.group("phase", help="phase-settings commands.")
def phase_cli() -> None:
    """``flask phase``: registered through the ``flask.commands`` entry point."""


@phase_cli.command("check", help=_CHECK_HELP)
@_check_options
def _plugin_check(target: str | None, as_json: bool, show_values: bool, strict: bool) -> None:
    settings_cls: str | type[BaseSettings]
    if target:
        settings_cls = target
    else:
        try:
            settings_cls = _find_settings_class()
        except click.UsageError as exc:
            _finish(EXIT_USAGE, exc.format_message())
            return
        except (PhaseError, ValidationError, SettingsError) as exc:
            _finish(*failure(exc))
            return
        except Exception as exc:
            _finish(EXIT_USAGE, f"loading the app raised {type(exc).__name__}")
            return
    _finish(*run_check(settings_cls, as_json=as_json, show_values=show_values, strict=strict))
