"""Errors raised by the library carry no library frame that holds a secret.

Error trackers (Sentry, Rollbar, ``traceback.TracebackException(capture_locals=True)``)
record the local variables of every frame an exception passed through. A failed write holds
the secret being written (its arguments, the request body); a failed load holds the values
being parsed or validated. Whatever the library raises must reach the caller without those
frames, on the error itself and on the errors it was raised from.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from pydantic import ValidationError

import phase_settings
from phase_settings import (
    AsyncPhaseClient,
    PhaseClient,
    PhaseConfigError,
    PhaseConflictError,
    PhaseError,
    PhaseResponseError,
    PhaseServerError,
    PhaseSettings,
    PhaseSettingsConfigDict,
)

from .conftest import Phase

CANARY = "canary-7f3a9c1e5b2d4e6f"  # the secret value every test tries to leak
PACKAGE = str(Path(phase_settings.__file__).resolve().parent)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)


def library_frames(exc: BaseException) -> list[FrameType]:
    """The frames of the library that ``exc`` (or an error it was raised from) records."""
    return [
        frame
        for error in _chain(exc)
        for frame, _ in traceback.walk_tb(error.__traceback__)
        if str(Path(frame.f_code.co_filename).resolve()).startswith(PACKAGE)
    ]


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # an object whose repr fails hides nothing from a tracker that skips it
        return ""


def leaked_locals(exc: BaseException, secret: str) -> list[str]:
    """``function: variable`` for each library frame local whose repr holds ``secret``."""
    return [
        f"{frame.f_code.co_name}: {name}"
        for frame in library_frames(exc)
        for name, value in frame.f_locals.items()
        if secret in _safe_repr(value)
    ]


def test_tracker_formatting_of_a_failed_load_shows_no_secret(phase: Phase) -> None:
    """What a tracker prints: the whole traceback with locals, minus this test's own frame."""
    phase.set("PORT", CANARY)

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config())  # type: ignore[typeddict-item]
        port: int

    with pytest.raises(ValidationError) as caught:
        Settings()
    exc = caught.value
    assert leaked_locals(exc, CANARY) == []
    exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ else None  # this test
    text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    assert CANARY not in text


def test_a_failed_create_keeps_no_frame_holding_the_secret(phase: Phase) -> None:
    phase.set("API_KEY", "existing")
    with PhaseClient(phase.token, phase.url) as client:
        with pytest.raises(PhaseConflictError) as caught:
            client.create_secrets(
                phase.app_id, "development", [{"key": "API_KEY", "value": CANARY}]
            )
        assert leaked_locals(caught.value, CANARY) == []

        phase.fake.fail_next(500)  # a POST that reached the server is not retried
        with pytest.raises(PhaseServerError) as caught_5xx:
            client.create_secrets(phase.app_id, "development", [{"key": "NEW", "value": CANARY}])
        assert leaked_locals(caught_5xx.value, CANARY) == []


def test_a_failed_update_keeps_no_frame_holding_the_secret(phase: Phase) -> None:
    phase.set("API_KEY", "old")
    with PhaseClient(phase.token, phase.url, max_attempts=1) as client:
        (secret,) = client.list_secrets(phase.app_id, "development")
        phase.fake.fail_next(503)
        with pytest.raises(PhaseServerError) as caught:
            client.update_secrets(phase.app_id, "development", [{"id": secret.id, "value": CANARY}])
    assert leaked_locals(caught.value, CANARY) == []


def test_a_failed_async_create_keeps_no_frame_holding_the_secret(phase: Phase) -> None:
    phase.set("API_KEY", "existing")

    async def create() -> PhaseError:
        async with AsyncPhaseClient(phase.token, phase.url) as client:
            try:
                await client.create_secrets(
                    phase.app_id, "development", [{"key": "API_KEY", "value": CANARY}]
                )
            except PhaseConflictError as exc:
                return exc
        raise AssertionError("the create did not fail")

    assert leaked_locals(asyncio.run(create()), CANARY) == []


def test_a_malformed_reply_keeps_no_frame_holding_its_values(phase: Phase) -> None:
    body = json.dumps([{"id": "1", "key": 5, "value": CANARY, "path": "/"}])
    phase.fake.fail_next(200, body=body)
    with PhaseClient(phase.token, phase.url) as client, pytest.raises(PhaseResponseError) as caught:
        client.list_secrets(phase.app_id, "development")
    assert CANARY not in str(caught.value)
    assert leaked_locals(caught.value, CANARY) == []


def test_a_malformed_token_keeps_no_frame_holding_it(phase: Phase) -> None:
    token = f"pss_service:v2:{CANARY}:x"

    class Settings(PhaseSettings):
        model_config = PhaseSettingsConfigDict(**phase.config(phase_token=token))  # type: ignore[typeddict-item]
        port: int = 0

    with pytest.raises(PhaseConfigError) as caught:
        Settings()
    assert CANARY not in str(caught.value)
    assert leaked_locals(caught.value, CANARY) == []
    with pytest.raises(PhaseConfigError) as from_client:
        PhaseClient(token, phase.url)
    assert leaked_locals(from_client.value, CANARY) == []
