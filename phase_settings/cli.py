"""The ``phase-settings`` command line: ``check``, ``export``, ``get``, ``set``, ``delete``,
``serve-fake``.

Exit codes: 0 success; 1 the answer is no; 2 usage or local configuration; 3 Phase refused or
could not be reached; 4 an internal error. Errors are one line on stderr, a traceback only with
``--debug``; no message holds a token or a secret value. ``import phase_settings`` never imports
this module, and neither do the framework integrations: they share :mod:`._check`.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from ._cli.check import load_settings_class, run_check
from ._cli.context import flag_arguments, make_context, source_overrides
from ._cli.export import (
    export_for_class,
    format_dotenv,
    left_out_reason,
    write_private_file,
)
from ._cli.outcome import (
    EXIT_INTERNAL,
    EXIT_NO,
    EXIT_OK,
    EXIT_USAGE,
    CommandFailed,
    exit_code_for,
    failure,
    one_line,
    printable,
)
from ._cli.parser import PROG, build_parser
from ._errors import PhaseError
from ._load.result import merge_secrets
from ._models import shown, utf8_encodable

__all__ = ["build_parser", "main"]

logger = logging.getLogger("phase_settings.cli")

_KEY = re.compile(r"[A-Z0-9_]+\Z")


def _context(args: argparse.Namespace, settings_config: Any = None) -> Any:
    return make_context(
        flag_arguments(args.host, args.app_id, args.env, args.path), args.deadline, settings_config
    )


def _cmd_get(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key = args.key.strip()
    with ctx.client() as client:
        fetched = ctx.fetch(client, key=key, paths=ctx.paths)
    values, _ = merge_secrets(fetched, use_overrides=ctx.config.use_overrides)
    if not values:
        raise CommandFailed(f"{shown(key)} not found in {ctx.where()}", EXIT_NO)
    value = next(iter(values.values()))
    if not utf8_encodable(value):
        raise CommandFailed(
            f"the value of {shown(key)} is not valid UTF-8 (it holds a lone surrogate), so it "
            "cannot be printed; fix it in Phase",
            EXIT_NO,
        )
    sys.stdout.write(value + "\n")
    return EXIT_OK


def _checked_key(key: str) -> str:
    """``key`` if Phase stores it unchanged; else a usage error naming what it would become."""
    if not key:
        raise CommandFailed("expected KEY=VALUE (or KEY alone to read the value from stdin)", 2)
    if _KEY.match(key):
        return key
    stored = key.upper()
    usable = re.sub(r"[^A-Z0-9_]", "_", stored)
    if stored == usable:
        reason = f"Phase would store it as {stored}"
    else:
        reason = f"Phase would store it as {stored!r}, which is no environment variable name"
    raise CommandFailed(
        f"key {key!r} refused: {reason}; keys are upper case letters, digits and _: use {usable}",
        EXIT_USAGE,
    )


def _read_value(key: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"Value for {key} (not echoed): ")
    value = sys.stdin.read() if sys.stdin is not None else ""
    return value[:-1] if value.endswith("\n") else value


def _cmd_set(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key, sep, value = args.assignment.partition("=")
    key = _checked_key(key.strip())
    if not sep:
        value = _read_value(key)
    if value == "" and not args.allow_empty:
        raise CommandFailed(
            f"refusing to store an empty value for {key}: pass --allow-empty if you mean it",
            EXIT_USAGE,
        )
    path = ctx.single_path("set")
    with ctx.client() as client:
        fetched = ctx.fetch(client, key=key, paths=[path])
        existing = [s for _, entry in fetched for s in entry.secrets if s.path == path]
        if existing:
            update: dict[str, Any] = {"id": existing[0].id, "value": value}
            if args.comment is not None:
                update["comment"] = args.comment
            result = client.update_secrets(ctx.app_id, ctx.config.env, [update])
            version = f" (version {result[0].version})" if result else ""
            print(f"updated {existing[0].key} in {ctx.where([path])}{version}")
        else:
            created = {"key": key, "value": value, "path": path, "comment": args.comment or ""}
            result = client.create_secrets(ctx.app_id, ctx.config.env, [created])
            shown = result[0].key if result else key
            print(f"created {shown} in {ctx.where([path])}")
    return EXIT_OK


def _cmd_delete(args: argparse.Namespace) -> int:
    ctx = _context(args)
    key = args.key.strip()
    with ctx.client() as client:
        fetched = ctx.fetch(client, key=key, paths=ctx.paths)
        found = {s.id: s for _, entry in fetched for s in entry.secrets}
        if not found:
            raise CommandFailed(f"{key} not found in {ctx.where()}", EXIT_NO)
        if len(found) > 1:
            folders = ", ".join(sorted(s.path for s in found.values()))
            raise CommandFailed(
                f"{key} is in several folders ({folders}): pass --path /folder", EXIT_USAGE
            )
        secret = next(iter(found.values()))
        client.delete_secrets(ctx.app_id, ctx.config.env, [secret.id])
    print(f"deleted {secret.key} from {ctx.where([secret.path])}")
    return EXIT_OK


def _write_output(args: argparse.Namespace, text: str, count: int) -> int:
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    target = Path(args.output)
    try:
        write_private_file(target, text)
    except OSError as exc:
        raise CommandFailed(
            f"cannot write {target}: {exc.strerror or type(exc).__name__}", EXIT_USAGE
        ) from None
    print(f"wrote {count} secret(s) to {target} (mode 0600)", file=sys.stderr)
    return EXIT_OK


def _stamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cmd_export_for(args: argparse.Namespace) -> int:
    if args.format != "dotenv":
        raise CommandFailed("--for writes a .env file only: drop --format json", EXIT_USAGE)
    settings_cls = load_settings_class(args.for_class)
    ctx = _context(args, settings_cls.model_config)
    header = f"# Exported by phase-settings for {args.for_class} from {ctx.where()} at {_stamp()}\n"
    export = export_for_class(settings_cls, ctx, header)
    for warning in export.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    return _write_output(args, export.text, export.count)


def _cmd_export(args: argparse.Namespace) -> int:
    if args.for_class:
        return _cmd_export_for(args)
    ctx = _context(args)
    with ctx.client() as client:
        fetched = ctx.fetch(client, paths=ctx.paths)
    values, _ = merge_secrets(fetched, use_overrides=ctx.config.use_overrides)
    if args.format == "json":
        left_out = sorted(k for k, v in values.items() if not utf8_encodable(k + v))
        kept = {k: v for k, v in sorted(values.items()) if k not in left_out}
        text = json.dumps(kept, indent=2, ensure_ascii=False) + "\n"
    else:
        header = f"# Exported by phase-settings from {ctx.where()} at {_stamp()}\n"
        text, left_out = format_dotenv(values, header)
    for key in left_out:
        reason = left_out_reason(values[key], key)
        print(f"{PROG}: warning: {shown(key)} left out: {reason}", file=sys.stderr)
    return _write_output(args, text, len(values) - len(left_out))


def _cmd_check(args: argparse.Namespace) -> int:
    code, error = run_check(
        args.target,
        as_json=args.json,
        show_values=args.show_values,
        strict=args.strict,
        overrides=source_overrides(args.host, args.app_id, args.env, args.path),
        debug=args.debug,
    )
    if error and code == EXIT_INTERNAL:
        print(f"{PROG}: {error} (a bug: please report it)", file=sys.stderr)
    elif error:
        raise CommandFailed(error, code)
    return code


def _cmd_serve_fake(args: argparse.Namespace) -> int:
    from .testing import FakePhase  # only this command needs the fake server

    try:
        seed = json.loads(Path(args.seed).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandFailed(
            f"cannot read the seed {args.seed}: {exc.strerror or type(exc).__name__}", EXIT_USAGE
        ) from None
    except ValueError:
        raise CommandFailed(f"the seed {args.seed} is not valid JSON", EXIT_USAGE) from None
    try:
        fake = FakePhase.from_seed(seed)
    except (ValueError, KeyError, TypeError) as exc:
        raise CommandFailed(f"bad seed {args.seed}: {one_line(str(exc))}", EXIT_USAGE) from None
    apps = seed.get("apps") if isinstance(seed, dict) else None
    if not apps:
        raise CommandFailed(f"the seed {args.seed} has no apps", EXIT_USAGE)
    first = apps[0]
    app_id = first.get("id") or fake.app_id(first["name"])
    token = fake.add_service_account(envs=None)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    with contextlib.ExitStack() as stack:
        for sig in (signal.SIGTERM, signal.SIGINT):
            stack.callback(signal.signal, sig, signal.signal(sig, on_signal))
        try:
            url = stack.enter_context(fake.serve(port=args.port))
        except OSError as exc:
            raise CommandFailed(
                f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", EXIT_USAGE
            ) from None
        sys.stdout.write(
            f"export PHASE_HOST={shlex.quote(url)}\n"
            f"export PHASE_APP_ID={shlex.quote(str(app_id))}\n"
            f"export PHASE_SERVICE_TOKEN={shlex.quote(token)}\n"
        )
        sys.stdout.flush()
        print(f"{PROG}: fake Phase serving on {url}; stop with Ctrl-C", file=sys.stderr)
        while not stop.wait(0.5):
            pass
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check": _cmd_check,
    "export": _cmd_export,
    "get": _cmd_get,
    "set": _cmd_set,
    "delete": _cmd_delete,
    "serve-fake": _cmd_serve_fake,
}


class _WarningFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{PROG}: {record.levelname.lower()}: {printable(one_line(record.getMessage()))}"


@contextlib.contextmanager
def _library_warnings_to_stderr() -> Iterator[None]:
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_WarningFormatter())
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``phase-settings``; returns the exit code (see the module's docstring).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (printed as one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    with _library_warnings_to_stderr():
        try:
            return int(_HANDLERS[args.command](args))
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            return EXIT_NO
        except (CommandFailed, PhaseError) as exc:
            print(f"{PROG}: error: {failure(exc)[1]}", file=sys.stderr)
            return exit_code_for(exc)
        except Exception as exc:
            if args.debug:
                traceback.print_exc(file=sys.stderr)
            print(f"{PROG}: {failure(exc)[1]} (a bug: please report it)", file=sys.stderr)
            return EXIT_INTERNAL
