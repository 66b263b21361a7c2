"""python-dotenv's parse warnings: once per env file, naming the file.

python-dotenv logs "could not parse statement starting at line N" each time it reads a file,
without saying which file. A ``PhaseSettings`` load reads its env files twice (the ``PHASE_*``
keys, then pydantic-settings' own dotenv source), so the same warning came twice and named
nothing. The library's own read reports each bad line once per version of the file, with its
path; while a ``PhaseSettings`` instance is built, python-dotenv's copies are held back on that
thread only (the filter never touches other threads or plain ``BaseSettings`` classes).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["dotenv_warnings_held", "report_parse_errors"]

logger = logging.getLogger("phase_settings.config")

_PARSE_ERROR = "python-dotenv could not parse statement"


class _HoldParseWarnings(logging.Filter):
    """Drops (or collects) python-dotenv's parse warnings on threads that asked for it."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        depth: int = getattr(self.local, "depth", 0)
        if not depth or not str(record.msg).startswith(_PARSE_ERROR):
            return True
        collected: list[object] | None = getattr(self.local, "collected", None)
        if collected is not None:
            collected.extend(record.args or ())
        return False


_filter = _HoldParseWarnings()
logging.getLogger("dotenv.main").addFilter(_filter)


@contextmanager
def dotenv_warnings_held() -> Iterator[None]:
    """Hold back python-dotenv's parse warnings on this thread while the block runs."""
    local = _filter.local
    local.depth = getattr(local, "depth", 0) + 1
    try:
        yield
    finally:
        local.depth -= 1


@contextmanager
def report_parse_errors(path: Path) -> Iterator[None]:
    """Run a python-dotenv read of ``path``; then log its bad lines once, naming the file."""
    local = _filter.local
    outer = getattr(local, "collected", None)
    lines: list[object] = []
    local.collected = lines
    try:
        with dotenv_warnings_held():
            yield
    finally:
        local.collected = outer
    if lines:
        numbers = ", ".join(str(n) for n in lines)
        logger.warning(
            "%s: python-dotenv could not parse the statement(s) starting at line %s; "
            "they are ignored",
            path,
            numbers,
        )
