"""The argument parser of ``phase-settings``: commands, flags, help text, one-line usage errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from .._defaults import SETTINGS
from .._version import __version__
from .outcome import EXIT_USAGE, one_line

__all__ = ["PROG", "build_parser"]

PROG = "phase-settings"

DESCRIPTION = """\
Check settings classes against Phase (phase.dev), read and write secrets, export a fallback
.env file, and run a fake Phase server for local development.

The token is read from PHASE_SERVICE_TOKEN (or PHASE_TOKEN), never from a flag."""

COMMANDS_HELP = """\
commands:
  check module:Class [--json] [--show-values] [--strict]
        Load the settings class and show, per field, where its value came from
        (phase <folder>, env, dotenv, secrets, default) with the value masked:
        **** for SecretStr always, and for every value from Phase unless
        --show-values or the secret's Phase type is config. Phase keys that no
        field reads are listed (a typo, or the target of a ${...} reference).
        When Phase was unavailable and a fallback (last good values or the env
        file) served, the report says so; --strict makes that exit 3.
  export --format dotenv|json [--output FILE] [--for module:Class]
        Write the environment's secrets (for a fallback file), atomically and
        with mode 0600. A value containing '${' is left out of a .env file
        with a warning naming the key (python-dotenv would expand it). With
        --for: exactly what that class reads from Phase (its phase_path,
        phase_tags, overrides), only the keys its fields use, as a .env file
        the class accepts; exit 1 (no file) if a required field cannot be written.
  get KEY                  print the value of KEY (exit 1 if it does not exist)
  set KEY=VALUE [--path P] [--comment C] [--allow-empty]
                           create KEY, or update it if it exists; KEY alone
                           reads the value from stdin (a prompt without echo
                           on a terminal). KEY must be upper case letters,
                           digits and _; an empty value needs --allow-empty
  delete KEY [--path P]    delete KEY (exit 1 if it does not exist)
  serve-fake --seed FILE.json [--port N]
        Serve a fake Phase on 127.0.0.1 seeded from FILE.json, shaped like
        {"apps": [{"name": "demo", "environments": {"Development": {"/": {"KEY": "v"}}}}]},
        print export PHASE_HOST=..., PHASE_APP_ID=... (the first app) and
        PHASE_SERVICE_TOKEN=... lines for a shell, and serve until SIGINT/SIGTERM."""

CONTEXT_HELP = """\
context (check, export, get, set, delete):
  --host, --app-id, --env and --path default to PHASE_HOST, PHASE_APP_ID,
  PHASE_ENV and PHASE_PATH, then to appId/defaultEnv of .phase.json, then to
  https://api.phase.dev, environment Development and folder /. --path takes a
  folder, a comma-separated list (merged in order) or '*' for every folder.
  PHASE_TAGS, PHASE_VERIFY_SSL and PHASE_ALLOW_HTTP apply too. The flags may
  come before or after the command."""

EXIT_HELP = """\
exit codes:
  0  success
  1  the answer is no: the settings are invalid, or the key does not exist
  2  usage or local configuration: bad flags, no or malformed token, no app id,
     a class that cannot be imported, a file that cannot be written
  3  Phase refused or could not be reached (authentication, not found,
     unavailable, unexpected reply), or a fallback served under --strict
  4  an internal error (a bug: please report it; --debug shows the traceback)

Errors are one line on stderr; no output ever holds a token, and values only
where asked for (get, export, check --show-values)."""

EPILOG = "\n\n".join((COMMANDS_HELP, CONTEXT_HELP, EXIT_HELP))


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: the error and a ``--help`` hint."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


# The context flags that mirror a phase_* setting (its flag and variables come from the table).
_CONTEXT_FLAGS = {
    "phase_host": "Phase host",
    "phase_app_id": "the app's UUID",
    "phase_env": "environment name",
    "phase_path": "folder, /a,/b, or '*' for every folder",
}


def _add_common(parser: argparse.ArgumentParser, *, in_subcommand: bool, context: bool) -> None:
    # The flags work before and after the command; in a subcommand they must not overwrite a
    # value given before it, hence SUPPRESS there.
    default: Any = argparse.SUPPRESS if in_subcommand else None
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if in_subcommand else False,
        help="on an internal error, print the traceback",
    )
    if not context:
        return
    group = parser.add_argument_group("Phase context")
    for name, text in _CONTEXT_FLAGS.items():
        setting = SETTINGS[name]
        group.add_argument(setting.flag, default=default, help=f"{text} ({', '.join(setting.env)})")
    deadline = SETTINGS["phase_deadline"]
    group.add_argument(
        deadline.flag,
        type=_positive,
        default=default,
        metavar="SECONDS",
        help=f"give up on Phase after this long, retries included (default "
        f"{deadline.default:g}; check uses the class's {deadline.name})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``phase-settings``; ``command`` names the command chosen."""
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_common(parser, in_subcommand=False, context=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        context = name != "serve-fake"
        sub = commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=f"{CONTEXT_HELP}\n\n{EXIT_HELP}" if context else EXIT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(sub, in_subcommand=True, context=context)
        return sub

    check = command("check", "report where each field of a settings class comes from")
    check.add_argument("target", metavar="module:Class", help="the settings class to check")
    check.add_argument("--json", action="store_true", help="write the report as JSON")
    check.add_argument(
        "--show-values", action="store_true", help="show values from Phase (never SecretStr)"
    )
    check.add_argument(
        "--strict", action="store_true", help="exit 3 when a fallback served instead of Phase"
    )

    export = command("export", "write the environment's secrets as .env or JSON (mode 0600)")
    export.add_argument("--format", choices=("dotenv", "json"), default="dotenv")
    export.add_argument("--output", "-o", metavar="FILE", help="write here (default: stdout)")
    export.add_argument(
        "--for",
        dest="for_class",
        metavar="module:Class",
        help="only what this settings class reads from Phase, as a .env file it accepts",
    )

    get = command("get", "print the value of a secret (exit 1 if it does not exist)")
    get.add_argument("key", metavar="KEY")

    set_ = command("set", "create a secret, or update it if it exists")
    set_.add_argument(
        "assignment", metavar="KEY=VALUE", help="KEY alone reads the value from stdin"
    )
    set_.add_argument("--comment", help="the secret's comment")
    set_.add_argument("--allow-empty", action="store_true", help="accept an empty value")

    delete = command("delete", "delete a secret (exit 1 if it does not exist)")
    delete.add_argument("key", metavar="KEY")

    serve = command("serve-fake", "serve a fake Phase on 127.0.0.1 from a seed file")
    serve.add_argument("--seed", required=True, metavar="FILE.json", help="the apps and secrets")
    serve.add_argument("--port", type=_port, default=0, help="the port (default: a free one)")
    return parser
