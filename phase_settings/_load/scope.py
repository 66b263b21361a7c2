"""The scope of one load: what a settings build carries from its start to its sources, its
client calls and its end, in the one context variable of ``_core/deadline.py`` (``SCOPE``).

A :class:`LoadScope` holds the options its Phase sources load with (set by ``LiveSettings`` and
``aload``), the Phase sources it called (for the errors and results of the build), the writes
to the shared tiers that wait until the settings class validated, and (while a request runs)
the deadline that bounds every socket operation. A load that fetched from Phase inside a scope
does not write at once: the write (and the release of the key's locks, held since before the
fetch) waits until the scope's class validated, so a shared copy never holds values the class
refused and the processes waiting on the lock read what this one wrote. A load outside any
scope writes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .._core.deadline import SCOPE, Scope
from .result import LoadOptions

__all__ = [
    "LoadScope",
    "current_load_scope",
    "current_options",
    "load_scope",
    "write_after_validation",
]

_DEFAULT_OPTIONS = LoadOptions()


class LoadScope(Scope):
    """One load's options, the Phase sources it called, and its writes held until its settings
    class validated."""

    __slots__ = ("_held", "_validated", "options", "sources")

    def __init__(self, options: LoadOptions) -> None:
        self.deadline = None  # set, on a copy, by each client call of the load
        self.options = options
        self.sources: list[Any] = []  # the PhaseSettingsSource objects called, in call order
        self._held: list[tuple[Callable[[], None], Callable[[], object]]] = []
        self._validated = False

    def __repr__(self) -> str:
        return f"LoadScope({self.options!r}, {len(self._held)} writes held)"

    def validated(self) -> None:
        """The settings class accepted the values: the held writes are done on leaving."""
        self._validated = True

    def hold(self, write: Callable[[], None], release: Callable[[], object]) -> None:
        """Run ``write`` (if the class validated), then ``release``, on leaving the scope."""
        self._held.append((write, release))

    def finish(self) -> None:
        """Do the held writes (if the class validated) and every held release, whatever
        happened."""
        held, self._held = self._held, []
        for write, release in held:
            _finish(write, release, commit=self._validated)


def current_load_scope() -> LoadScope | None:
    """The load running in this context, if any."""
    scope = SCOPE.get()
    return scope if isinstance(scope, LoadScope) else None


@contextmanager
def load_scope(options: LoadOptions | None = None) -> Iterator[LoadScope]:
    """Run one load in its own scope: ``options`` (default: those of the enclosing load, so a
    build inside ``LiveSettings``' refresh keeps its options). Call the yielded scope's
    ``validated()`` once the settings validated; the held writes are done on leaving, and the
    Phase sources it called are added to the enclosing load's."""
    outer = current_load_scope()
    if options is None:
        options = _DEFAULT_OPTIONS if outer is None else outer.options
    scope = LoadScope(options)
    token = SCOPE.set(scope)
    try:
        yield scope
    finally:
        SCOPE.reset(token)
        scope.finish()
        if outer is not None:
            outer.sources.extend(scope.sources)  # a build inside a build: the outer's too


def current_options() -> LoadOptions:
    """The options of the load running in this context (the defaults outside any)."""
    scope = current_load_scope()
    return _DEFAULT_OPTIONS if scope is None else scope.options


def write_after_validation(write: Callable[[], None], release: Callable[[], object]) -> None:
    """Run ``write`` (then ``release``) once the enclosing load validated, or now when no load
    is waiting for a validation."""
    scope = current_load_scope()
    if scope is None:
        _finish(write, release, commit=True)
    else:
        scope.hold(write, release)


def _finish(write: Callable[[], None], release: Callable[[], object], *, commit: bool) -> None:
    try:
        if commit:
            write()
    finally:
        release()
